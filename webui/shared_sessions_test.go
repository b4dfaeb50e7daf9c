package webui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iom-who/engagements/app/stack"
	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/sessions"
	"github.com/iom-who/engagements/tokens"
	"github.com/iom-who/engagements/webui"
)

// instance is one engagements instance on a shared event store: its own
// token store, session store (each with its watch), stack and HTTP server,
// as another process on the same NATS would have.
type instance struct {
	*httptest.Server
	tokens *tokens.Store
	// ahead moves the instance's clock forward.
	ahead atomic.Int64
	stop  func()
}

func startInstance(t *testing.T, store *eventstore.Store) *instance {
	t.Helper()
	ctx := context.Background()
	ts, err := tokens.Open(ctx, store, tokens.Config{})
	if err != nil {
		t.Fatalf("tokens: %v", err)
	}
	ss, err := sessions.Open(ctx, store.JetStream(), sessions.Config{})
	if err != nil {
		ts.Close()
		t.Fatalf("sessions: %v", err)
	}
	cals, err := calendars.Open(ctx, store.JetStream(), calendars.Config{})
	if err != nil {
		ss.Close()
		ts.Close()
		t.Fatalf("calendars: %v", err)
	}
	parts, err := stack.Start(stack.Config{Store: store, Tokens: ts, Sessions: ss, Calendars: cals, UI: true,
		UIOptions: []webui.Option{noLoginLimit}})
	if err != nil {
		ss.Close()
		ts.Close()
		t.Fatal(err)
	}
	in := &instance{tokens: ts}
	webui.SetClock(parts.UI, func() time.Time { return time.Now().Add(time.Duration(in.ahead.Load())) })
	in.Server = httptest.NewServer(parts.API)
	var once sync.Once
	in.stop = func() {
		once.Do(func() {
			parts.UI.Close()
			in.Server.Close()
			if err := parts.Close(); err != nil {
				t.Errorf("projector: %v", err)
			}
			ss.Close()
			ts.Close()
		})
	}
	t.Cleanup(in.stop)
	return in
}

// visit is a request to in carrying the session cookie only: the status and
// where it redirects to.
func (in *instance) visit(t *testing.T, method, path, cookie string, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, in.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "engagements_session", Value: cookie})
	c := &http.Client{Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// signedInOn reports whether cookie is a session instance in serves: the
// portfolio answers 200, or 303 to the sign-in page.
func signedInOn(t *testing.T, in *instance, cookie string) bool {
	t.Helper()
	status, to := in.visit(t, http.MethodGet, "/", cookie, nil)
	switch {
	case status == http.StatusOK:
		return true
	case status == http.StatusSeeOther && strings.HasPrefix(to, "/login"):
		return false
	default:
		t.Fatalf("GET /: %d to %q", status, to)
		return false
	}
}

// signIn signs in on in with token through the form and returns the
// session cookie's value.
func signIn(t *testing.T, in *instance, token string) string {
	t.Helper()
	te := &testEnv{Server: in.Server}
	b := te.browser(t)
	b.mustLogin(token)
	u, _ := url.Parse(in.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "engagements_session" {
			return c.Value
		}
	}
	t.Fatal("no session cookie after signing in")
	return ""
}

// openStore opens the event store (with its embedded nats-server) on dir.
func openStore(t *testing.T, dir string) *eventstore.Store {
	t.Helper()
	store, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: dir})
	if err != nil {
		t.Fatalf("open event store: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { _ = store.Close() }) })
	return store
}

// Two instances on one NATS share sessions: signed in on A is signed in on
// B, through a restart of both and of the server; signing out on A ends
// it on B; a revoked token ends it on both.
func TestSessionsAreSharedByInstances(t *testing.T) {
	dir := t.TempDir()
	store := openStore(t, dir)
	a, b := startInstance(t, store), startInstance(t, store)
	token, _, err := a.tokens.Create(context.Background(), "maria", domain.RoleCoordinator)
	if err != nil {
		t.Fatal(err)
	}
	cookie := signIn(t, a, token)
	if !signedInOn(t, b, cookie) {
		t.Fatal("the session opened on A is not signed in on B")
	}
	if !signedInOn(t, a, cookie) {
		t.Fatal("not signed in on A")
	}

	// Both instances and the NATS server restart.
	a.stop()
	b.stop()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store = openStore(t, dir)
	a, b = startInstance(t, store), startInstance(t, store)
	for name, in := range map[string]*instance{"A": a, "B": b} {
		if !signedInOn(t, in, cookie) {
			t.Errorf("signed out of %s by the restart", name)
		}
	}

	// Signing out on A ends the session on B at once.
	second := signIn(t, a, token)
	te := &testEnv{Server: a.Server}
	br := te.browser(t)
	u, _ := url.Parse(a.URL)
	br.client.Jar.SetCookies(u, []*http.Cookie{{Name: "engagements_session", Value: cookie, Path: "/"}})
	br.get("/")
	if p := br.submit("/logout", url.Values{}); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/login") {
		t.Fatalf("sign out on A: %d to %q", p.status, p.location())
	}
	if signedInOn(t, b, cookie) {
		t.Error("signed out on A, still signed in on B")
	}
	if signedInOn(t, a, cookie) {
		t.Error("signed out on A, still signed in on A")
	}
	if !signedInOn(t, b, second) {
		t.Fatal("signing out one session ended another")
	}

	// Revoking the token (on A) ends the other session on both: at once on
	// A, and on B as soon as B's token store hears of it.
	if err := a.tokens.Revoke(context.Background(), "maria"); err != nil {
		t.Fatal(err)
	}
	if signedInOn(t, a, second) {
		t.Error("token revoked, still signed in on A")
	}
	gone := false
	for range 200 {
		if _, ok := b.tokens.Authenticate(token); !ok {
			gone = true
			break
		}
		time.Sleep(10 * time.Millisecond) // B's token watch is to catch up: polled, bounded
	}
	if !gone {
		t.Fatal("B's token store never heard of the revocation")
	}
	if signedInOn(t, b, second) {
		t.Error("token revoked, still signed in on B")
	}
}

