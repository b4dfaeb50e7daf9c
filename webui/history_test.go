package webui_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
)

// longNotes is how many notes of about 2 KB TestLongHistoryIsPaged records
// on one engagement: 2,000 rather than the 10,000 of the report, for the
// time it takes under -race; the page's cost does not depend on it.
const longNotes = 2000

// noteText is the note numbered i, about 2 KB, ending with a mark that the
// page shows only in full.
func noteText(i int) string {
	return fmt.Sprintf("note %05d ", i) + strings.Repeat("lorem ipsum ", 170) + fmt.Sprintf("end of note %05d", i)
}

var (
	olderRE = regexp.MustCompile(`<a class="button" href="([^"]+)" rel="prev">`)
	newerRE = regexp.MustCompile(`<a class="button" href="([^"]+)" rel="next">`)
	entryRE = regexp.MustCompile(`<li class="entry[^"]*" id="ev-`)
)

// link is the page's link matched by re, unescaped, or "".
func link(body string, re *regexp.Regexp) string {
	m := re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// An engagement with a long history renders one page of it: the newest
// entries, read from the stream one by one and nothing more, under a bound
// on bytes, with links older (and newer) that reach every entry. A
// correction of the first entry, recorded last, is shown beside the entry
// it corrects, and each says where the other is.
func TestLongHistoryIsPaged(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "Long MOU", "parties": []string{"IOM", "WHO"}})
	ctx := context.Background()
	for i := range longNotes {
		if _, err := te.svc.Execute(ctx, app.Command{EngagementID: id, Type: domain.EngagementNoted,
			Data: raw(t, map[string]any{"note": noteText(i)}), Actor: "notary"}); err != nil {
			t.Fatalf("note %d: %v", i, err)
		}
	}
	recorded := te.history(t, id)[0].ID
	te.exec(t, app.Command{EngagementID: id, Type: domain.EngagementCorrected, Actor: "auditor-friend",
		Data: raw(t, map[string]any{"corrects": recorded, "reason": "the title was wrong",
			"fields": map[string]any{"title": "Long MOU, corrected"}})})
	entries := longNotes + 2

	stream := &countingReader{Reader: te.store}
	te.proj.UseReader(stream)
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator)) // a writer: forms on the page too

	const maxBytes = 400 << 10
	before := stream.events.Load()
	p := b.get("/engagements/" + id)
	if p.status != http.StatusOK {
		t.Fatalf("GET: %d", p.status)
	}
	if n := stream.events.Load() - before; n > 52 || stream.walks.Load() != 0 {
		t.Errorf("the page read %d events (and walked the stream %d times) of %d, want at most 52 (50 entries and the entry the newest corrects)",
			n, stream.walks.Load(), entries)
	}
	if len(p.body) > maxBytes {
		t.Errorf("the page is %d bytes, want at most %d", len(p.body), maxBytes)
	}
	t.Logf("first page: %d bytes, %d reads", len(p.body), stream.events.Load()-before)
	if n := len(entryRE.FindAllString(p.body, -1)); n != 50 {
		t.Errorf("the page shows %d entries, want the newest 50", n)
	}
	mustContain(t, p, fmt.Sprintf("note %05d", longNotes-1), "Corrects Recorded", "(an earlier entry, not on this page)",
		"Show the whole entry (and correct it)", "← Older entries", fmt.Sprintf("50 of %d entries", entries))
	mustNotContain(t, p, fmt.Sprintf("note %05d", longNotes-51), "end of note", "Newer entries")

	// Older pages, back to the first entry: each bounded, together all.
	seen := 0
	for pages := 1; ; pages++ {
		seen += len(entryRE.FindAllString(p.body, -1))
		older := link(p.body, olderRE)
		if older == "" {
			break
		}
		if pages > entries/50+2 {
			t.Fatalf("%d pages and no first entry yet", pages)
		}
		before := stream.events.Load()
		p = b.get(older)
		if p.status != http.StatusOK || len(p.body) > maxBytes {
			t.Fatalf("GET %s: %d, %d bytes", older, p.status, len(p.body))
		}
		if n := stream.events.Load() - before; n > 52 {
			t.Errorf("GET %s read %d events, want at most 52", older, n)
		}
	}
	if seen != entries {
		t.Errorf("the pages showed %d entries, want %d", seen, entries)
	}
	mustContain(t, p, "Recorded", "Corrected by auditor-friend", "the title was wrong", "(a later entry, not on this page)",
		"note 00000", "Newer entries →")

	// Newer from the oldest page reaches the second page of entries.
	if p = b.get(link(p.body, newerRE)); p.status != http.StatusOK {
		t.Fatalf("newer: %d", p.status)
	}
	mustContain(t, p, fmt.Sprintf("note %05d", 0+len(entryRE.FindAllString(p.body, -1))))

	// One entry in full, with its correction form.
	p = b.get("/engagements/" + id + "?entry=2")
	mustContain(t, p, "One entry, in full", "end of note 00000", "Correct this entry")
	if n := len(entryRE.FindAllString(p.body, -1)); n != 1 {
		t.Errorf("the page of one entry shows %d", n)
	}

	// As of a date the page is bounded too (the state is folded from the
	// whole history: reads are not, yet).
	p = b.get("/engagements/" + id + "?as_of=" + time.Now().UTC().Format(domain.DateLayout))
	if p.status != http.StatusOK || len(p.body) > maxBytes {
		t.Fatalf("as of today: %d, %d bytes", p.status, len(p.body))
	}
	mustContain(t, p, "as it was on", fmt.Sprintf("note %05d", longNotes-1), "← Older entries")
	if older := link(p.body, olderRE); !strings.Contains(older, "as_of=") {
		t.Errorf("the older link %q leaves the date out", older)
	}
}

