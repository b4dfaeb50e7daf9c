package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var csrfField = regexp.MustCompile(`<input type="hidden" name="_csrf" value="([^"]*)">`)

// webSignIn signs in to the pages at base with token and returns the
// session cookie's value.
func webSignIn(t *testing.T, base, token string) string {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	m := csrfField.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("GET /login: %d, no CSRF field", resp.StatusCode)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"token": {token}, "_csrf": {m[1]}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /login: %d", resp.StatusCode)
	}
	u, _ := url.Parse(base)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "engagements_session" {
			return ck.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// portfolioStatus is what GET / answers with the session cookie.
func portfolioStatus(t *testing.T, base, cookie string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.AddCookie(&http.Cookie{Name: "engagements_session", Value: cookie})
	c := &http.Client{Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// A web session outlives the serve process that opened it: the next
// process on the same data directory serves it.
func TestWebSessionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	p := startProcess(t, "--data", dir)
	cookie := webSignIn(t, p.url, testToken)
	if got := portfolioStatus(t, p.url, cookie); got != http.StatusOK {
		t.Fatalf("GET / signed in: %d", got)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	p = startProcess(t, "--data", dir)
	if got := portfolioStatus(t, p.url, cookie); got != http.StatusOK {
		t.Errorf("GET / after a restart: %d, want 200 (still signed in)", got)
	}
	if got := portfolioStatus(t, p.url, strings.Repeat("A", 43)); got != http.StatusSeeOther {
		t.Errorf("GET / with an unknown session: %d, want 303", got)
	}
}
