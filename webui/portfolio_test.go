package webui_test

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// seed records a small portfolio with dates from the public record.
type seeded struct{ mou, framework, gcm, unhcr, uhc string }

func seed(t *testing.T, te *testEnv) seeded {
	t.Helper()
	var s seeded
	s.mou = te.record(t, "1999-01-01", map[string]any{"kind": "agreement", "title": "IOM–WHO MOU",
		"parties": []string{"IOM", "WHO"}, "tags": []string{"mou"}})
	te.append(t, s.mou, domain.AgreementSigned, "1999-05-01", map[string]any{"signed_on": "1999-05-01"})
	te.append(t, s.mou, domain.AgreementRenewed, "2019-01-15", map[string]any{"renewed_on": "2019-01-15"})
	s.framework = te.record(t, "2017-05-01", map[string]any{"kind": "policy", "title": "Framework of priorities",
		"parties": []string{"IOM", "WHO"}, "instrument": "framework"})
	te.append(t, s.framework, domain.PolicyAdopted, "2017-05-29", map[string]any{"adopted_by": "WHA"})
	s.gcm = te.record(t, "2018-12-10", map[string]any{"kind": "policy", "title": "Global Compact for Migration",
		"parties": []string{"IOM", "WHO"}, "instrument": "compact"})
	te.append(t, s.gcm, domain.EngagementLinked, "2018-12-10", map[string]any{"target_id": s.framework, "relation": "references"})
	s.unhcr = te.record(t, "2020-03-01", map[string]any{"kind": "agreement", "title": "IOM–UNHCR data-sharing agreement",
		"parties": []string{"IOM", "UNHCR"}, "tags": []string{"data"}})
	s.uhc = te.record(t, "2019-09-01", map[string]any{"kind": "meeting", "title": "UHC high-level meeting",
		"parties": []string{"IOM", "WHO"}, "level": "UNGA high-level meeting"})
	te.append(t, s.uhc, domain.MeetingScheduled, "2019-09-02", map[string]any{"starts_on": "2019-09-23"})
	return s
}

var titles = []string{"IOM–WHO MOU", "Framework of priorities", "Global Compact for Migration",
	"IOM–UNHCR data-sharing agreement", "UHC high-level meeting"}

func TestPortfolio(t *testing.T) {
	te := newTestEnv(t)
	seed(t, te)
	b := te.browser(t)
	b.mustLogin(te.token(t, "audit-office", domain.RoleAuditor))

	for _, tc := range []struct {
		name  string
		query url.Values
		shows []string
		says  []string
	}{
		{"everything", nil, titles, []string{"5 engagements", "2 Agreements", "2 Policies", "0 Initiatives", "1 Meeting",
			"Renewed 15 Jan 2019", "draft 1", "active 1", "adopted 1", "in progress 1", "scheduled 1"}},
		{"kind agreement", url.Values{"kind": {"agreement"}}, []string{"IOM–WHO MOU", "IOM–UNHCR data-sharing agreement"},
			[]string{"2 of 5 engagements"}},
		{"status draft", url.Values{"status": {"draft"}}, []string{"IOM–UNHCR data-sharing agreement"}, nil},
		{"status adopted", url.Values{"status": {"adopted"}}, []string{"Framework of priorities"}, nil},
		{"party UNHCR, any case", url.Values{"party": {"unhcr"}}, []string{"IOM–UNHCR data-sharing agreement"},
			[]string{"1 engagement", "1 Agreement"}},
		{"text in the title", url.Values{"q": {"compact"}}, []string{"Global Compact for Migration"}, nil},
		{"text in a tag", url.Values{"q": {"mou"}}, []string{"IOM–WHO MOU"}, nil},
		{"kind and status together", url.Values{"kind": {"meeting"}, "status": {"scheduled"}}, []string{"UHC high-level meeting"}, nil},
		{"nothing matches", url.Values{"q": {"nothing like this"}}, nil, []string{"No engagements match"}},
		{"an unknown kind is explained and ignored", url.Values{"kind": {"treaty"}}, titles,
			[]string{"must be agreement, policy, initiative or meeting"}},
		{"an unknown status is explained", url.Values{"status": {"signed"}}, titles, []string{"is not a status of any kind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.get("/?" + tc.query.Encode())
			if p.status != http.StatusOK {
				t.Fatalf("status %d", p.status)
			}
			mustContain(t, p, tc.shows...)
			mustContain(t, p, tc.says...)
			for _, title := range titles {
				if !contains(tc.shows, title) {
					mustNotContain(t, p, title)
				}
			}
		})
	}
}

