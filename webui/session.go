package webui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/ratelimit"
)

// Session settings. Sessions live in this process's memory only: a restart
// signs everyone out, and several instances behind one address need sticky
// sessions (the token itself stays valid everywhere).
const (
	sessionCookie = "engagements_session"
	// loginCookie carries the sign-in form's CSRF token (double submit):
	// there is no session yet to keep it in.
	loginCookie = "engagements_login"
	// sessionLife bounds a session from sign-in; sessionIdle from its last use.
	sessionLife = 12 * time.Hour
	sessionIdle = 2 * time.Hour
)

// user is who a session belongs to, as the token store says now.
type user struct {
	Name string
	Role domain.Role
}

// CanWrite reports whether the user may record engagements and events.
func (u user) CanWrite() bool { return u.Role.Allowed(writers...) }

// session maps a random id (the cookie) to the token it was opened with. The
// token is kept so that every request can ask the token store again:
// revoking the token ends the session at once.
type session struct {
	id    string
	token string
	// identity is the token's name at sign-in: sessions are counted and
	// evicted per identity.
	identity string
	csrf     string
	user     user
	created  time.Time
	lastSeen time.Time
	flash    string
	// newFeed is the calendar feed just made, with its secret URL, for the
	// next page only (see feeds.go).
	newFeed *createdFeed
}

// sessions are the open sessions, at most perIdentity for one identity (a
// token name) and total in all. An identity over its cap loses its own
// least recently used session, never someone else's; only at the total
// cap does the identity holding the most sessions lose one.
type sessions struct {
	perIdentity, total int

	mu         sync.Mutex
	byID       map[string]*session
	byIdentity map[string][]*session
}

func newSessions(perIdentity, total int) *sessions {
	return &sessions{perIdentity: max(perIdentity, 1), total: max(total, 1),
		byID: make(map[string]*session), byIdentity: make(map[string][]*session)}
}

// randomToken is 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// open starts a session for token, owned by u.
func (ss *sessions) open(token string, u user, now time.Time) *session {
	s := &session{id: randomToken(), token: token, identity: u.Name, csrf: randomToken(), user: u,
		created: now, lastSeen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, x := range ss.byID {
		if x.expired(now) {
			ss.remove(x)
		}
	}
	for len(ss.byIdentity[s.identity]) >= ss.perIdentity {
		ss.remove(leastRecent(ss.byIdentity[s.identity]))
	}
	if len(ss.byID) >= ss.total {
		var most []*session
		for _, own := range ss.byIdentity {
			if len(own) > len(most) {
				most = own
			}
		}
		ss.remove(leastRecent(most))
	}
	ss.byID[s.id] = s
	ss.byIdentity[s.identity] = append(ss.byIdentity[s.identity], s)
	return s
}

// leastRecent is the session of own used longest ago.
func leastRecent(own []*session) *session {
	var oldest *session
	for _, x := range own {
		if oldest == nil || x.lastSeen.Before(oldest.lastSeen) {
			oldest = x
		}
	}
	return oldest
}

// remove forgets s; ss.mu is held.
func (ss *sessions) remove(s *session) {
	delete(ss.byID, s.id)
	own := slices.DeleteFunc(ss.byIdentity[s.identity], func(x *session) bool { return x.id == s.id })
	if len(own) == 0 {
		delete(ss.byIdentity, s.identity)
	} else {
		ss.byIdentity[s.identity] = own
	}
}

func (s *session) expired(now time.Time) bool {
	return now.Sub(s.created) > sessionLife || now.Sub(s.lastSeen) > sessionIdle
}

// get returns a copy of the live session with this id and marks it used.
func (ss *sessions) get(id string, now time.Time) (*session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok {
		return nil, false
	}
	if s.expired(now) {
		ss.remove(s)
		return nil, false
	}
	s.lastSeen = now
	c := *s
	return &c, true
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.byID[id]; ok {
		ss.remove(s)
	}
}

// setFlash keeps a message for the session's next page.
func (ss *sessions) setFlash(s *session, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if x, ok := ss.byID[s.id]; ok {
		x.flash = msg
	}
}

// takeFlash returns the message kept for this page, once.
func (ss *sessions) takeFlash(s *session) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	x, ok := ss.byID[s.id]
	if !ok {
		return ""
	}
	msg := x.flash
	x.flash = ""
	return msg
}

