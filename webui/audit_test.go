package webui_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

// TestAuditorDesk: an auditor runs verify from the browser and sees the
// same head as the store's own verify, downloads the log as NDJSON and CSV,
// and filters the log by the date events were recorded; a coordinator gets
// none of it, and a verify without the form's CSRF token is refused.
func TestAuditorDesk(t *testing.T) {
	te := newTestEnv(t)
	seed(t, te)
	want, err := te.store.Verify(context.Background(), nil)
	if err != nil || !want.OK {
		t.Fatalf("store verify: %+v, %v", want, err)
	}

	coord := te.browser(t)
	coord.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	if p := coord.get("/"); strings.Contains(p.body, `href="/verify"`) {
		t.Error("a coordinator is offered the verify page")
	}
	for _, path := range []string{"/verify", "/export.ndjson", "/export.csv"} {
		if p := coord.get(path); p.status != http.StatusForbidden {
			t.Errorf("coordinator GET %s: %d, want 403", path, p.status)
		}
	}

	b := te.browser(t)
	b.mustLogin(te.token(t, "audit-office", domain.RoleAuditor))
	p := b.get("/verify")
	mustContain(t, p, "Not verified yet on this server", "Verify now")
	if p := b.post("/verify", url.Values{"_csrf": {"forged"}}); p.status != http.StatusForbidden {
		t.Errorf("POST /verify with a forged CSRF token: %d, want 403", p.status)
	}
	b.get("/verify")
	if p := b.submit("/verify", url.Values{}); p.status != http.StatusSeeOther || p.location() != "/verify" {
		t.Fatalf("POST /verify: %d → %q", p.status, p.location())
	}
	// The page refreshes itself while verify runs; follow it as a browser
	// would, until it says the run is over (bounded by the number of pages).
	for pages := 0; ; pages++ {
		p = b.get("/verify")
		if p.header.Get("Refresh") == "" {
			break
		}
		mustContain(t, p, "Verifying…", "of")
		if pages > 600 {
			t.Fatal("verify still running after 600 page loads")
		}
		time.Sleep(50 * time.Millisecond) // a browser's refresh interval, shortened
	}
	mustContain(t, p, "The record is intact", want.Head, "Verify again")

	// Exports: every event, as stored.
	nd := b.get("/export.ndjson")
	if nd.status != http.StatusOK || !strings.HasPrefix(nd.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export.ndjson: %d %q", nd.status, nd.header.Get("Content-Disposition"))
	}
	lines := 0
	for sc := bufio.NewScanner(strings.NewReader(nd.body)); sc.Scan(); lines++ {
		if !strings.HasPrefix(sc.Text(), "{") {
			t.Fatalf("export line %d is not JSON: %q", lines, sc.Text())
		}
	}
	if uint64(lines) != want.Events {
		t.Errorf("export.ndjson has %d events, verify read %d", lines, want.Events)
	}
	if csv := b.get("/export.csv"); csv.status != http.StatusOK || strings.Count(csv.body, "\n") < lines+1 ||
		!strings.HasPrefix(csv.body, "sequence,event_id") {
		t.Errorf("export.csv: %d, %d lines", csv.status, strings.Count(csv.body, "\n"))
	}

	// The log from a recording date: today holds everything, tomorrow
	// nothing; a date that is not one is explained.
	today := time.Now().UTC()
	p = b.get("/log?since=" + today.Format(domain.DateLayout))
	if p.status != http.StatusOK || strings.Count(p.body, `<tr id="seq-`) == 0 {
		t.Errorf("log since today: %d, %d rows", p.status, strings.Count(p.body, `<tr id="seq-`))
	}
	p = b.get("/log?since=" + today.AddDate(0, 0, 1).Format(domain.DateLayout))
	if n := strings.Count(p.body, `<tr id="seq-`); p.status != http.StatusOK || n != 0 {
		t.Errorf("log since tomorrow: %d, %d rows, want none", p.status, n)
	}
	if p := b.get("/log?since=2019-02-30"); p.status != http.StatusBadRequest {
		t.Errorf("log since a day that does not exist: %d, want 400", p.status)
	}
}