// The bucket holds no session id: not as a key, not in a value; nor the
// token, nor its digest, nor the CSRF token in the clear.
func TestSessionBucketHoldsNoSecret(t *testing.T) {
	store := openStore(t, t.TempDir())
	a := startInstance(t, store)
	token, _, err := a.tokens.Create(context.Background(), "maria", domain.RoleCoordinator)
	if err != nil {
		t.Fatal(err)
	}
	te := &testEnv{Server: a.Server}
	br := te.browser(t)
	br.mustLogin(token)
	csrf := hidden(t, br.get("/").body, "_csrf")
	u, _ := url.Parse(a.URL)
	var cookie string
	for _, c := range br.client.Jar.Cookies(u) {
		if c.Name == "engagements_session" {
			cookie = c.Value
		}
	}
	if cookie == "" || csrf == "" {
		t.Fatalf("cookie %q, csrf %q", cookie, csrf)
	}

	ctx := context.Background()
	kv, err := store.JetStream().KeyValue(ctx, sessions.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	secrets := map[string]string{"the session id": cookie, "the token": token,
		"the token's digest": tokens.Digest(token), "the CSRF token": csrf}
	for key := range keys.Keys() {
		n++
		e, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		for what, s := range secrets {
			if strings.Contains(key, s) || strings.Contains(string(e.Value()), s) {
				t.Errorf("the bucket's entry %s holds %s", key, what)
			}
		}
		if !strings.Contains(string(e.Value()), `"identity":"maria"`) {
			t.Errorf("entry %s does not name its identity: %s", key, e.Value())
		}
	}
	if n != 1 {
		t.Errorf("%d sessions in the bucket, want 1", n)
	}
}

// A session idle for longer than sessions.Idle is refused, and deleted, on
// every instance.
func TestIdleSessionIsRefused(t *testing.T) {
	store := openStore(t, t.TempDir())
	a, b := startInstance(t, store), startInstance(t, store)
	token, _, err := a.tokens.Create(context.Background(), "maria", domain.RoleCoordinator)
	if err != nil {
		t.Fatal(err)
	}
	cookie := signIn(t, a, token)
	// Just within the idle time on B: still signed in (and so used now).
	b.ahead.Store(int64(sessions.Idle - time.Minute))
	if !signedInOn(t, b, cookie) {
		t.Fatal("signed out before the idle time")
	}
	// An idle time after that use, on B, and on A, whose clock is behind.
	b.ahead.Store(int64(2*sessions.Idle + time.Minute))
	if signedInOn(t, b, cookie) {
		t.Error("an idle session is still signed in")
	}
	if signedInOn(t, a, cookie) {
		t.Error("the idle session refused on B is signed in on A")
	}
}

// What a form keeps for the next page (a new feed's address, a message)
// is in the session, so the page after the redirect shows it on another
// instance, once.
func TestNextPageOnAnotherInstance(t *testing.T) {
	store := openStore(t, t.TempDir())
	a, b := startInstance(t, store), startInstance(t, store)
	token, _, err := a.tokens.Create(context.Background(), "maria", domain.RoleCoordinator)
	if err != nil {
		t.Fatal(err)
	}
	onA := (&testEnv{Server: a.Server}).browser(t)
	onA.mustLogin(token)
	// The same browser (cookies are per host, not port) on B.
	onB := *onA
	onB.env = &testEnv{Server: b.Server}

	onA.get("/feeds")
	if p := onA.submit("/feeds", url.Values{"name": {"Maria's feed"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create a feed on A: %d", p.status)
	}
	p := onB.get("/feeds")
	if u := feedURL(p.body); !strings.Contains(u, "/calendars/") {
		t.Fatalf("B does not show the feed's address made on A (got %q)", u)
	}
	if u := feedURL(onA.get("/feeds").body); u != "" {
		t.Errorf("A shows the address again after B showed it: %q", u)
	}

	// A message: revoking the feed on B, the page on A says so, once.
	feeds, err := calendars.Open(context.Background(), store.JetStream(), calendars.Config{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := feeds.List(context.Background(), "maria")
	if err != nil || len(list) != 1 {
		t.Fatalf("feeds %v (%v)", list, err)
	}
	onB.get("/feeds")
	if p := onB.submit("/feeds/"+list[0].ID+"/revoke", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("revoke on B: %d", p.status)
	}
	mustContain(t, onA.get("/feeds"), "The calendar feed “Maria")
	mustNotContain(t, onB.get("/feeds"), "The calendar feed “Maria")
}
