package webui_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apognu/gocal"
	"github.com/iom-who/engagements/domain"
)

var feedURLRE = regexp.MustCompile(`<input id="feed-url" type="text" readonly value="([^"]+)"`)

// feedURL is the secret URL the page shows, or "".
func feedURL(body string) string {
	if m := feedURLRE.FindStringSubmatch(body); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

// fetchFeed GETs a feed as a calendar app does: no cookie, no token.
func fetchFeed(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestFeedsPage: a coordinator makes a calendar feed on /feeds (CSRF
// checked), sees its address once and copies it, a calendar app reads it
// without signing in; another coordinator neither sees nor revokes it;
// revoking it ends the address at once. Refused forms keep what was typed
// and store nothing.
func TestFeedsPage(t *testing.T) {
	te := newTestEnv(t)
	in40 := time.Now().UTC().AddDate(0, 0, 40).Format(domain.DateLayout)
	mou := te.record(t, "2019-01-01", map[string]any{"kind": "agreement", "title": "Memorandum of Understanding IOM–WHO",
		"parties": []string{"IOM", "WHO"}})
	te.append(t, mou, domain.AgreementSigned, "2019-01-01", map[string]any{"signed_on": "2019-01-01", "expires_on": in40})

	maria := te.browser(t)
	maria.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	p := maria.get("/feeds")
	if p.status != http.StatusOK {
		t.Fatalf("GET /feeds: %d", p.status)
	}
	mustContain(t, p, "Calendar feeds", "No calendar feeds yet", "Create feed")
	if !strings.Contains(p.body, `href="/feeds"`) {
		t.Error("the top bar does not link to /feeds")
	}

	// Without the CSRF token nothing is made.
	if p := maria.post("/feeds", url.Values{"name": {"x"}}); p.status != http.StatusForbidden {
		t.Errorf("POST /feeds without _csrf: %d, want 403", p.status)
	}
	maria.get("/feeds")
	p = maria.submit("/feeds", url.Values{"name": {"Maria's MOU feed"}, "within": {"soon"}, "party": {"WHO"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Errorf("a bad within: %d, want 422", p.status)
	}
	mustContain(t, p, `must be a whole number of days followed by "d"`)
	if !strings.Contains(p.body, `value="Maria&#39;s MOU feed"`) || !strings.Contains(p.body, `value="soon"`) {
		t.Error("the refused form lost what was typed")
	}
	if feeds, err := te.cals.List(context.Background(), ""); err != nil || len(feeds) != 0 {
		t.Fatalf("after refused forms the feeds are %v (%v), want none", feeds, err)
	}

	p = maria.submit("/feeds", url.Values{"name": {"Maria's MOU feed"}, "within": {"365d"}, "party": {"WHO"}, "kind": {"agreement"}})
	if p.status != http.StatusSeeOther || p.location() != "/feeds" {
		t.Fatalf("create: %d %s, want 303 to /feeds", p.status, p.location())
	}
	p = maria.get("/feeds")
	u := feedURL(p.body)
	if !strings.HasPrefix(u, te.URL+"/calendars/") || !strings.HasSuffix(u, ".ics") {
		t.Fatalf("the page shows no feed address (got %q):\n%s", u, text(p.body))
	}
	mustContain(t, p, "shown only once", "Maria's MOU feed", "365d")
	if !strings.Contains(p.body, `data-copy="feed-url"`) || !strings.Contains(p.body, `href="webcal://`) {
		t.Error("no copy button or webcal link")
	}
	if cc := p.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q on the page with the secret", cc)
	}
	// Shown once: the next page lists the feed without its address.
	p = maria.get("/feeds")
	if feedURL(p.body) != "" || strings.Contains(p.body, strings.TrimSuffix(strings.TrimPrefix(u, te.URL+"/calendars/"), ".ics")) {
		t.Error("the feed's address is shown again")
	}
	mustContain(t, p, "Maria's MOU feed")

	// A calendar app reads it without signing in.
	status, body := fetchFeed(t, u)
	if status != http.StatusOK {
		t.Fatalf("fetch the feed: %d %s", status, body)
	}
	cal := gocal.NewParser(bytes.NewReader(body))
	start, end := time.Now().AddDate(-1, 0, 0), time.Now().AddDate(2, 0, 0)
	cal.Start, cal.End = &start, &end
	if err := cal.Parse(); err != nil {
		t.Fatal(err)
	}
	if len(cal.Events) != 1 || cal.Events[0].Summary != "Expires: Memorandum of Understanding IOM–WHO" ||
		cal.Events[0].Uid != mou+"-expiry@engagements" {
		t.Fatalf("the feed's events = %+v\n%s", cal.Events, body)
	}

	// Li, another coordinator, sees no feed and cannot revoke Maria's.
	li := te.browser(t)
	li.mustLogin(te.token(t, "li", domain.RoleCoordinator))
	p = li.get("/feeds")
	mustContain(t, p, "No calendar feeds yet")
	mustNotContain(t, p, "Maria's MOU feed")
	feeds, err := te.cals.List(context.Background(), "maria")
	if err != nil || len(feeds) != 1 {
		t.Fatalf("maria's feeds: %v %v", feeds, err)
	}
	id := feeds[0].ID
	if p := li.submit("/feeds/"+id+"/revoke", url.Values{}); p.status != http.StatusNotFound {
		t.Errorf("li revokes maria's feed: %d, want 404", p.status)
	}
	if status, _ := fetchFeed(t, u); status != http.StatusOK {
		t.Errorf("maria's feed after li's attempt: %d", status)
	}

	// Maria revokes it: the address is a 404 at once.
	maria.get("/feeds")
	p = maria.submit("/feeds/"+id+"/revoke", url.Values{})
	if p.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", p.status)
	}
	mustContain(t, maria.get("/feeds"), "is revoked", "No calendar feeds yet")
	if status, _ := fetchFeed(t, u); status != http.StatusNotFound {
		t.Errorf("a revoked feed: %d, want 404", status)
	}
}

// TestFeedsPageRoles: auditors may make feeds too; a subscriber token
// cannot sign in, so /feeds sends it to the sign-in page.
func TestFeedsPageRoles(t *testing.T) {
	te := newTestEnv(t)
	aud := te.browser(t)
	aud.mustLogin(te.token(t, "audrey", domain.RoleAuditor))
	aud.get("/feeds")
	if p := aud.submit("/feeds", url.Values{}); p.status != http.StatusSeeOther {
		t.Errorf("an auditor makes a feed: %d", p.status)
	}
	if u := feedURL(aud.get("/feeds").body); u == "" {
		t.Error("the auditor's feed address is not shown")
	}
	sub := te.browser(t)
	if p := sub.login(te.token(t, "hooks", domain.RoleSubscriber)); p.status != http.StatusForbidden {
		t.Errorf("a subscriber signs in: %d, want 403", p.status)
	}
	if p := sub.get("/feeds"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/login") {
		t.Errorf("a subscriber opens /feeds: %d %s, want 303 to /login", p.status, p.location())
	}
}