// Roles that may see pages, and that may use the write forms.
var (
	readers = []domain.Role{domain.RoleCoordinator, domain.RoleAuditor}
	writers = []domain.Role{domain.RoleCoordinator}
)

type handler func(w http.ResponseWriter, r *http.Request, s *session)

// signedIn runs h for a live session whose token is still valid and whose
// role is one of roles; every POST must carry the session's CSRF token.
// Without a session, pages redirect to the sign-in page.
func (u *UI) signedIn(roles []domain.Role, h handler) http.HandlerFunc {
	return u.guard(roles, false, h)
}

// uploading is signedIn for a handler that reads a multipart body itself, as
// it streams: it must check the CSRF token, the body's first part, before
// it reads anything else. Other handlers never get a multipart body, which
// parsing the form for its token would buffer whole.
func (u *UI) uploading(roles []domain.Role, h handler) http.HandlerFunc {
	return u.guard(roles, true, h)
}

func (u *UI) guard(roles []domain.Role, upload bool, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := u.session(r)
		if !ok {
			u.clearCookie(w, r, sessionCookie, "/")
			to := "/login?next=" + url.QueryEscape(r.URL.RequestURI())
			if r.Method != http.MethodGet {
				to = "/login"
			}
			if r.URL.Path == "/engagements/live" {
				http.Error(w, "sign in first", http.StatusUnauthorized)
				return
			}
			seeOther(w, r, to)
			return
		}
		if wait, ok := u.pageLimits.Allow(s.id, u.now()); !ok {
			u.tooMany(w, r, wait, fmt.Sprintf("Each session may open %g pages per second (a burst of %d).",
				u.pageLimits.PerSecond(), u.pageLimits.Burst()))
			return
		}
		if !s.user.Role.Allowed(readers...) {
			u.errorPage(w, r, s, http.StatusForbidden, "These pages are not for subscriber tokens",
				"A subscriber token reads the event stream and manages webhooks through the API. "+
					"Ask an admin for a coordinator or auditor token to use these pages.")
			return
		}
		if !s.user.Role.Allowed(roles...) {
			u.errorPage(w, r, s, http.StatusForbidden, "Read-only access",
				"Your role ("+string(s.user.Role)+") may read every engagement and its history, but not record changes. "+
					"Coordinators and admins record them.")
			return
		}
		multipart := strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "multipart/")
		if r.Method == http.MethodPost && (multipart != upload || !upload && !sameToken(r.PostFormValue("_csrf"), s.csrf)) {
			u.errorPage(w, r, s, http.StatusForbidden, "The form could not be accepted",
				"The form was missing its security token or it did not match your session, so nothing was saved. "+
					"Go back, reload the page and try again.")
			return
		}
		h(w, r, s)
	}
}

// session finds the request's session and asks the token store whether its
// token still holds; a revoked token ends the session.
func (u *UI) session(r *http.Request) (*session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, false
	}
	s, ok := u.sessions.get(c.Value, u.now())
	if !ok {
		return nil, false
	}
	info, ok := u.tokens.Authenticate(s.token)
	if !ok {
		u.sessions.end(s.id)
		return nil, false
	}
	s.user = user{Name: info.Name, Role: info.Role}
	return s, true
}

func sameToken(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (u *UI) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

func (u *UI) clearCookie(w http.ResponseWriter, r *http.Request, name, path string) {
	if _, err := r.Cookie(name); err == nil {
		u.setCookie(w, r, name, "", path, -1)
	}
}

type loginData struct {
	base
	Next    string
	Message string
	Error   string
}

// localPath accepts only a path on this site as where to go after signing
// in; anything else, and the sign-in page itself, becomes "/". Browsers
// drop tabs and newlines from a Location and read a backslash as a slash,
// so "/<tab>/evil.example" and "/\evil.example" would leave the site: any
// control character or backslash, raw or percent-encoded, is refused, and
// so is a path that starts with "//" before or after decoding.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || unsafeInPath(p) {
		return "/"
	}
	decoded, err := url.PathUnescape(p)
	if err != nil || unsafeInPath(decoded) {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		strings.HasPrefix(path.Clean(u.Path), "/login") {
		return "/"
	}
	return p
}

