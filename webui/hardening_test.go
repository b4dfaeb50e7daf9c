package webui_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/webui"
)

// noLoginLimit lets a test sign in as often as it needs to.
var noLoginLimit = webui.WithLoginRateLimit(0, 0)

// nextCases are values of next, as the server receives them once the query
// or form is decoded, and where signing in leads with each.
var nextCases = []struct {
	name, next, want string
}{
	{"the finding: tab then //host (sent as /%09/…) → /", "/\t/127.0.0.1:18198/c", "/"},
	{"newline then //host → /", "/\n/evil.example", "/"},
	{"carriage return then //host → /", "/\r/evil.example", "/"},
	{"NUL → /", "/\x00/evil.example", "/"},
	{"DEL → /", "/\x7f/evil.example", "/"},
	{"C1 control (NEL) → /", "/\u0085/evil.example", "/"},
	{"tab inside the path → /", "/engagements\t/x", "/"},
	{"percent-encoded newline /%0a/evil → /", "/%0a/evil.example", "/"},
	{"percent-encoded tab /%09/evil → /", "/%09/evil.example", "/"},
	{"percent-encoded control in the query → /", "/ok?x=%00", "/"},
	{"slash backslash /\\evil → /", "/\\evil.example", "/"},
	{"backslash slash \\/evil → /", "\\/evil.example", "/"},
	{"percent-encoded backslash /%5cevil → /", "/%5cevil.example", "/"},
	{"backslash later in the path → /", "/engagements\\x", "/"},
	{"protocol-relative //evil → /", "//evil.example", "/"},
	{"three slashes ///evil → /", "///evil.example", "/"},
	{"encoded second slash /%2f/evil → /", "/%2f/evil.example", "/"},
	{"encoded second slash, upper case /%2F/evil → /", "/%2F/evil.example", "/"},
	{"absolute URL https://evil → /", "https://evil.example/x", "/"},
	{"scheme without slashes https:evil → /", "https:evil.example", "/"},
	{"javascript: URL → /", "javascript:alert(1)", "/"},
	{"relative path → /", "evil.example", "/"},
	{"leading tab before // → /", "\t//evil.example", "/"},
	{"malformed escape → /", "/ok%zz", "/"},
	{"the sign-in page → /", "/login", "/"},
	{"the sign-in page with its own next → /", "/login?next=//evil.example", "/"},
	{"the sign-in page, encoded → /", "/%6cogin", "/"},
	{"empty → /", "", "/"},
	{"a page of this site → itself", "/engagements/abc", "/engagements/abc"},
	{"a path with query and fragment → itself", "/ok?x=1#f", "/ok?x=1#f"},
	{"the portfolio with filters → itself", "/?status=active&kind=agreement", "/?status=active&kind=agreement"},
	{"an encoded space → itself", "/engagements?q=a%20b", "/engagements?q=a%20b"},
}

func TestNextAfterSignInIsOnlyASameOriginPath(t *testing.T) {
	te := newTestEnv(t, noLoginLimit)
	token := te.token(t, "maria", domain.RoleCoordinator)
	signedIn := te.browser(t)
	signedIn.mustLogin(token)
	for _, tc := range nextCases {
		t.Run("GET signed in: "+tc.name, func(t *testing.T) {
			p := signedIn.get("/login?" + url.Values{"next": {tc.next}}.Encode())
			if p.status != http.StatusSeeOther || p.location() != tc.want {
				t.Errorf("GET /login?next=%q: %d to %q, want 303 to %q", tc.next, p.status, p.location(), tc.want)
			}
		})
		t.Run("POST: "+tc.name, func(t *testing.T) {
			b := te.browser(t)
			b.get("/login")
			p := b.submit("/login", url.Values{"token": {token}, "next": {tc.next}})
			if p.status != http.StatusSeeOther || p.location() != tc.want {
				t.Errorf("POST /login next=%q: %d to %q, want 303 to %q", tc.next, p.status, p.location(), tc.want)
			}
		})
	}
}

// signedOut reports whether b's session is gone: the portfolio sends it to
// the sign-in page.
func signedOut(b *browser) bool {
	b.t.Helper()
	switch p := b.get("/"); p.status {
	case http.StatusOK:
		return false
	case http.StatusSeeOther:
		return true
	default:
		b.t.Fatalf("portfolio: %d", p.status)
		return false
	}
}

