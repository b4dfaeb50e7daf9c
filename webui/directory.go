package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/openid"
	"github.com/iom-who/engagements/sessions"
)

// Directory sign-in (OpenID Connect): /login/oidc sends the browser to the
// provider with a fresh state, nonce and PKCE challenge, kept server-side
// in the sessions store's attempts bucket; /login/oidc/callback takes the
// attempt once (a replayed state finds nothing), checks that the browser
// that began is the one that came back (the state cookie), lets the
// provider verify the code and reads the person and their role.
const (
	// stateCookie binds an attempt to the browser that began it. It is
	// SameSite=Lax: the provider's redirect back is a cross-site navigation.
	stateCookie = "engagements_oidc"
	// DefaultRecheck is how often a directory session asks the provider
	// again (with its refresh token) whether the person still holds a role.
	DefaultRecheck = time.Minute
)

// Directory is the OpenID Provider people sign in with; *openid.Provider
// is one (see WithDirectory).
type Directory interface {
	Begin(next string) (string, openid.Attempt)
	Finish(ctx context.Context, a openid.Attempt, code string) (openid.Person, error)
	Recheck(ctx context.Context, subject, refreshToken string) (openid.Person, error)
	LogoutURL(idToken, postLogout string) string
}

// WithDirectory offers sign-in with the directory behind dir beside the
// token, and checks each directory session's role with the provider again
// every recheck (0 means DefaultRecheck). base is the service's public
// URL, where the provider sends the browser back after signing out.
func WithDirectory(dir Directory, recheck time.Duration, base string) Option {
	return func(c *config) {
		c.directory, c.recheck, c.directoryBase = dir, recheck, strings.TrimSuffix(base, "/")
	}
}

// DirectorySessions are what directory sign-in needs of the session store
// beyond SessionStore; *sessions.Store has them.
type DirectorySessions interface {
	StartPerson(ctx context.Context, identity string, p sessions.Person, lim sessions.Limits, now time.Time) (*sessions.Session, error)
	Hold(ctx context.Context, state string, value []byte) error
	Take(ctx context.Context, state string) ([]byte, error)
}

// directorySessions is the session store's directory side, nil when it has
// none.
func (u *UI) directorySessions() DirectorySessions {
	d, _ := u.sessions.(DirectorySessions)
	return d
}

// directoryLogin admits a request to the directory sign-in pages: within
// the sign-in rate, and only when directory sign-in is configured (404
// otherwise). false: answered already.
func (u *UI) directoryLogin(w http.ResponseWriter, r *http.Request) (DirectorySessions, bool) {
	if !u.loginAllowed(w, r) {
		return nil, false
	}
	ds := u.directorySessions()
	if u.directory == nil || ds == nil {
		http.NotFound(w, r)
		return nil, false
	}
	return ds, true
}

