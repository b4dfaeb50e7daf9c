package webui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/ratelimit"
	"github.com/iom-who/engagements/sessions"
	"github.com/iom-who/engagements/tokens"
)

// Session settings. Sessions live in the sessions bucket (see package
// sessions), shared by every instance and kept across restarts; the token
// is checked again on every request.
const (
	sessionCookie = "engagements_session"
	// loginCookie carries the sign-in form's CSRF token (double submit):
	// there is no session yet to keep it in.
	loginCookie = "engagements_login"
	// kvTimeout bounds each read or write of the sessions bucket.
	kvTimeout = 5 * time.Second
)

// SessionStore keeps the web sessions; *sessions.Store is one (see
// WithSessions).
type SessionStore interface {
	// Start opens a session for identity, signed in with the token of this
	// digest, within lim.
	Start(ctx context.Context, identity, token string, lim sessions.Limits, now time.Time) (*sessions.Session, error)
	// Get returns the live session with this id, or sessions.ErrNotFound.
	Get(ctx context.Context, id string, now time.Time) (*sessions.Session, error)
	// Change applies f to the stored session and stores it unless f
	// returns false.
	Change(ctx context.Context, id string, f func(*sessions.Session) bool) (*sessions.Session, error)
	// End deletes the session.
	End(ctx context.Context, id string) error
}

// user is who a session belongs to, as the token store says now.
type user struct {
	Name string
	Role domain.Role
	// Issuer and Subject name a person signed in through the directory;
	// empty for a token.
	Issuer, Subject string
}

// CanWrite reports whether the user may record engagements and events.
func (u user) CanWrite() bool { return u.Role.Allowed(writers...) }

// session is the request's session as stored, and its user as the token
// store says now.
type session struct {
	*sessions.Session
	user user
}

// randomToken is 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// kvContext bounds a read or write of the sessions bucket. It does not
// follow the request's context: a flash taken must be stored even if the
// browser goes away.
func kvContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), kvTimeout)
}

// setFlash keeps a message for the session's next page.
func (u *UI) setFlash(s *session, msg string) {
	u.changeSession(s, func(x *sessions.Session) bool {
		x.Flash = msg
		return true
	})
}

// takeFlash returns the message kept for this page, once.
func (u *UI) takeFlash(s *session) string {
	if s.Flash == "" {
		return ""
	}
	msg := s.Flash
	s.Flash = ""
	u.changeSession(s, func(x *sessions.Session) bool {
		if x.Flash == "" {
			return false
		}
		x.Flash = ""
		return true
	})
	return msg
}

// changeSession changes the stored session; a failure is logged, as the
// page goes on without what was to be kept.
func (u *UI) changeSession(s *session, f func(*sessions.Session) bool) {
	ctx, cancel := kvContext()
	defer cancel()
	if _, err := u.sessions.Change(ctx, s.ID, f); err != nil && !errors.Is(err, sessions.ErrNotFound) {
		u.log.Warn("web session not updated", "err", err)
	}
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
		s, err := u.session(r)
		if errors.Is(err, errDirectoryUnreachable) {
			w.Header().Set("Retry-After", "5")
			u.errorPage(w, r, nil, http.StatusServiceUnavailable, "Your directory cannot be reached",
				"Your access is checked with your organisation's directory from time to time, and it cannot be reached right now. "+
					"You are still signed in; please try again in a moment.")
			return
		}
		if err != nil && !errors.Is(err, sessions.ErrNotFound) {
			u.failed(w, r, nil, err)
			return
		}
		if s == nil {
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
		if wait, ok := u.pageLimits.Allow(s.ID, u.now()); !ok {
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
		if r.Method == http.MethodPost && (multipart != upload || !upload && !sameToken(r.PostFormValue("_csrf"), s.CSRF)) {
			u.errorPage(w, r, s, http.StatusForbidden, "The form could not be accepted",
				"The form was missing its security token or it did not match your session, so nothing was saved. "+
					"Go back, reload the page and try again.")
			return
		}
		h(w, r, s)
	}
}

// session finds the request's session and asks the token store whether its
// token still holds; a revoked token ends the session. Without a live
// session it returns sessions.ErrNotFound; another error means the bucket
// could not be read.
func (u *UI) session(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, sessions.ErrNotFound
	}
	if u.sessions == nil {
		return nil, errNoSessions
	}
	ctx, cancel := kvContext()
	defer cancel()
	stored, err := u.sessions.Get(ctx, c.Value, u.now())
	if err != nil {
		return nil, err
	}
	if stored.Person != nil {
		return u.person(ctx, stored)
	}
	info, ok := u.tokens.AuthenticateDigest(stored.Token)
	if !ok {
		if err := u.sessions.End(ctx, stored.ID); err != nil {
			u.log.Warn("web session of a revoked token not deleted", "err", err)
		}
		return nil, sessions.ErrNotFound
	}
	return &session{Session: stored, user: user{Name: info.Name, Role: info.Role}}, nil
}

// errNoSessions: New was given no session store (WithSessions).
var errNoSessions = fmt.Errorf("web sessions: no session store: %w", domain.ErrUnavailable)

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
	// Directory: sign-in with the directory is offered.
	Directory bool
	Next      string
	Message   string
	Error     string
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
	if s, _ := u.session(r); s != nil {
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
	d.Directory = u.directory != nil
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
	if u.sessions == nil {
		u.failed(w, r, nil, errNoSessions)
		return
	}
	ctx, cancel := kvContext()
	defer cancel()
	s, err := u.sessions.Start(ctx, info.Name, tokens.Digest(token), u.sessionLimits, u.now())
	if err != nil {
		u.failed(w, r, nil, err)
		return
	}
	u.clearCookie(w, r, loginCookie, "/login")
	u.setCookie(w, r, sessionCookie, s.ID, "/", 0)
	u.log.Info("web sign-in", "name", info.Name, "role", info.Role)
	seeOther(w, r, next)
}

// logout: POST /logout.
func (u *UI) logout(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := kvContext()
	defer cancel()
	if err := u.sessions.End(ctx, s.ID); err != nil {
		u.failed(w, r, s, err)
		return
	}
	u.pageLimits.Forget(s.ID)
	u.setCookie(w, r, sessionCookie, "", "/", -1)
	if to := u.directoryLogout(s); to != "" {
		// A page, not a redirect: form-action 'self' forbids a form's
		// redirect to another origin.
		u.continueTo(w, to, "Signed out here", "You are signed out of Engagements. Signing you out of your directory too…")
		return
	}
	seeOther(w, r, "/login?signed_out=1")
}
