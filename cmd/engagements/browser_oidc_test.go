package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/openid/openidtest"
)

// TestBrowserOIDC signs a coordinator in through her directory in headless
// Chromium, as she would: the sign-in page's directory button, the
// provider's own login page (zitadel's OP, in process), back to the
// portfolio; she records a meeting's attendance with the page's form and
// the event names her, with the issuer and her subject as CloudEvents
// extensions. Signing out goes through the provider's end_session_endpoint
// and back to the sign-in page; a person in no mapped group gets the 403
// page. Screenshots go to a directory the test logs.
func TestBrowserOIDC(t *testing.T) {
	chromium := findChromium(t)
	op := openidtest.Start(t, dirAmina, dirGuest)
	addr := freeAddr(t)
	base := "http://" + addr
	op.AddClient("engagements", "engagements-secret", base)
	dir := t.TempDir()
	m := startDirMain(t, addr, "", dir, oidcConfig(op, time.Minute), false)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	readToken(t, dir)
	code, created := postJSON(t, base+"/v1/engagements",
		`{"kind":"meeting","title":"Health of migrants: side event","parties":["IOM","WHO"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, created)
	}
	id := created["id"].(string)
	if code, body := postJSON(t, base+"/v1/engagements/"+id+"/events",
		`{"type":"meeting.scheduled","data":{"starts_on":"2026-05-20","location":"Geneva"}}`); code != http.StatusCreated {
		t.Fatalf("schedule: %d %v", code, body)
	}

	shots, err := os.MkdirTemp("", "engagements-browser-oidc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", shots)
	a := newBrowser(t, chromium, base, shots)

	a.open("/login")
	a.mustSee("sign-in page", "Sign in with your organisation's account", "Access token")
	a.screenshot("login")
	if code := a.submit("sign in with the directory", "#directory-signin"); code != 200 {
		a.fatalf("the provider's login page: status %d", code)
	}
	if loc := evaluate[string](a, "where", `location.href`); !strings.HasPrefix(loc, op.Issuer+"/login/username") {
		a.fatalf("not on the provider's login page: %s", loc)
	}
	a.screenshot("provider-login")
	a.do("type her name and password", chromedp.SendKeys(chromedp.ID("username"), "amina"),
		chromedp.SendKeys(chromedp.ID("password"), openidtest.Password))
	if code := a.submit("log in at the provider", "button[type=submit]"); code != 200 {
		a.fatalf("back from the provider: status %d", code)
	}
	waitAcross(a, "the portfolio, signed in", `location.href === '`+base+`/' && document.querySelector('.who-name')?.textContent === 'amina@who.example'`)
	a.mustSee("portfolio", "Portfolio", "coordinator", "Sign out")
	a.screenshot("portfolio")

	// Record the meeting's attendance through the page.
	a.open("/engagements/" + id)
	a.do("open the attendance form", chromedp.Click(chromedp.CSS("#form-meeting-attended > summary")),
		chromedp.SetValue(chromedp.ID("form-meeting-attended-role"), "speaker"),
		chromedp.SendKeys(chromedp.ID("form-meeting-attended-delegation"), "Amina (WHO), two IOM colleagues"),
		chromedp.SetValue(chromedp.ID("form-meeting-attended-occurred_at"), "2026-05-20"))
	a.screenshot("attendance-form")
	if code := a.submit("record the attendance", "#form-meeting-attended button[type=submit]"); code != 200 {
		a.fatalf("record: status %d, want 200", code)
	}
	a.mustSee("attended", "Saved: attended.", "amina@who.example")
	a.screenshot("attended")

	// The event names her, with the issuer and her subject.
	var h struct {
		Events []struct {
			Type         string `json:"type"`
			Sequence     uint64 `json:"sequence"`
			Actor        string `json:"actor"`
			ActorIssuer  string `json:"actor_issuer"`
			ActorSubject string `json:"actor_subject"`
		} `json:"events"`
	}
	if code := getJSON(t, base+"/v1/engagements/"+id+"/history", &h); code != http.StatusOK || len(h.Events) != 3 {
		t.Fatalf("history: %d, %d events", code, len(h.Events))
	}
	last := h.Events[2]
	if last.Type != "meeting.attended" || last.Actor != "amina@who.example" || last.ActorIssuer != op.Issuer || last.ActorSubject != "u-amina" {
		t.Errorf("the attendance: %+v; want actor amina@who.example, issuer %s, subject u-amina", last, op.Issuer)
	}
	if first := h.Events[0]; first.ActorIssuer != "" || first.ActorSubject != "" {
		t.Errorf("a token's event: %+v; want no issuer or subject", first)
	}
	// As stored: a valid CloudEvent with the two extensions.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := m.Store.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetMsg(ctx, last.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	ce := cloudevents.NewEvent()
	if err := json.Unmarshal(msg.Data, &ce); err != nil {
		t.Fatal(err)
	}
	if err := ce.Validate(); err != nil {
		t.Errorf("stored event: %v", err)
	}
	if ext := ce.Extensions(); ext["actorissuer"] != op.Issuer || ext["actorsubject"] != "u-amina" || ext["actor"] != "amina@who.example" {
		t.Errorf("stored event's extensions: %v", ext)
	}

	// Sign out: here, then at the provider, then back to the sign-in page.
	a.do("sign out", chromedp.Click(chromedp.CSS("form[action='/logout'] button")))
	waitAcross(a, "the sign-in page after the provider", `location.href === '`+base+`/login?signed_out=1' && document.body.textContent.includes('You are signed out.')`)
	a.screenshot("signed-out")
	if code, _, _ := get(t, noFollow(nil), base+"/"); code != http.StatusSeeOther {
		t.Errorf("GET / signed out: %d", code)
	}

	// Guest is in no mapped group: the 403 page.
	if code := a.submit("sign in with the directory again", "#directory-signin"); code != 200 {
		a.fatalf("the provider's login page: status %d", code)
	}
	a.do("type guest's name and password", chromedp.SendKeys(chromedp.ID("username"), "guest"),
		chromedp.SendKeys(chromedp.ID("password"), openidtest.Password))
	if code := a.submit("log in at the provider as guest", "button[type=submit]"); code != 403 {
		a.fatalf("guest back from the provider: status %d, want 403", code)
	}
	a.mustSee("no access", "No access for your account", "guest@who.example", "none of your groups")
	a.screenshot("no-role")
	// The browser logs the 403 as an error: it is the one expected.
	expected := func(msg string) bool {
		return strings.Contains(msg, "status of 403") && strings.Contains(msg, "/login/oidc/callback")
	}
	deadline := time.Now().Add(stepTimeout)
	for !slices.ContainsFunc(a.console.errors(), expected) {
		if time.Now().After(deadline) {
			t.Fatal("the browser did not log the 403")
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.console.mu.Lock()
	a.console.msgs = slices.DeleteFunc(a.console.msgs, expected)
	a.console.mu.Unlock()
}

// waitFor across navigations: the page moves on by itself (a meta refresh,
// the provider's redirects), so the expression is evaluated again in each
// new document until it holds.
func waitAcross(tb *tab, what, expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.fatalf("wait for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
