package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/openid/openidtest"
)

// The test directory: Amina coordinates, Guest is in no mapped group.
var (
	dirAmina = openidtest.User{ID: "u-amina", Username: "amina", Email: "amina@who.example", EmailVerified: true,
		Groups: []string{"staff", "engagement-coordinators"}}
	dirGuest = openidtest.User{ID: "u-guest", Username: "guest", Email: "guest@who.example", EmailVerified: true,
		Groups: []string{"staff"}}
)

// freeAddr is a loopback address with a port no one listens on now: the
// provider must know the callback URL before the service starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// oidcConfig is serve's directory configuration for the test provider.
func oidcConfig(op *openidtest.Provider, recheck time.Duration) OIDCConfig {
	return OIDCConfig{Issuer: op.Issuer, ClientID: "engagements", ClientSecret: "engagements-secret", RolesClaim: "groups",
		RoleMap: map[string]domain.Role{"engagement-coordinators": domain.RoleCoordinator, "engagement-auditors": domain.RoleAuditor},
		Recheck: recheck}
}

// startDirMain starts a Main on addr with directory sign-in, against the
// NATS server at natsURL ("" for an embedded one on dir).
func startDirMain(t *testing.T, addr, natsURL, dir string, oc OIDCConfig, demo bool) *Main {
	t.Helper()
	m := &Main{Config: Config{HTTP: addr, NATSURL: natsURL, DataDir: dir, Sync: "always", Replicas: 1, OIDC: oc, Demo: demo}}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	return m
}

// noFollow is a client of the pages that shows each redirect.
func noFollow(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get GETs u with c and returns the status, the Location and the body.
func get(t *testing.T, c *http.Client, u string, cookies ...*http.Cookie) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// dirSignIn signs in at base through the provider as username, the way a
// browser does, and returns the jar, the callback URL the provider sent
// the browser back to, and the callback's status and page.
func dirSignIn(t *testing.T, op *openidtest.Provider, base, username string) (*cookiejar.Jar, *url.URL, int, string) {
	t.Helper()
	return dirSignInTampered(t, op, base, username, nil)
}

// dirSignInTampered is dirSignIn with the authorization request changed
// by tamper on its way to the provider.
func dirSignInTampered(t *testing.T, op *openidtest.Provider, base, username string, tamper func(url.Values)) (*cookiejar.Jar, *url.URL, int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := noFollow(jar)
	code, to, _ := get(t, c, base+"/login/oidc?next=/log")
	if code != http.StatusSeeOther || !strings.HasPrefix(to, op.Issuer) {
		t.Fatalf("GET /login/oidc: %d to %q, want 303 to the provider", code, to)
	}
	back, err := op.SignIn(context.Background(), openidtest.Tampered(to, tamper), username)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(back.String(), base+"/login/oidc/callback?") {
		t.Fatalf("the provider sent the browser to %s", back)
	}
	code, _, body := get(t, c, back.String())
	return jar, back, code, body
}

func sessionCookie(t *testing.T, jar *cookiejar.Jar, base string) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(base)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "engagements_session" {
			return ck
		}
	}
	return nil
}