func TestOneIdentityCannotSignOthersOut(t *testing.T) {
	// At most 3 sessions per identity, 5 in all.
	te := newTestEnv(t, noLoginLimit, webui.WithSessionLimits(3, 5))
	coordinator := te.browser(t)
	coordinator.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	auditor := te.token(t, "ana", domain.RoleAuditor)
	var ana []*browser
	for range 50 {
		b := te.browser(t)
		b.mustLogin(auditor)
		ana = append(ana, b)
	}
	if signedOut(coordinator) {
		t.Fatal("50 sign-ins of one auditor signed the coordinator out")
	}
	for i, b := range ana {
		if want := i < len(ana)-3; signedOut(b) != want {
			t.Errorf("ana's sign-in %d: signed out %v, want %v (her 3 latest stay)", i+1, !want, want)
		}
	}

	// The total cap takes from whoever holds the most sessions: with maria
	// 1, ana 3 and bob 1, carl's sign-in ends one of ana's, the one she
	// used longest ago.
	bob := te.browser(t)
	bob.mustLogin(te.token(t, "bob", domain.RoleAuditor))
	latest := ana[len(ana)-3:]
	for _, b := range latest[1:] {
		b.get("/") // used after latest[0]
	}
	carl := te.browser(t)
	carl.mustLogin(te.token(t, "carl", domain.RoleAuditor))
	for name, b := range map[string]*browser{"maria": coordinator, "bob": bob, "carl": carl,
		"ana's most recent": latest[2], "ana's second": latest[1]} {
		if signedOut(b) {
			t.Errorf("%s was signed out at the total cap", name)
		}
	}
	if !signedOut(latest[0]) {
		t.Error("ana's least recently used session survived the total cap")
	}
}

// retryAfter checks that p is a 429 page with a Retry-After of whole seconds.
func retryAfter(t *testing.T, p page) {
	t.Helper()
	if p.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", p.status)
	}
	if s, err := strconv.Atoi(p.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q, want whole seconds ≥ 1", p.header.Get("Retry-After"))
	}
	if ct := p.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q, want a page", ct)
	}
	mustContain(t, p, "Too many requests")
}

func TestSignInIsRateLimitedPerAddress(t *testing.T) {
	// A burst of 4 and (for the test's length) no refill.
	te := newTestEnv(t, webui.WithLoginRateLimit(0.001, 4))
	token := te.token(t, "maria", domain.RoleCoordinator)
	b := te.browser(t)
	b.mustLogin(token) // GET and POST /login: 2 of 4
	if p := b.get("/login"); p.status != http.StatusSeeOther {
		t.Fatalf("GET /login signed in: %d, want 303", p.status)
	}
	other := te.browser(t)
	if p := other.get("/login"); p.status != http.StatusOK {
		t.Fatalf("4th request: %d, want 200", p.status)
	}
	retryAfter(t, other.get("/login"))
	retryAfter(t, other.post("/login", url.Values{"token": {token}, "_csrf": {"x"}}))
	// The limit counts the connection's address, not what headers claim.
	req, err := http.NewRequest(http.MethodGet, te.URL+"/login", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	retryAfter(t, other.do(req))
	// Pages of a signed-in session are not sign-ins.
	if p := b.get("/"); p.status != http.StatusOK {
		t.Errorf("portfolio of a session: %d, want 200", p.status)
	}
}

func TestPagesAreRateLimitedPerSession(t *testing.T) {
	const burst = 5
	te := newTestEnv(t, noLoginLimit, webui.WithRateLimit(0.001, burst))
	token := te.token(t, "maria", domain.RoleCoordinator)
	b := te.browser(t)
	b.mustLogin(token) // the portfolio once
	for i := 2; i <= burst; i++ {
		if p := b.get("/"); p.status != http.StatusOK {
			t.Fatalf("page view %d: %d, want 200", i, p.status)
		}
	}
	retryAfter(t, b.get("/"))
	retryAfter(t, b.get("/engagements/new"))
	mustContain(t, b.last, fmt.Sprintf("a burst of %d", burst))
	// Another session, even of the same person, has its own bucket.
	other := te.browser(t)
	other.mustLogin(token)
	if p := other.get("/"); p.status != http.StatusOK {
		t.Errorf("another session: %d, want 200", p.status)
	}
}