// unsafeInPath reports whether p holds what a browser could read as
// another origin: a leading "//", a backslash, or a control character.
func unsafeInPath(p string) bool {
	return strings.HasPrefix(p, "//") || strings.ContainsFunc(p, func(r rune) bool {
		return r == '\\' || unicode.IsControl(r)
	})
}

// tooMany answers a request over a rate limit with a page and Retry-After.
func (u *UI) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, limit string) {
	after := ratelimit.RetryAfter(wait)
	w.Header().Set("Retry-After", after)
	u.errorPage(w, r, nil, http.StatusTooManyRequests, "Too many requests",
		limit+" Please wait "+after+" s and try again.")
}

// clientKey is whom /login's rate limit counts a request against (see
// ratelimit.ClientKey).
func clientKey(r *http.Request) string { return ratelimit.ClientKey(r) }

// loginAllowed applies /login's rate limit, answering 429 when over it.
func (u *UI) loginAllowed(w http.ResponseWriter, r *http.Request) bool {
	wait, ok := u.loginLimits.Allow(clientKey(r), u.now())
	if !ok {
		u.tooMany(w, r, wait, fmt.Sprintf("The sign-in page may be used %g times per second from one address (a burst of %d).",
			u.loginLimits.PerSecond(), u.loginLimits.Burst()))
	}
	return ok
}

// loginPage: GET /login. A signed-in user goes straight on.
func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	if !u.loginAllowed(w, r) {
		return
	}
	next := localPath(r.URL.Query().Get("next"))
	if _, ok := u.session(r); ok {
		seeOther(w, r, next)
		return
	}
	d := loginData{Next: next}
	switch {
	case r.URL.Query().Has("signed_out"):
		d.Message = "You are signed out."
	case r.URL.Query().Has("next"):
		d.Message = "Sign in to see this page."
	}
	u.renderLogin(w, r, http.StatusOK, d)
}

func (u *UI) renderLogin(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	d.base = u.base(nil, "Sign in", "")
	d.CSRF = randomToken()
	u.setCookie(w, r, loginCookie, d.CSRF, "/login", 3600)
	u.render(w, status, "login", d)
}

// login: POST /login with token, _csrf and next.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if !u.loginAllowed(w, r) {
		return
	}
	next := localPath(r.PostFormValue("next"))
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.PostFormValue("_csrf"), c.Value) {
		u.renderLogin(w, r, http.StatusForbidden, loginData{Next: next,
			Error: "The sign-in form had expired or was sent from elsewhere. Please sign in again."})
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	info, ok := u.tokens.Authenticate(token)
	if token == "" || !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="engagements"`)
		u.renderLogin(w, r, http.StatusUnauthorized, loginData{Next: next,
			Error: "That token is not known or was revoked. Check that you pasted all of it (it starts with eng_)."})
		return
	}
	if !info.Role.Allowed(readers...) {
		u.errorPage(w, r, nil, http.StatusForbidden, "These pages are not for subscriber tokens",
			"A subscriber token reads the event stream and manages webhooks through the API. "+
				"Ask an admin for a coordinator or auditor token to use these pages.")
		return
	}
	s := u.sessions.open(token, user{Name: info.Name, Role: info.Role}, u.now())
	u.clearCookie(w, r, loginCookie, "/login")
	u.setCookie(w, r, sessionCookie, s.id, "/", 0)
	u.log.Info("web sign-in", "name", info.Name, "role", info.Role)
	seeOther(w, r, next)
}

// logout: POST /logout.
func (u *UI) logout(w http.ResponseWriter, r *http.Request, s *session) {
	u.sessions.end(s.id)
	u.pageLimits.Forget(s.id)
	u.setCookie(w, r, sessionCookie, "", "/", -1)
	seeOther(w, r, "/login?signed_out=1")
}
