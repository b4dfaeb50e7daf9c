package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/iom-who/engagements/domain"
)

func TestSignIn(t *testing.T) {
	te := newTestEnv(t)
	good := te.token(t, "maria", domain.RoleCoordinator)
	for _, tc := range []struct {
		name   string
		token  string
		status int
		says   string
	}{
		{"a coordinator's token → signed in", good, http.StatusSeeOther, ""},
		{"a token with spaces around it → signed in", "  " + good + "\n", http.StatusSeeOther, ""},
		{"an unknown token → 401 and the form again", "eng_" + strings.Repeat("x", 43), http.StatusUnauthorized, "That token is not known or was revoked"},
		{"no token → 401", "", http.StatusUnauthorized, "That token is not known or was revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := te.browser(t)
			p := b.login(tc.token)
			if p.status != tc.status {
				t.Fatalf("status %d, want %d: %s", p.status, tc.status, text(p.body))
			}
			if tc.status != http.StatusSeeOther {
				mustContain(t, p, tc.says)
				if got := b.get("/"); got.status != http.StatusSeeOther {
					t.Errorf("portfolio after a failed sign-in: %d, want 303", got.status)
				}
				return
			}
			if p.location() != "/" {
				t.Errorf("redirect to %q, want /", p.location())
			}
			cookie := ""
			for _, c := range p.header.Values("Set-Cookie") {
				if strings.HasPrefix(c, "engagements_session=") {
					cookie = c
				}
			}
			for _, want := range []string{"engagements_session=", "HttpOnly", "SameSite=Strict", "Path=/"} {
				if !strings.Contains(cookie, want) {
					t.Errorf("Set-Cookie %q lacks %q", cookie, want)
				}
			}
			home := b.get("/")
			if home.status != http.StatusOK {
				t.Fatalf("portfolio: %d", home.status)
			}
			mustContain(t, home, "Portfolio", "maria", "coordinator", "Sign out")
		})
	}
}

func TestSignedOutVisitorsAreSentToSignIn(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})
	b := te.browser(t)
	for _, path := range []string{"/", "/engagements/" + id, "/engagements/new"} {
		p := b.get(path)
		if p.status != http.StatusSeeOther || p.location() != "/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s: %d to %q", path, p.status, p.location())
		}
	}
	// After signing in, the page asked for first is shown.
	b.get("/login?next=" + url.QueryEscape("/engagements/"+id))
	p := b.submit("/login", url.Values{"token": {te.token(t, "maria", domain.RoleCoordinator)},
		"next": {hidden(t, b.last.body, "next")}})
	if p.status != http.StatusSeeOther || p.location() != "/engagements/"+id {
		t.Errorf("sign in with next: %d to %q", p.status, p.location())
	}
	// Only paths on this site.
	b2 := te.browser(t)
	b2.get("/login?next=" + url.QueryEscape("//evil.example/x"))
	p = b2.submit("/login", url.Values{"token": {te.token(t, "ana", domain.RoleAuditor)}, "next": {"//evil.example/x"}})
	if p.location() != "/" {
		t.Errorf("next=//evil.example/x redirected to %q, want /", p.location())
	}
}

func TestCSRF(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	newEngagement := url.Values{"kind": {"agreement"}, "title": {"Forged"}, "parties": {"IOM, WHO"}}
	note := url.Values{"type": {"engagement.noted"}, "version": {"1"}, "note": {"forged"}}
	for _, tc := range []struct {
		name string
		path string
		form url.Values
		csrf string
	}{
		{"record without _csrf → 403", "/engagements/new", newEngagement, ""},
		{"record with a wrong _csrf → 403", "/engagements/new", newEngagement, "not-the-token"},
		{"event without _csrf → 403", "/engagements/" + id + "/events", note, ""},
		{"event with a wrong _csrf → 403", "/engagements/" + id + "/events", note, strings.Repeat("A", 43)},
		{"sign out without _csrf → 403", "/logout", url.Values{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range tc.form {
				f[k] = v
			}
			if tc.csrf != "" {
				f.Set("_csrf", tc.csrf)
			}
			p := b.post(tc.path, f)
			if p.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403", p.status)
			}
			mustContain(t, p, "nothing was saved")
		})
	}
	if n := te.proj.Count(); n != 1 {
		t.Errorf("%d engagements stored, want 1", n)
	}
	if h := te.history(t, id); len(h) != 1 {
		t.Errorf("%d events stored, want 1", len(h))
	}
	if p := b.get("/"); p.status != http.StatusOK {
		t.Errorf("still signed in after a refused sign-out? GET / = %d", p.status)
	}

	t.Run("sign-in form without its cookie → 403", func(t *testing.T) {
		fresh := te.browser(t)
		p := fresh.post("/login", url.Values{"token": {te.token(t, "ana", domain.RoleCoordinator)}, "_csrf": {"guess"}})
		if p.status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", p.status)
		}
		if got := fresh.get("/"); got.status != http.StatusSeeOther {
			t.Errorf("signed in anyway: GET / = %d", got.status)
		}
	})
}

