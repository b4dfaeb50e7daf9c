package webui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/iom-who/engagements/domain"
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
	// maxSessions bounds memory; beyond it the least recently used go first.
	maxSessions = 10_000
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
	id       string
	token    string
	csrf     string
	user     user
	created  time.Time
	lastSeen time.Time
	flash    string
}

type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
}

func newSessions() *sessions { return &sessions{byID: make(map[string]*session)} }

// randomToken is 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// open starts a session for token, owned by u.
func (ss *sessions) open(token string, u user, now time.Time) *session {
	s := &session{id: randomToken(), token: token, csrf: randomToken(), user: u, created: now, lastSeen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, x := range ss.byID {
		if x.expired(now) {
			delete(ss.byID, id)
		}
	}
	if len(ss.byID) >= maxSessions {
		var oldest *session
		for _, x := range ss.byID {
			if oldest == nil || x.lastSeen.Before(oldest.lastSeen) {
				oldest = x
			}
		}
		delete(ss.byID, oldest.id)
	}
	ss.byID[s.id] = s
	return s
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
		delete(ss.byID, id)
		return nil, false
	}
	s.lastSeen = now
	c := *s
	return &c, true
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, id)
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
		if r.Method == http.MethodPost && !sameToken(r.PostFormValue("_csrf"), s.csrf) {
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

// localPath accepts only a path on this site as where to go after signing in.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
		strings.HasPrefix(p, "/login") {
		return "/"
	}
	return p
}

// loginPage: GET /login. A signed-in user goes straight on.
func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
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
	u.setCookie(w, r, sessionCookie, "", "/", -1)
	seeOther(w, r, "/login?signed_out=1")
}