func TestPortfolioAsOf(t *testing.T) {
	te := newTestEnv(t)
	s := seed(t, te)
	b := te.browser(t)
	b.mustLogin(te.token(t, "audit-office", domain.RoleAuditor))

	p := b.get("/?as_of=2018-01-01")
	if p.status != http.StatusOK {
		t.Fatalf("status %d", p.status)
	}
	mustContain(t, p, "Portfolio as of 1 Jan 2018", "IOM–WHO MOU", "Framework of priorities", "2 engagements",
		"Signed 1 May 1999", "Adopted 29 May 2017")
	mustNotContain(t, p, "Global Compact for Migration", "IOM–UNHCR", "UHC high-level meeting", "Renewed")

	// The day before adoption, the framework was still in progress.
	p = b.get("/?as_of=2017-05-28&status=in_progress")
	mustContain(t, p, "Framework of priorities")

	// As known on a date: only what was recorded by then. The seed was
	// recorded today, so yesterday the system knew nothing of it.
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(domain.DateLayout)
	p = b.get("/?known_at=" + yesterday)
	mustContain(t, p, "as known on", "As known on", "No engagements match")
	mustNotContain(t, p, "Global Compact for Migration", "Framework of priorities")
	p = b.get("/?known_at=" + time.Now().UTC().Format(domain.DateLayout) + "&as_of=2017-05-28&status=in_progress")
	mustContain(t, p, "Framework of priorities", "as known on")
	if p := b.get("/?known_at=2017-13-01"); p.status != http.StatusOK || !strings.Contains(p.body, "Global Compact for Migration") {
		t.Errorf("a known_at that is not a date: status %d, want today's portfolio with the problem", p.status)
	}

	// The engagement page as of a date: its state then, no forms.
	p = b.get("/engagements/" + s.mou + "?as_of=2018-01-01")
	if p.status != http.StatusOK {
		t.Fatalf("engagement as of: %d", p.status)
	}
	mustContain(t, p, "as it was on 1 Jan 2018", "Signed")
	mustNotContain(t, p, "Renewed")
	if got := offered(p.body); len(got) != 0 {
		t.Errorf("forms on a past state: %v", got)
	}
	if p := b.get("/engagements/" + s.unhcr + "?as_of=2018-01-01"); p.status != http.StatusNotFound {
		t.Errorf("engagement before it began: %d, want 404", p.status)
	}
	// The engagement page as known on a date: yesterday nothing of it was
	// recorded; today it is all there, no forms, and the links keep the day.
	if p := b.get("/engagements/" + s.mou + "?known_at=" + yesterday); p.status != http.StatusNotFound ||
		!strings.Contains(p.body, "Nothing of this engagement had been recorded") {
		t.Errorf("engagement as known yesterday: %d, want 404 saying nothing was recorded", p.status)
	}
	today := time.Now().UTC().Format(domain.DateLayout)
	p = b.get("/engagements/" + s.mou + "?known_at=" + today)
	mustContain(t, p, "as it was known on", "State as known on", "Renewed")
	if !strings.Contains(p.body, `name="known_at" type="date" value="`+today+`"`) {
		t.Error("the date form does not show the day known_at")
	}
	if got := offered(p.body); len(got) != 0 {
		t.Errorf("forms on a state as known on a date: %v", got)
	}
	if p := b.get("/engagements/" + s.mou + "?known_at=2019-02-30"); p.status != http.StatusBadRequest {
		t.Errorf("known_at that is not a date: %d, want 400", p.status)
	}
	if p = b.get("/?known_at=" + today); !strings.Contains(p.body, "/engagements/"+s.mou+"?known_at="+today) {
		t.Error("the portfolio as known on a day does not link its rows to the engagement as known on that day")
	}

	// A date that is not one is explained; the portfolio shows today's.
	p = b.get("/?as_of=20180101")
	if p.status != http.StatusOK {
		t.Errorf("bad date: %d", p.status)
	}
	mustContain(t, p, "must be a date as YYYY-MM-DD", "Global Compact for Migration")
}

// countingReader is the projection's Reader, of our own, counting what is
// read from the stream.
type countingReader struct {
	projections.Reader
	events, walks atomic.Int64
}

func (r *countingReader) Event(ctx context.Context, seq uint64) (domain.Event, error) {
	r.events.Add(1)
	return r.Reader.Event(ctx, seq)
}

func (r *countingReader) Read(ctx context.Context, after uint64, f domain.Filter) iter.Seq2[domain.Message, error] {
	r.walks.Add(1)
	return r.Reader.Read(ctx, after, f)
}

// The portfolio renders from the projection alone: each row's last change
// is the projection's, and no row reads its history from the stream.
func TestPortfolioReadsNothingFromTheStream(t *testing.T) {
	te := newTestEnv(t)
	seed(t, te)
	stream := &countingReader{Reader: te.store}
	te.proj.UseReader(stream)
	b := te.browser(t)
	b.mustLogin(te.token(t, "audit-office", domain.RoleAuditor))

	for _, query := range []string{"", "?kind=agreement", "?party=who&status=active"} {
		p := b.get("/" + query)
		if p.status != http.StatusOK {
			t.Fatalf("GET /%s: status %d", query, p.status)
		}
	}
	p := b.get("/")
	mustContain(t, p, "Renewed 15 Jan 2019", "Adopted 29 May 2017", "Recorded")
	if n, w := stream.events.Load(), stream.walks.Load(); n != 0 || w != 0 {
		t.Errorf("rendering the portfolio read %d events and read the stream %d times, want none", n, w)
	}
	// As of a date the projection knows from its timeline which events fall
	// in the window: it reads only those, and only of the engagements some of
	// whose events fall outside it (the others are as they are now).
	asOf := time.Date(2018, 1, 1, 23, 59, 59, 999999999, time.UTC)
	want := 0
	all, _, err := te.proj.List(context.Background(), projections.Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range all {
		h, err := te.proj.History(context.Background(), it.ID(), domain.Window{})
		if err != nil {
			t.Fatal(err)
		}
		in := 0
		for _, ev := range h {
			if !ev.OccurredAt.After(asOf) {
				in++
			}
		}
		if in < len(h) && !h[0].OccurredAt.After(asOf) {
			want += in
		}
	}
	before := stream.events.Load()
	mustContain(t, b.get("/?as_of=2018-01-01"), "Signed 1 May 1999", "Adopted 29 May 2017")
	if n := stream.events.Load() - before; n != int64(want) || want == 0 {
		t.Errorf("the portfolio as of a date read %d events, want %d (the window's events of the engagements it changed since, once: the page is taken from the counts' fold)",
			n, want)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
