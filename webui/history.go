package webui

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// An engagement page shows one page of its history: the newest entries, or
// those before or after a version, or one entry in full. Only the page's
// events are read from the stream, with the few on other pages that its
// entries name (corrections of its entries, the entries its corrections
// correct), and the page's text is bounded.
const (
	// historyPageSize is how many entries a page of history shows at most.
	historyPageSize = 50
	// historyBudget bounds the text of a page's entries (their facts, the
	// corrections beside them, the values of their correction forms), in
	// bytes: past it a page shows no more entries.
	historyBudget = 256 << 10
	// previewRunes is how much of a long value an entry shows; the page of
	// the entry alone shows all of it.
	previewRunes = 1000
	// relatedLimit bounds the events of other pages read for one page.
	relatedLimit = 20
	// entryOverhead is what an entry costs the budget besides its text.
	entryOverhead = 512
)

// historySel is the part of an engagement's history a page shows: the
// newest entries, those before or after a version, or (entry) one entry in
// full; asOf is the page's date, kept in its links.
type historySel struct {
	before, after, entry int
	asOf, knownAt        string
}

// errHistorySel is a page of history asked for that cannot be.
var errHistorySel = errors.New("before, after and entry must be whole numbers from 1, one of them at most")

// parseHistorySel reads ?before=, ?after= or ?entry=: versions of the
// engagement.
func parseHistorySel(q url.Values) (historySel, error) {
	var sel historySel
	n := 0
	for _, p := range []struct {
		name string
		to   *int
	}{{"before", &sel.before}, {"after", &sel.after}, {"entry", &sel.entry}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		x, err := strconv.Atoi(v)
		if err != nil || x < 1 {
			return historySel{}, errHistorySel
		}
		*p.to = x
		n++
	}
	if n > 1 {
		return historySel{}, errHistorySel
	}
	return sel, nil
}

// query is what the projection is asked for sel within win.
func (sel historySel) query(win domain.Window) projections.HistoryQuery {
	q := projections.HistoryQuery{Window: win, Limit: historyPageSize, Newest: true}
	switch {
	case sel.entry > 0:
		q.After, q.Before, q.Limit = sel.entry-1, sel.entry+1, 1
	case sel.after > 0:
		q.After, q.Newest = sel.after, false
	case sel.before > 0:
		q.Before = sel.before
	}
	return q
}

// href is the engagement page with the history selected by key=version
// (none when key is empty), at the page's date.
func (sel historySel) href(id, key string, version int) string {
	q := url.Values{}
	if sel.asOf != "" {
		q.Set("as_of", sel.asOf)
	}
	if sel.knownAt != "" {
		q.Set("known_at", sel.knownAt)
	}
	if key != "" {
		q.Set(key, strconv.Itoa(version))
	}
	h := "/engagements/" + url.PathEscape(id)
	if len(q) > 0 {
		h += "?" + q.Encode()
	}
	return h
}

// entryHref is the page of one entry alone, at the entry.
func (sel historySel) entryHref(id string, ev domain.Event) string {
	return sel.href(id, "entry", ev.Version) + "#ev-" + ev.ID
}

// historyNav is the paging of a page of history.
type historyNav struct {
	// Older and Newer link to the entries before and after the page's,
	// when there are any; Newest to the newest entries when the page does
	// not show them.
	Older, Newer, Newest string
	// Entry says the page shows one entry alone, in full.
	Entry bool
	// Shown is how many entries the page shows, of Latest in all, at most
	// PageSize.
	Shown, Latest, PageSize int
}

// withRelated returns shown followed by the events of other pages that
// shown names, at most relatedLimit of them, within win: the corrections of
// its entries and the entries its corrections correct.
func (u *UI) withRelated(ctx context.Context, id string, win domain.Window, shown []domain.Event) ([]domain.Event, error) {
	on := make(map[string]bool, len(shown))
	for _, ev := range shown {
		on[ev.ID] = true
	}
	var want []string
	add := func(x string) {
		if x != "" && !on[x] && len(want) < relatedLimit {
			on[x] = true
			want = append(want, x)
		}
	}
	for i := len(shown) - 1; i >= 0; i-- { // newest first: the ones seen first
		if ev := shown[i]; ev.Type == domain.EngagementCorrected {
			add(correctedID(ev))
		} else {
			for _, c := range ev.CorrectedBy {
				add(c)
			}
		}
	}
	out := slices.Clone(shown)
	if len(want) == 0 {
		return out, nil
	}
	related, err := u.proj.Events(ctx, id, want...)
	if err != nil {
		return nil, err
	}
	for _, ev := range related {
		if win.IsZero() || win.Contains(ev) {
			out = append(out, ev)
		}
	}
	return out, nil
}

