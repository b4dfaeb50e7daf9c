package webui_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

// TestPortfolioDesk: the portfolio opens with what is overdue or coming
// up, shows each agreement's expiry, sorts by any column both ways, pages
// forwards and back, and downloads the filtered, sorted view as CSV (every
// page of it, with formulas defused).
func TestPortfolioDesk(t *testing.T) {
	te := newTestEnv(t)
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	today := time.Now().UTC()
	day := func(n int) string { return today.AddDate(0, 0, n).Format(domain.DateLayout) }

	soon := te.record(t, "2019-01-10", map[string]any{"kind": "agreement", "title": "Expiring soon", "parties": []string{"IOM", "WHO"}})
	te.append(t, soon, domain.AgreementSigned, "2019-01-15", map[string]any{"signed_on": "2019-01-15", "expires_on": day(20), "notice_days": 30})
	late := te.record(t, "2019-01-10", map[string]any{"kind": "agreement", "title": "=HYPERLINK(\"http://evil\")", "parties": []string{"IOM", "WHO"}})
	te.append(t, late, domain.AgreementSigned, "2019-01-15", map[string]any{"signed_on": "2019-01-15", "expires_on": day(400)})
	m := te.record(t, "2019-01-10", map[string]any{"kind": "meeting", "title": "Regional committee", "parties": []string{"IOM", "WHO"}})
	te.append(t, m, domain.MeetingScheduled, "2019-01-15", map[string]any{"starts_on": day(3)})
	te.append(t, m, domain.EngagementActionAssigned, "2019-01-16", map[string]any{"action_id": "brief", "title": "Brief the delegation",
		"owner": "IOM", "due_on": day(-2)})
	for i := range 203 { // three pages of 100
		te.record(t, "2020-01-01", map[string]any{"kind": "initiative", "title": fmt.Sprintf("Network %03d", i), "parties": []string{"IOM"}})
	}

	p := b.get("/")
	if p.status != http.StatusOK {
		t.Fatalf("portfolio: %d", p.status)
	}
	tx := text(p.body)
	order := []string{"overdue 10 d", "Notice deadline — Expiring soon", "overdue 2 d",
		"Action due: Brief the delegation (IOM) — Regional committee", "in 3 d", "Meeting — Regional committee", "in 20 d", "Expires — Expiring soon"}
	last := -1
	for _, want := range order {
		i := strings.Index(tx, want)
		if i < 0 || i < last {
			t.Fatalf("coming up: %q missing or out of order in %s", want, tx[:min(len(tx), 900)])
		}
		last = i
	}
	if strings.Contains(tx[:strings.Index(tx, "Search")], "HYPERLINK") {
		t.Error("an expiry 400 days ahead is in the 90-day panel")
	}
	mustContain(t, p, "Showing 1–100 of 206", "Next 100")
	mustNotContain(t, p, "Previous 100")
	if b.get("/?kind=agreement").body != "" && strings.Contains(text(b.last.body), "Coming up") {
		t.Error("a filtered portfolio shows the coming-up panel")
	}

	// The expiry column and sorting by it, both ways.
	rowsOf := func(body string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`<th scope="row" data-label="Title"><a href="[^"]+">([^<]+)</a>`).FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	p = b.get("/?kind=agreement&sort=expires")
	if got := rowsOf(p.body); strings.Join(got, "|") != "Expiring soon|=HYPERLINK(&#34;http://evil&#34;)" {
		t.Errorf("sorted by expiry: %v", got)
	}
	mustContain(t, p, dayText(t, day(20)), dayText(t, day(400)))
	if !strings.Contains(p.body, `aria-sort="ascending"`) {
		t.Error("the sorted column does not say so")
	}
	p = b.get("/?kind=agreement&sort=expires&dir=desc")
	if got := rowsOf(p.body); len(got) != 2 || got[0] != "=HYPERLINK(&#34;http://evil&#34;)" {
		t.Errorf("sorted by expiry, descending: %v", got)
	}
	p = b.get("/?sort=title&dir=desc")
	if got := rowsOf(p.body); len(got) != 100 || got[0] != "Regional committee" || got[1] != "Network 202" {
		t.Errorf("by title, descending: %v", got[:3])
	}

	// Paging forwards and back keeps the sort.
	p = b.get("/?sort=title&page=3")
	mustContain(t, p, "Showing 201–206 of 206", "Previous 100")
	mustNotContain(t, p, "Next 100")
	prev := regexp.MustCompile(`<a class="button" href="([^"]+)" rel="prev">`).FindStringSubmatch(p.body)
	if prev == nil {
		t.Fatal("no previous link")
	}
	p = b.get(strings.ReplaceAll(prev[1], "&amp;", "&"))
	if got := rowsOf(p.body); len(got) != 100 || got[0] != "Network 098" {
		t.Errorf("page 2 by title: first %v", got[:1])
	}
	for _, bad := range []string{"/?sort=secret", "/?page=0", "/?page=x", "/?dir=sideways"} {
		if p := b.get(bad); p.status != http.StatusOK || !strings.Contains(p.body, "error-text") {
			t.Errorf("%s: %d, no error shown", bad, p.status)
		}
	}

	// The CSV is the filtered, sorted view, every page, formulas defused.
	c := b.get("/portfolio.csv?kind=agreement&sort=expires&dir=desc")
	if c.status != http.StatusOK || c.header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %d %s", c.status, c.header.Get("Content-Type"))
	}
	records, err := csv.NewReader(strings.NewReader(c.body)).ReadAll()
	if err != nil || len(records) != 3 {
		t.Fatalf("csv: %v, %d records", err, len(records))
	}
	if records[1][2] != `'=HYPERLINK("http://evil")` || records[1][5] != day(400) || records[2][2] != "Expiring soon" {
		t.Errorf("csv rows %q", records[1:])
	}
	all := b.get("/portfolio.csv")
	if n := strings.Count(all.body, "\n"); n != 207 {
		t.Errorf("csv of everything: %d lines, want 207", n)
	}
	if p := b.get("/portfolio.csv?sort=nope"); p.status != http.StatusBadRequest {
		t.Errorf("csv with a bad sort: %d", p.status)
	}
}

// dayText is a date as the pages show it.
func dayText(t *testing.T, on string) string {
	t.Helper()
	d, err := time.Parse(domain.DateLayout, on)
	if err != nil {
		t.Fatal(err)
	}
	return d.Format("2 Jan 2006")
}