// The page of history asked for must be a version.
func TestHistoryPageRefusesNonsense(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})
	b := te.browser(t)
	b.mustLogin(te.token(t, "audit-office", domain.RoleAuditor))
	for _, q := range []string{"?before=x", "?after=-1", "?entry=0", "?before=2&after=1"} {
		if p := b.get("/engagements/" + id + q); p.status != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", q, p.status)
		}
	}
	p := b.get("/engagements/" + id + "?after=5")
	if p.status != http.StatusOK {
		t.Fatalf("after the last entry: %d", p.status)
	}
	mustContain(t, p, "Newest entries")
}

// TestLongHistoryAsOfIsBounded: an engagement of 600 notes, one a day, seen
// as of a day late in them. The engagement page and the portfolio as of
// that day fold from the projection's last milestone inside the window, so
// they read a bounded number of events however long the history is (before
// milestones, the page read all ~500 notes inside the window and the
// portfolio folded them twice).
func TestLongHistoryAsOfIsBounded(t *testing.T) {
	te := newTestEnv(t)
	start := date(t, "2020-01-01")
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "Long MOU", "parties": []string{"IOM", "WHO"}})
	ctx := context.Background()
	const notes = 600
	for i := range notes {
		if _, err := te.svc.Execute(ctx, app.Command{EngagementID: id, Type: domain.EngagementNoted,
			OccurredAt: start.AddDate(0, 0, 1+i), Data: raw(t, map[string]any{"note": fmt.Sprintf("note %05d", i)}),
			Actor: "notary"}); err != nil {
			t.Fatalf("note %d: %v", i, err)
		}
	}
	asOf := start.AddDate(0, 0, 500).Format(domain.DateLayout) // notes 0…499 inside
	stream := &countingReader{Reader: te.store}
	te.proj.UseReader(stream)
	b := te.browser(t)
	b.mustLogin(te.token(t, "audit-office", domain.RoleAuditor))

	for _, c := range []struct {
		path string
		max  int64
		want string
	}{
		// The fold (≤ 64 after the milestone), the page's 50 entries.
		{"/engagements/" + id + "?as_of=" + asOf, 64 + 52, "note 00499"},
		// The fold, once.
		{"/?as_of=" + asOf, 64, "Long MOU"},
	} {
		before := stream.events.Load()
		p := b.get(c.path)
		if p.status != http.StatusOK {
			t.Fatalf("GET %s: %d", c.path, p.status)
		}
		mustContain(t, p, c.want)
		mustNotContain(t, p, "note 00500")
		if n := stream.events.Load() - before; n > c.max || stream.walks.Load() != 0 {
			t.Errorf("GET %s read %d events (and walked the stream %d times), want at most %d", c.path, n,
				stream.walks.Load(), c.max)
		}
	}
}