// correctedID is the id of the event a correction corrects.
func correctedID(ev domain.Event) string {
	c, _ := domain.DecodeData[domain.CorrectedData](ev) // stored corrections always decode
	return c.Corrects
}

// timeline renders the page's entries, oldest first: history starts with
// the page's events, then those of other pages they name. Long values are
// cut short (but on the page of one entry) and entries stop past the
// budget: a page of the newest entries, or of those before a version, then
// leaves out its oldest ones; a page after a version, its newest ones.
func (u *UI) timeline(id string, page projections.HistoryPage, history []domain.Event, sel historySel,
	titles map[string]string, canWrite bool) ([]entry, historyNav) {
	shown := history[:len(page.Events)]
	on := make(map[string]bool, len(shown))
	for _, ev := range shown {
		on[ev.ID] = true
	}
	find := func(x string) (domain.Event, bool) {
		i := slices.IndexFunc(history, func(ev domain.Event) bool { return ev.ID == x })
		if i < 0 {
			return domain.Event{}, false
		}
		return history[i], true
	}
	full := sel.entry > 0
	oldestFirst := sel.after > 0 && !full
	out := make([]entry, 0, len(shown))
	budget := historyBudget
	cutOlder, cutNewer := false, false
	for k := range shown {
		i := len(shown) - 1 - k
		if oldestFirst {
			i = k
		}
		ev := shown[i]
		en := u.entry(ev, history, titles)
		en.Href = sel.entryHref(id, ev)
		if en.Corrects != "" {
			en.CorrectsHref = "#ev-" + en.Corrects
			if !on[en.Corrects] {
				en.Elsewhere = true
				if t, ok := find(en.Corrects); ok {
					en.CorrectsHref = sel.entryHref(id, t)
				}
			}
		}
		for j := range en.CorrectedBy {
			c := &en.CorrectedBy[j]
			c.Href = "#ev-" + c.ID
			if !on[c.ID] {
				c.Elsewhere = true
				if x, ok := find(c.ID); ok {
					c.Href = sel.entryHref(id, x)
				}
			}
		}
		size := entryOverhead
		if !full {
			en.Cut = cutFacts(en.Facts) || en.Cut
			for j := range en.CorrectedBy {
				en.Cut = cutFacts(en.CorrectedBy[j].Facts) || en.Cut
			}
		}
		n := factBytes(en.Facts) + len(en.Reason)
		for _, c := range en.CorrectedBy {
			n += factBytes(c.Facts) + len(c.Reason)
		}
		if canWrite && !en.Cut && en.Type != domain.EngagementCorrected {
			n *= 2 // the correction form repeats the values
		}
		size += n
		if len(out) > 0 && size > budget {
			if oldestFirst {
				cutNewer = true
			} else {
				cutOlder = true
			}
			break
		}
		budget -= size
		out = append(out, en)
	}
	if !oldestFirst {
		slices.Reverse(out)
	}
	nav := historyNav{Entry: full, Shown: len(out), Latest: page.Latest, PageSize: historyPageSize}
	if len(out) > 0 {
		first, last := out[0].Version, out[len(out)-1].Version
		if page.Older || cutOlder {
			nav.Older = sel.href(id, "before", first) + "#timeline-h"
		}
		if page.Newer || cutNewer {
			nav.Newer = sel.href(id, "after", last) + "#timeline-h"
		}
	}
	if full || sel.after > 0 || sel.before > 0 {
		nav.Newest = sel.href(id, "", 0) + "#timeline-h"
	}
	return out, nav
}

// cutFacts shortens values longer than previewRunes and reports whether it
// did.
func cutFacts(fs []fact) bool {
	cut := false
	for i := range fs {
		if utf8.RuneCountInString(fs[i].Value) <= previewRunes {
			continue
		}
		v, n := fs[i].Value, 0
		for j := range v {
			if n == previewRunes {
				v = v[:j]
				break
			}
			n++
		}
		fs[i].Value, cut = v+"…", true
	}
	return cut
}

func factBytes(fs []fact) int {
	n := 0
	for _, f := range fs {
		n += len(f.Label) + len(f.Value) + len(f.Href)
	}
	return n
}