func TestSignOut(t *testing.T) {
	te := newTestEnv(t)
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	p := b.submit("/logout", url.Values{})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/login") {
		t.Fatalf("sign out: %d to %q", p.status, p.location())
	}
	if got := b.get("/"); got.status != http.StatusSeeOther {
		t.Errorf("GET / after signing out: %d, want 303", got.status)
	}
	mustContain(t, b.get(p.location()), "You are signed out")
}

func TestRevokedTokenEndsTheSession(t *testing.T) {
	te := newTestEnv(t)
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	if err := te.tokens.Revoke(context.Background(), "maria"); err != nil {
		t.Fatal(err)
	}
	p := b.get("/")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/login") {
		t.Fatalf("GET / after revocation: %d to %q, want 303 to /login", p.status, p.location())
	}
	// A token made again with the same name does not revive the old session.
	te.token(t, "maria", domain.RoleCoordinator)
	if p := b.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("GET / with the old session after re-creating the name: %d", p.status)
	}
}

func TestRoles(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})

	t.Run("an auditor sees no write forms and may not post", func(t *testing.T) {
		b := te.browser(t)
		b.mustLogin(te.token(t, "audit-office", domain.RoleAuditor))
		p := b.get("/engagements/" + id)
		if p.status != http.StatusOK {
			t.Fatalf("engagement page: %d", p.status)
		}
		if got := offered(p.body); len(got) != 0 {
			t.Errorf("auditor is offered %v", got)
		}
		if strings.Contains(p.body, `method="post" action="/engagements/`) || strings.Contains(p.body, "Correct this entry") {
			t.Error("auditor's page has a write form")
		}
		mustContain(t, p, "MOU", "History", "Recorded")
		mustNotContain(t, b.get("/"), "Record engagement")
		if p := b.get("/engagements/new"); p.status != http.StatusForbidden {
			t.Errorf("GET /engagements/new: %d, want 403", p.status)
		}
		for _, post := range []struct {
			path string
			form url.Values
		}{
			{"/engagements/new", url.Values{"kind": {"agreement"}, "title": {"X"}, "parties": {"IOM"}}},
			{"/engagements/" + id + "/events", url.Values{"type": {"engagement.noted"}, "version": {"1"}, "note": {"x"}}},
		} {
			b.get("/")
			p := b.submit(post.path, post.form)
			if p.status != http.StatusForbidden {
				t.Errorf("POST %s: %d, want 403", post.path, p.status)
			}
			mustContain(t, p, "Read-only access")
		}
		if n := len(te.history(t, id)); n != 1 || te.proj.Count() != 1 {
			t.Errorf("auditor stored something: %d events, %d engagements", n, te.proj.Count())
		}
	})

	t.Run("a subscriber gets a polite 403", func(t *testing.T) {
		b := te.browser(t)
		p := b.login(te.token(t, "crm-sync", domain.RoleSubscriber))
		if p.status != http.StatusForbidden {
			t.Fatalf("sign in: %d, want 403", p.status)
		}
		mustContain(t, p, "These pages are not for subscriber tokens", "Ask an admin")
		if got := b.get("/"); got.status != http.StatusSeeOther {
			t.Errorf("GET / after a refused sign-in: %d", got.status)
		}
	})

	t.Run("an admin may write", func(t *testing.T) {
		b := te.browser(t)
		b.mustLogin(te.token(t, "root", domain.RoleAdmin))
		if got := offered(b.get("/engagements/" + id).body); len(got) == 0 {
			t.Error("admin is offered no forms")
		}
	})
}