// beginDirectory: GET /login/oidc?next=….
func (u *UI) beginDirectory(w http.ResponseWriter, r *http.Request) {
	ds, ok := u.directoryLogin(w, r)
	if !ok {
		return
	}
	to, a := u.directory.Begin(localPath(r.URL.Query().Get("next")))
	b, err := json.Marshal(a)
	if err != nil {
		u.failed(w, r, nil, err)
		return
	}
	ctx, cancel := kvContext()
	defer cancel()
	if err := ds.Hold(ctx, a.State, b); err != nil {
		u.failed(w, r, nil, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: a.State, Path: "/login/oidc",
		MaxAge: int(sessions.AttemptLife / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// finishDirectory: GET /login/oidc/callback?code=…&state=… (or error=…).
func (u *UI) finishDirectory(w http.ResponseWriter, r *http.Request) {
	ds, ok := u.directoryLogin(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	c, err := r.Cookie(stateCookie)
	if err != nil || !sameToken(state, c.Value) {
		u.errorPage(w, r, nil, http.StatusBadRequest, "This sign-in was not started here",
			"The answer from your directory does not belong to a sign-in this browser started (or it took longer than ten minutes). "+
				"Nothing was signed in. Start again from the sign-in page.")
		return
	}
	u.clearCookie(w, r, stateCookie, "/login/oidc")
	ctx, cancel := kvContext()
	defer cancel()
	b, err := ds.Take(ctx, state)
	if errors.Is(err, sessions.ErrAttemptUsed) {
		u.errorPage(w, r, nil, http.StatusBadRequest, "This sign-in was already used",
			"Each answer from your directory signs in once, within ten minutes. This one was used already or has expired. "+
				"Start again from the sign-in page.")
		return
	}
	if err != nil {
		u.failed(w, r, nil, err)
		return
	}
	var a openid.Attempt
	if err := json.Unmarshal(b, &a); err != nil {
		u.failed(w, r, nil, fmt.Errorf("sign-in attempt: %w", err))
		return
	}
	if e := q.Get("error"); e != "" {
		u.log.Info("directory sign-in refused by the provider", "error", e)
		u.errorPage(w, r, nil, http.StatusUnauthorized, "Your directory did not sign you in",
			"The directory answered "+e+". Nothing was signed in. Start again from the sign-in page, or sign in with a token.")
		return
	}
	fctx, fcancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer fcancel()
	per, err := u.directory.Finish(fctx, a, q.Get("code"))
	if err != nil {
		u.log.Warn("directory sign-in refused", "err", err)
		if errors.Is(err, openid.ErrSignIn) {
			u.errorPage(w, r, nil, http.StatusUnauthorized, "The sign-in could not be verified",
				"Your directory's answer did not pass the checks ("+signInReason(err)+"). Nothing was signed in. "+
					"Start again from the sign-in page.")
			return
		}
		u.failed(w, r, nil, err)
		return
	}
	if per.Role == "" {
		u.log.Info("directory sign-in without a mapped group", "actor", per.Actor(), "issuer", per.Issuer)
		u.noRole(w, r, per.Actor())
		return
	}
	s, err := ds.StartPerson(ctx, per.Actor(), sessions.Person{Issuer: per.Issuer, Subject: per.Subject, Role: per.Role,
		IDToken: per.IDToken, RefreshToken: per.RefreshToken, Checked: u.now(), Expiry: per.Expiry}, u.sessionLimits, u.now())
	if err != nil {
		u.failed(w, r, nil, err)
		return
	}
	u.setCookie(w, r, sessionCookie, s.ID, "/", 0)
	u.log.Info("web sign-in", "name", per.Actor(), "role", per.Role, "issuer", per.Issuer)
	// A page, not a redirect: the session cookie is SameSite=Strict, and a
	// browser does not send it on a redirect that a cross-site navigation
	// (the provider's) started.
	u.continueTo(w, a.Next, "Signed in", "You are signed in as "+per.Actor()+".")
}

// signInReason is the first clause of a refusal, for the page.
func signInReason(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, openid.ErrSignIn.Error()+": ")
	if i := strings.Index(msg, ": "); i > 0 {
		msg = msg[:i]
	}
	return msg
}

// noRole is the page for a person whose groups map to no role.
func (u *UI) noRole(w http.ResponseWriter, r *http.Request, who string) {
	u.errorPage(w, r, nil, http.StatusForbidden, "No access for your account",
		"Your directory signed you in as "+who+", but none of your groups gives access to these pages. "+
			"Ask an admin to add you to a group that is mapped to the coordinator, auditor or admin role. "+
			"Nothing was recorded and you are not signed in.")
}

type continueData struct {
	base
	To, Heading, Message string
}

// continueTo answers with a page that moves the browser on to to (a local
// path or the provider's sign-out URL).
func (u *UI) continueTo(w http.ResponseWriter, to, heading, message string) {
	u.render(w, http.StatusOK, "continue", continueData{base: u.base(nil, heading, ""), To: to, Heading: heading, Message: message})
}

// person checks a directory session: the person's role, asked of the
// provider again when the last check is older than u.recheck. It returns
// the user, or sessions.ErrNotFound when the session has ended.
func (u *UI) person(ctx context.Context, stored *sessions.Session) (*session, error) {
	p := stored.Person
	end := func(why string) (*session, error) {
		u.log.Info("directory session ended", "actor", stored.Identity, "why", why)
		if err := u.sessions.End(ctx, stored.ID); err != nil {
			u.log.Warn("directory session not deleted", "err", err)
		}
		return nil, sessions.ErrNotFound
	}
	if u.directory == nil {
		return end("directory sign-in is no longer configured")
	}
	now := u.now()
	if now.Sub(p.Checked) >= u.recheck {
		if p.RefreshToken == "" {
			// Without a refresh token nothing can be asked again: the role
			// stands until the ID token expires, then the person signs in
			// again.
			if now.After(p.Expiry) {
				return end("the ID token expired and the provider gave no refresh token")
			}
		} else {
			fresh, err := u.recheckPerson(ctx, stored)
			if errors.Is(err, openid.ErrSignIn) {
				return end(err.Error())
			}
			if err != nil {
				return nil, err
			}
			if fresh != nil {
				stored, p = fresh, fresh.Person
			}
		}
	}
	if p.Role == "" {
		return end("no mapped group")
	}
	return &session{Session: stored, user: user{Name: stored.Identity, Role: p.Role, Issuer: p.Issuer, Subject: p.Subject}}, nil
}

// errDirectoryUnreachable: the provider could not be asked whether a
// session still holds; the request is refused and the next one asks again.
var errDirectoryUnreachable = fmt.Errorf("the directory cannot be reached to confirm the session: %w", domain.ErrUnavailable)

// recheckPerson asks the provider again for a session whose check is due.
// One request claims the check (by writing Checked, which the bucket's
// revisions let only one request do); others go on with the role as last
// checked meanwhile. It returns the session as stored afterwards (nil when
// another request holds the claim), openid.ErrSignIn when the provider no
// longer vouches for the person, or errDirectoryUnreachable.
func (u *UI) recheckPerson(ctx context.Context, stored *sessions.Session) (*sessions.Session, error) {
	now := u.now()
	var claimed bool
	var before time.Time
	var subject, refresh string
	_, err := u.sessions.Change(ctx, stored.ID, func(x *sessions.Session) bool {
		claimed = false
		if x.Person == nil || now.Sub(x.Person.Checked) < u.recheck {
			return false
		}
		// The tokens as stored now: a recheck meanwhile may have rotated
		// the refresh token.
		subject, refresh = x.Person.Subject, x.Person.RefreshToken
		before, x.Person.Checked, claimed = x.Person.Checked, now, true
		return true
	})
	if err != nil || !claimed {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	per, err := u.directory.Recheck(rctx, subject, refresh)
	if err != nil && !errors.Is(err, openid.ErrSignIn) {
		u.log.Warn("directory not reached to recheck a session", "actor", stored.Identity, "err", err)
		// Let the next request ask again rather than grant an interval.
		_, _ = u.sessions.Change(ctx, stored.ID, func(x *sessions.Session) bool {
			if x.Person == nil || !x.Person.Checked.Equal(now) {
				return false
			}
			x.Person.Checked = before
			return true
		})
		return nil, errDirectoryUnreachable
	}
	if err != nil {
		return nil, err
	}
	return u.sessions.Change(ctx, stored.ID, func(x *sessions.Session) bool {
		if x.Person == nil {
			return false
		}
		x.Person.Role, x.Person.IDToken, x.Person.Expiry, x.Person.Checked = per.Role, per.IDToken, per.Expiry, now
		if per.RefreshToken != "" {
			x.Person.RefreshToken = per.RefreshToken
		}
		return true
	})
}

// directoryLogout is where logout sends a directory session's browser: the
// provider's end_session_endpoint when it has one, else "".
func (u *UI) directoryLogout(s *session) string {
	if u.directory == nil || s.Person == nil {
		return ""
	}
	back := ""
	if u.directoryBase != "" {
		back = u.directoryBase + "/login?" + url.Values{"signed_out": {"1"}}.Encode()
	}
	return u.directory.LogoutURL(s.Person.IDToken, back)
}
