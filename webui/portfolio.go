package webui

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// pageSize is how many engagements the portfolio shows at a time.
const pageSize = 100

// maxQuery bounds the text filters, as the API does.
const maxQuery = 200

type filter struct {
	Kind, Status, Party, Q, AsOf string
	After                        string
	// KnownAt is "as known on": only what was recorded by the end of that day.
	KnownAt string
}

// query is the filter as URL parameters, with overrides (empty removes).
func (f filter) query(override ...string) string {
	v := url.Values{}
	set := func(k, x string) {
		if x != "" {
			v.Set(k, x)
		}
	}
	set("kind", f.Kind)
	set("status", f.Status)
	set("party", f.Party)
	set("q", f.Q)
	set("as_of", f.AsOf)
	set("known_at", f.KnownAt)
	for i := 0; i+1 < len(override); i += 2 {
		v.Del(override[i])
		set(override[i], override[i+1])
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

type row struct {
	ID, Title, Href string
	Kind            domain.Kind
	Parties         []string
	Status          domain.Status
	Last            string
	LastAt          time.Time
}

type statusCount struct {
	Status domain.Status
	N      int
	Href   string
	Active bool
}

type kindCount struct {
	Kind     domain.Kind
	N        int
	Href     string
	Active   bool
	Statuses []statusCount
}

type portfolioData struct {
	base
	Filter   filter
	Errors   map[string]string
	Kinds    []option
	Statuses []option
	Parties  []string
	Counts   []kindCount
	Total    int // engagements matching the text, party and date filters
	Matching int // …and kind and status
	Rows     []row
	Next     string
	Filtered bool
	Live     string
}

// portfolio: GET / with kind, status, party, q, as_of and after.
func (u *UI) portfolio(w http.ResponseWriter, r *http.Request, s *session) {
	// Read first: live updates start after what the page shows.
	shown := u.proj.Applied()
	d := portfolioData{base: u.base(s, "Portfolio", "portfolio"), Errors: make(map[string]string)}
	f, pf := u.portfolioFilter(r.URL.Query(), d.Errors)
	d.Filter = f

	// Counts per kind and status: the text, party and date filters apply,
	// so the counts say what choosing a kind or status would show.
	all, _, err := u.proj.List(r.Context(), projections.Filter{Party: pf.Party, Q: pf.Q, Window: pf.Window, Now: pf.Now,
		Limit: u.proj.Count() + 1})
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	d.Total = len(all)
	d.Counts, d.Matching = counts(f, pf, all)
	d.Parties = partiesOf(u.everything())
	d.Kinds, d.Statuses = choices(f)

	pf.Limit = pageSize
	var items []projections.Listed
	var more bool
	if pf.Window.IsZero() {
		items, more, err = u.proj.List(r.Context(), pf)
		if err != nil {
			u.failed(w, r, s, err)
			return
		}
	} else {
		// Within a window every engagement was just folded for the
		// counts: the page is taken from them rather than folded again.
		items, more = pageOf(all, pf)
	}
	for _, e := range items {
		d.Rows = append(d.Rows, rowOf(e, f, pf.Now))
	}
	if more && len(items) > 0 {
		d.Next = f.query("after", items[len(items)-1].ID())
	}
	d.Filtered = f.Kind != "" || f.Status != "" || f.Party != "" || f.Q != "" || f.AsOf != ""
	d.Filtered = d.Filtered || f.KnownAt != ""
	d.Live = "/engagements/live?after=" + strconv.FormatUint(shown, 10)
	if f.AsOf != "" {
		d.Title = "Portfolio as of " + dayText(f.AsOf)
	}
	if f.KnownAt != "" {
		d.Title += " as known on " + dayText(f.KnownAt)
	}
	u.render(w, http.StatusOK, "portfolio", d)
}

// portfolioFilter reads the portfolio's parameters: the filter as the page
// shows it again (a parameter that is not valid is dropped, with its
// problem in errs) and as the projection takes it.
func (u *UI) portfolioFilter(q url.Values, errs map[string]string) (filter, projections.Filter) {
	f := filter{Kind: q.Get("kind"), Status: q.Get("status"), Party: strings.TrimSpace(q.Get("party")),
		Q: strings.TrimSpace(q.Get("q")), AsOf: strings.TrimSpace(q.Get("as_of")), After: q.Get("after")}
	pf := projections.Filter{Now: u.now()}
	if f.Kind != "" {
		if pf.Kind = domain.Kind(f.Kind); !pf.Kind.Valid() {
			errs["kind"] = "must be agreement, policy, initiative or meeting"
			pf.Kind, f.Kind = "", ""
		}
	}
	if f.Status != "" {
		if pf.Status = domain.Status(f.Status); !domain.ValidStatus(pf.Status) {
			errs["status"] = "is not a status of any kind"
			pf.Status, f.Status = "", ""
		}
	}
	for name, p := range map[string]*string{"party": &f.Party, "q": &f.Q} {
		if utf8.RuneCountInString(*p) > maxQuery {
			errs[name] = "must be at most 200 characters"
			*p = ""
		}
	}
	pf.Party, pf.Q = f.Party, f.Q
	if f.AsOf != "" {
		t, err := domain.ParseDate(f.AsOf)
		if err != nil {
			errs["as_of"] = err.Error()
			f.AsOf = ""
		} else {
			pf.Window.AsOf = endOfDay(t)
			pf.Now = pf.Window.AsOf
		}
	}
	if f.KnownAt = strings.TrimSpace(q.Get("known_at")); f.KnownAt != "" {
		t, err := domain.ParseDate(f.KnownAt)
		if err != nil {
			errs["known_at"] = err.Error()
			f.KnownAt = ""
		} else {
			pf.Window.KnownAt = endOfDay(t)
			if pf.Window.AsOf.IsZero() {
				pf.Now = pf.Window.KnownAt
			}
		}
	}
	if f.After != "" && domain.CheckID(f.After) == nil {
		pf.After = f.After
	} else {
		f.After = ""
	}
	return f, pf
}

// counts are the engagements of all per kind and status, with links that
// choose them, and how many of all match the kind and status chosen.
func counts(f filter, pf projections.Filter, all []projections.Listed) (kinds []kindCount, matching int) {
	for _, k := range domain.Kinds {
		kc := kindCount{Kind: k, Href: f.query("kind", string(k), "status", "", "after", ""), Active: f.Kind == string(k)}
		for _, st := range k.Statuses() {
			kc.Statuses = append(kc.Statuses, statusCount{Status: st,
				Href:   f.query("kind", string(k), "status", string(st), "after", ""),
				Active: f.Kind == string(k) && f.Status == string(st)})
		}
		kinds = append(kinds, kc)
	}
	for _, e := range all {
		ki := slices.Index(domain.Kinds, e.Kind())
		if ki < 0 {
			continue // folded engagements always have a kind of the contract
		}
		st := e.StatusAt(pf.Now)
		kc := &kinds[ki]
		kc.N++
		for i := range kc.Statuses {
			if kc.Statuses[i].Status == st {
				kc.Statuses[i].N++
			}
		}
		if (pf.Kind == "" || e.Kind() == pf.Kind) && (pf.Status == "" || st == pf.Status) {
			matching++
		}
	}
	return kinds, matching
}

// pageOf is the page of all (in id order, the text, party and date filters
// applied) that pf chooses: its kind and status, after pf.After, at most
// pf.Limit, and whether more follow.
func pageOf(all []projections.Listed, pf projections.Filter) (items []projections.Listed, more bool) {
	for _, e := range all {
		if e.ID() <= pf.After || pf.Kind != "" && e.Kind() != pf.Kind || pf.Status != "" && e.StatusAt(pf.Now) != pf.Status {
			continue
		}
		if len(items) == pf.Limit {
			return items, true
		}
		items = append(items, e)
	}
	return items, false
}

// partiesOf lists the parties of all, sorted, each once.
func partiesOf(all []projections.Listed) []string {
	seen := make(map[string]bool)
	var out []string
	for _, e := range all {
		for _, p := range e.Parties() {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// choices are the kind and status menus of the filter form.
func choices(f filter) (kinds, statuses []option) {
	kinds = []option{{Value: "", Label: "All kinds", Selected: f.Kind == ""}}
	for _, k := range domain.Kinds {
		kinds = append(kinds, option{Value: string(k), Label: kindPlural(k), Selected: f.Kind == string(k)})
	}
	statuses = []option{{Value: "", Label: "Any status", Selected: f.Status == ""}}
	seen := make(map[domain.Status]bool)
	for _, k := range domain.Kinds {
		for _, st := range k.Statuses() {
			if !seen[st] {
				seen[st] = true
				statuses = append(statuses, option{Value: string(st), Label: words(string(st)), Selected: f.Status == string(st)})
			}
		}
	}
	return kinds, statuses
}

// rowOf is one engagement's row of the portfolio. The projection keeps each
// engagement's last change (within the window when there is one): no row
// reads the stream.
func rowOf(e projections.Listed, f filter, now time.Time) row {
	rw := row{ID: e.ID(), Title: e.Title(), Kind: e.Kind(), Parties: e.Parties(), Status: e.StatusAt(now),
		Href: "/engagements/" + e.ID()}
	q := url.Values{}
	if f.AsOf != "" {
		q.Set("as_of", f.AsOf)
	}
	if f.KnownAt != "" {
		q.Set("known_at", f.KnownAt)
	}
	if len(q) > 0 {
		rw.Href += "?" + q.Encode()
	}
	if last := e.LastChange; last.Type != "" {
		rw.Last, rw.LastAt = pastLabel(last.Type), last.OccurredAt
	}
	return rw
}

// everything lists every engagement as it is now. Without a window List
// reads memory only and never blocks, so it needs no request's context.
func (u *UI) everything() []projections.Listed {
	all, _, _ := u.proj.List(context.Background(), projections.Filter{Limit: u.proj.Count() + 1})
	return all
}