// Two instances on one NATS server share directory sessions: signed in on
// one, the session serves on the other, and on both after both restart. A
// replayed state is refused on either; a person in no mapped group gets a
// 403 page; removing Amina's group ends her session at the next recheck;
// signing out ends it everywhere and sends the browser to the provider.
func TestOIDCSessionsAcrossInstances(t *testing.T) {
	op := openidtest.Start(t, dirAmina, dirGuest)
	ns := startOpsNATS(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	baseA, baseB := "http://"+addrA, "http://"+addrB
	op.AddClient("engagements", "engagements-secret", baseA, baseB)
	oc := oidcConfig(op, time.Second)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startDirMain(t, addrA, ns.url(), dirA, oc, false)
	b := startDirMain(t, addrB, ns.url(), dirB, oc, false)
	running := []*Main{a, b}
	adminToken := a.AdminToken
	if adminToken == "" {
		t.Fatal("the first start made no admin token")
	}
	t.Cleanup(func() {
		for _, m := range running {
			if err := m.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
	})

	// The sign-in page offers both ways.
	code, _, page := get(t, noFollow(nil), baseA+"/login")
	if code != http.StatusOK || !strings.Contains(page, `href="/login/oidc?next=%2f"`) || !strings.Contains(page, `name="token"`) {
		t.Fatalf("GET /login: %d; want the directory link and the token form:\n%s", code, page)
	}

	jar, callback, code, page := dirSignIn(t, op, baseA, "amina")
	if code != http.StatusOK || !strings.Contains(page, "You are signed in as amina@who.example") ||
		!strings.Contains(page, `content="0;url=/log"`) {
		t.Fatalf("callback: %d\n%s", code, page)
	}
	cookie := sessionCookie(t, jar, baseA)
	if cookie == nil {
		t.Fatal("no session cookie after the callback")
	}
	for _, base := range []string{baseA, baseB} {
		code, _, page := get(t, noFollow(nil), base+"/log", cookie)
		if code != http.StatusOK || !strings.Contains(page, "amina@who.example") || !strings.Contains(page, "coordinator") {
			t.Fatalf("GET %s/log with the session: %d", base, code)
		}
	}

	// A replayed state, even with the state cookie, on either instance.
	state := &http.Cookie{Name: "engagements_oidc", Value: callback.Query().Get("state")}
	for _, base := range []string{baseA, baseB} {
		code, _, page := get(t, noFollow(nil), base+callback.RequestURI(), state)
		if code != http.StatusBadRequest || !strings.Contains(page, "This sign-in was already used") {
			t.Errorf("replayed state on %s: %d\n%s", base, code, page)
		}
		if code, _, _ := get(t, noFollow(nil), base+callback.RequestURI()); code != http.StatusBadRequest {
			t.Errorf("callback without the state cookie on %s: %d, want 400", base, code)
		}
	}

	// Answers that fail a check: a 401 page naming it, and no session.
	op.AddClient("other-app", "other-secret", baseA, baseB)
	for _, tc := range []struct {
		name   string
		tamper func(url.Values)
		want   string
	}{
		{"a nonce that is not the sign-in's", func(q url.Values) { q.Set("nonce", "someone-elses") }, "the ID token&#39;s nonce is not this sign-in&#39;s"},
		{"a code issued to another client", func(q url.Values) { q.Set("client_id", "other-app") }, "the provider did not accept the code"},
	} {
		jar, _, code, page := dirSignInTampered(t, op, baseA, "amina", tc.tamper)
		if code != http.StatusUnauthorized || !strings.Contains(page, "The sign-in could not be verified") || !strings.Contains(page, tc.want) {
			t.Errorf("%s: %d\n%s", tc.name, code, page)
		}
		if sessionCookie(t, jar, baseA) != nil {
			t.Errorf("%s: a session cookie was set", tc.name)
		}
	}

	// No mapped group: a page that says so, and no session.
	gjar, _, code, page := dirSignIn(t, op, baseB, "guest")
	if code != http.StatusForbidden || !strings.Contains(page, "No access for your account") ||
		!strings.Contains(page, "guest@who.example") || !strings.Contains(page, "<html") {
		t.Errorf("guest: %d\n%s", code, page)
	}
	if sessionCookie(t, gjar, baseB) != nil {
		t.Error("guest got a session cookie")
	}

	// Restart both: still signed in.
	for _, m := range running {
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	running = nil
	a = startDirMain(t, addrA, ns.url(), dirA, oc, false)
	running = append(running, a)
	b = startDirMain(t, addrB, ns.url(), dirB, oc, false)
	running = append(running, b)
	for _, base := range []string{baseB, baseA} {
		if code, _, _ := get(t, noFollow(nil), base+"/", cookie); code != http.StatusOK {
			t.Fatalf("GET %s/ after both restarted: %d, want 200", base, code)
		}
	}

	// An operator ends her sessions at once, on every instance.
	var stdout, stderr strings.Builder
	if code := run([]string{"sessions", "end", "--identity", "amina@who.example", "--nats-url", ns.url()}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "ended 1 web session(s) of amina@who.example") {
		t.Fatalf("sessions end: exit %d, %q %q", code, stdout.String(), stderr.String())
	}
	// signedOut checks her session is refused on both instances after what;
	// signIn signs her in again on A.
	signedOut := func(what string) {
		t.Helper()
		for _, base := range []string{baseA, baseB} {
			if code, _, _ := get(t, noFollow(nil), base+"/", cookie); code != http.StatusSeeOther {
				t.Errorf("GET %s/ after %s: %d, want 303", base, what, code)
			}
		}
	}
	signIn := func() *http.Cookie {
		t.Helper()
		jar, _, code, _ := dirSignIn(t, op, baseA, "amina")
		if code != http.StatusOK {
			t.Fatalf("sign in again: %d", code)
		}
		return sessionCookie(t, jar, baseA)
	}
	signedOut("sessions end")

	// An admin does the same through the API, on the other instance.
	cookie = signIn()
	if code, _, _ := get(t, noFollow(nil), baseB+"/", cookie); code != http.StatusOK {
		t.Fatalf("GET %s/ signed in again: %d", baseB, code)
	}
	coordinator := apiJSON(t, http.MethodPost, baseB+"/v1/tokens", adminToken, `{"name":"coord-1","role":"coordinator"}`, http.StatusCreated)["token"].(string)
	for _, tc := range []struct {
		name, token, query string
		want               int
	}{
		{"a coordinator", coordinator, "?identity=amina%40who.example", http.StatusForbidden},
		{"no token", "", "?identity=amina%40who.example", http.StatusUnauthorized},
		{"no identity", adminToken, "", http.StatusBadRequest},
		{"a control character", adminToken, "?identity=amina%0a", http.StatusBadRequest},
		{"someone with no session", adminToken, "?identity=nobody%40who.example", http.StatusOK},
	} {
		got := apiJSON(t, http.MethodDelete, baseB+"/v1/sessions"+tc.query, tc.token, "", tc.want)
		if tc.want == http.StatusOK && got["ended"] != float64(0) {
			t.Errorf("%s: %v, want 0 ended", tc.name, got)
		}
		if code, _, _ := get(t, noFollow(nil), baseA+"/", cookie); code != http.StatusOK {
			t.Fatalf("%s: GET %s/ afterwards: %d, want her still signed in", tc.name, baseA, code)
		}
	}
	if got := apiJSON(t, http.MethodDelete, baseB+"/v1/sessions?identity=amina%40who.example", adminToken, "", http.StatusOK); got["ended"] != float64(1) {
		t.Errorf("DELETE /v1/sessions: %v, want 1 ended", got)
	}
	signedOut("DELETE /v1/sessions")

	cookie = signIn()
	signedIn := time.Now()

	// Rechecks due while requests arrive at once on both instances: one
	// request refreshes (the provider rotates the refresh token), the
	// others go on; no one is signed out, twice over (so the rotated token
	// was kept).
	for round := 1; round <= 2; round++ {
		for time.Since(signedIn) < time.Duration(round)*oc.Recheck+100*time.Millisecond {
			time.Sleep(50 * time.Millisecond) // the clock must pass the interval; nothing else to wait for
		}
		codes := make(chan int, 10)
		for i := range 10 {
			go func() {
				base := []string{baseA, baseB}[i%2]
				req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
				req.AddCookie(cookie)
				resp, err := noFollow(nil).Do(req)
				if err != nil {
					codes <- 0
					return
				}
				_ = resp.Body.Close()
				codes <- resp.StatusCode
			}()
		}
		for range 10 {
			if code := <-codes; code != http.StatusOK {
				t.Fatalf("round %d: a request during a recheck got %d, want 200", round, code)
			}
		}
	}

	// Her group removed at the directory: within the recheck interval
	// (1 s here) her next request is refused, on either instance.
	op.SetGroups(dirAmina.ID, "staff")
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, to, _ := get(t, noFollow(nil), baseB+"/", cookie)
		if code == http.StatusSeeOther && strings.HasPrefix(to, "/login") {
			break
		}
		if code != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("GET / after the group's removal: %d, want 200 until the recheck, then 303 to /login", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _, _ := get(t, noFollow(nil), baseA+"/", cookie); code != http.StatusSeeOther {
		t.Errorf("the other instance after the session ended: %d, want 303", code)
	}

	// Signing out: the session ends everywhere and the browser goes on to
	// the provider's end_session_endpoint with the ID token as the hint.
	op.SetGroups(dirAmina.ID, "engagement-coordinators")
	jar, _, code, _ = dirSignIn(t, op, baseA, "amina")
	if code != http.StatusOK {
		t.Fatalf("sign in again: %d", code)
	}
	cookie = sessionCookie(t, jar, baseA)
	_, _, page = get(t, noFollow(jar), baseA+"/log")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF field on the page")
	}
	resp, err := noFollow(jar).PostForm(baseA+"/logout", url.Values{"_csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	out := regexpFind(`href="([^"]+)"`, string(body), op.Issuer)
	u, _ := url.Parse(strings.ReplaceAll(out, "&amp;", "&"))
	if resp.StatusCode != http.StatusOK || u == nil || u.Query().Get("id_token_hint") == "" ||
		u.Query().Get("post_logout_redirect_uri") != baseA+"/login?signed_out=1" {
		t.Fatalf("logout: %d, provider link %q\n%s", resp.StatusCode, out, body)
	}
	for _, base := range []string{baseA, baseB} {
		if code, _, _ := get(t, noFollow(nil), base+"/", cookie); code != http.StatusSeeOther {
			t.Errorf("GET %s/ after signing out: %d, want 303", base, code)
		}
	}
	// The provider accepts the logout and sends the browser back here.
	code, to, _ := get(t, op.Client(nil), u.String())
	if code/100 != 3 || to != baseA+"/login?signed_out=1" {
		t.Errorf("the provider's end_session_endpoint: %d to %q, want a redirect back to /login?signed_out=1", code, to)
	}

	// The provider down when a recheck is due: 503, still signed in, and
	// every request after asks again (none is granted an interval).
	jar, _, code, _ = dirSignIn(t, op, baseB, "amina")
	if code != http.StatusOK {
		t.Fatalf("sign in once more: %d", code)
	}
	cookie = sessionCookie(t, jar, baseB)
	op.Close()
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, _, page := get(t, noFollow(nil), baseA+"/", cookie)
		if code == http.StatusServiceUnavailable {
			if !strings.Contains(page, "Your directory cannot be reached") {
				t.Errorf("503 page:\n%s", page)
			}
			break
		}
		if code != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("GET / with the provider down: %d, want 200 until the recheck, then 503", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, base := range []string{baseA, baseB} {
		if code, _, _ := get(t, noFollow(nil), base+"/", cookie); code != http.StatusServiceUnavailable {
			t.Errorf("GET %s/ again with the provider down: %d, want 503 (asked again, not granted)", base, code)
		}
	}
}

// regexpFind returns the first submatch of pattern in s that starts with
// prefix, "" when none does.
func regexpFind(pattern, s, prefix string) string {
	for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(s, -1) {
		if strings.HasPrefix(m[1], prefix) {
			return m[1]
		}
	}
	return ""
}

// TestOIDCFlags: serve refuses an incomplete directory configuration.
func TestOIDCFlags(t *testing.T) {
	secret := t.TempDir() + "/secret"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an issuer without a client id → refused", []string{"--oidc-issuer", "https://login.example", "--oidc-role-map", "g=admin"}, "needs --oidc-client-id"},
		{"an issuer without a role map → refused", []string{"--oidc-issuer", "https://login.example", "--oidc-client-id", "x"}, "needs --oidc-role-map"},
		{"a role that is not one → refused", []string{"--oidc-role-map", "g=subscriber"}, "not group=role"},
		{"both secret flags → refused", []string{"--oidc-client-secret", "s", "--oidc-client-secret-file", secret}, "exclude each other"},
		{"a missing secret file → refused", []string{"--oidc-client-secret-file", secret + "-missing"}, "--oidc-client-secret-file"},
		{"a recheck under a second → refused", []string{"--oidc-issuer", "https://login.example", "--oidc-client-id", "x", "--oidc-role-map", "g=admin", "--oidc-recheck", "10ms"}, "at least 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(append([]string{"serve", "--data", t.TempDir()}, tt.args...), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tt.want)
			}
		})
	}
}

// apiJSON sends body (JSON, or none) to u with the bearer token (none when
// ""), wants status and returns the decoded answer.
func apiJSON(t *testing.T, method, u, token, body string, status int) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %d %s, want %d", method, u, resp.StatusCode, b, status)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %v in %s", method, u, err, b)
	}
	return out
}
