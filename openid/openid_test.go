package openid

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/openid/openidtest"
)

const callback = "http://127.0.0.1:1/login/oidc/callback"

var (
	amina = openidtest.User{ID: "u-amina", Username: "amina", Email: "amina@who.example", EmailVerified: true,
		Groups: []string{"staff", "engagement-coordinators"}}
	noah = openidtest.User{ID: "u-noah", Username: "noah", Email: "noah@who.example", EmailVerified: false,
		Groups: []string{"auditors"}}
	guest = openidtest.User{ID: "u-guest", Username: "guest", Email: "guest@who.example", EmailVerified: true,
		Groups: []string{"staff"}}
)

var roleMap = map[string]domain.Role{"engagement-coordinators": domain.RoleCoordinator, "auditors": domain.RoleAuditor,
	"engagement-admins": domain.RoleAdmin}

// newProvider discovers op as client id (registered there).
func newProvider(t *testing.T, op *openidtest.Provider, id string, now func() time.Time) *Provider {
	t.Helper()
	op.AddClient(id, id+"-secret", "http://127.0.0.1:1")
	p, err := New(context.Background(), Config{Issuer: op.Issuer, ClientID: id, ClientSecret: id + "-secret",
		RedirectURL: callback, RoleMap: roleMap, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signIn runs Begin, the provider's login as username and returns the
// attempt and the code sent back (failing unless the state came back).
func signIn(t *testing.T, op *openidtest.Provider, p *Provider, username string, tamper func(url.Values)) (Attempt, string) {
	t.Helper()
	to, a := p.Begin("/")
	back, err := op.SignIn(context.Background(), openidtest.Tampered(to, tamper), username)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Query().Get("state"); got != a.State {
		t.Fatalf("state %q came back, want %q", got, a.State)
	}
	return a, back.Query().Get("code")
}

func TestSignInThroughARealProvider(t *testing.T) {
	op := openidtest.Start(t, amina, noah, guest)
	p := newProvider(t, op, "engagements", nil)
	ctx := context.Background()

	a, code := signIn(t, op, p, "amina", nil)
	if q, _ := url.Parse(must(p.Begin("/"))); q.Query().Get("code_challenge_method") != "S256" || q.Query().Get("nonce") == "" {
		t.Errorf("authorization URL %s: want a S256 challenge and a nonce", q)
	}
	per, err := p.Finish(ctx, a, code)
	if err != nil {
		t.Fatal(err)
	}
	if per.Actor() != "amina@who.example" || per.Role != domain.RoleCoordinator || per.Subject != "u-amina" ||
		per.Issuer != op.Issuer || per.RefreshToken == "" || per.IDToken == "" {
		t.Errorf("person %+v: want amina@who.example, coordinator, subject u-amina, both tokens", per)
	}
	// The same code twice: the provider refuses it.
	if _, err := p.Finish(ctx, a, code); !errors.Is(err, ErrSignIn) {
		t.Errorf("the code again: %v, want ErrSignIn", err)
	}

	// An unverified e-mail is not an identity: the subject is.
	a, code = signIn(t, op, p, "noah", nil)
	if per, err := p.Finish(ctx, a, code); err != nil || per.Actor() != "u-noah" || per.Role != domain.RoleAuditor {
		t.Errorf("noah: %+v, %v; want actor u-noah (no verified e-mail), auditor", per, err)
	}
	// No mapped group: signed in by the provider, no role here.
	a, code = signIn(t, op, p, "guest", nil)
	guestPer, err := p.Finish(ctx, a, code)
	if err != nil || guestPer.Role != "" {
		t.Errorf("guest: %+v, %v; want no role", guestPer, err)
	}

	// Roles are asked again with the refresh token: taking amina out of the
	// coordinators' group takes her role away at the next recheck.
	if again, err := p.Recheck(ctx, guestPer.Subject, guestPer.RefreshToken); err != nil || again.Role != "" {
		t.Errorf("recheck guest: %+v, %v", again, err)
	}
	op.SetGroups(amina.ID, "staff")
	again, err := p.Recheck(ctx, "u-amina", mustPerson(t, p, op, "amina").RefreshToken)
	if err != nil || again.Role != "" || again.Subject != "u-amina" {
		t.Errorf("recheck after the group's removal: %+v, %v; want no role", again, err)
	}
	op.SetGroups(amina.ID, "engagement-admins", "auditors")
	admin, err := p.Recheck(ctx, "u-amina", again.RefreshToken)
	if err != nil || admin.Role != domain.RoleAdmin {
		t.Errorf("recheck in two mapped groups: %+v, %v; want the stronger role, admin", admin, err)
	}
	if _, err := p.Recheck(ctx, "u-amina", "not-a-refresh-token"); !errors.Is(err, ErrSignIn) {
		t.Errorf("recheck with an unknown refresh token: %v, want ErrSignIn", err)
	}
	if _, err := p.Recheck(ctx, "u-noah", admin.RefreshToken); !errors.Is(err, ErrSignIn) || !strings.Contains(err.Error(), "another subject") {
		t.Errorf("recheck answered for another subject: %v, want ErrSignIn", err)
	}

	// RP-initiated logout: the provider advertises end_session_endpoint.
	out, err := url.Parse(p.LogoutURL(per.IDToken, "http://127.0.0.1:1/login?signed_out=1"))
	if err != nil || !strings.HasPrefix(out.String(), op.Issuer) || out.Query().Get("id_token_hint") != per.IDToken ||
		out.Query().Get("post_logout_redirect_uri") != "http://127.0.0.1:1/login?signed_out=1" {
		t.Errorf("logout URL %v (%v)", out, err)
	}
}

func must(s string, _ Attempt) string { return s }

func mustPerson(t *testing.T, p *Provider, op *openidtest.Provider, username string) Person {
	t.Helper()
	a, code := signIn(t, op, p, username, nil)
	per, err := p.Finish(context.Background(), a, code)
	if err != nil {
		t.Fatal(err)
	}
	return per
}

// Each refusal comes from the real provider's real tokens.
func TestSignInRefusals(t *testing.T) {
	op := openidtest.Start(t, amina)
	p := newProvider(t, op, "engagements", nil)
	other := newProvider(t, op, "other-app", nil)
	late := newProvider(t, op, "late-app", func() time.Time { return time.Now().Add(2 * time.Hour) })
	ctx := context.Background()

	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"an ID token for another client (wrong audience) → refused", func() error {
			a, code := signIn(t, op, other, "amina", nil)
			theirs, err := other.Finish(ctx, a, code)
			if err != nil {
				return err
			}
			tok := (&oauth2.Token{AccessToken: "x"}).WithExtra(map[string]any{"id_token": theirs.IDToken})
			_, err = p.person(ctx, tok, a.Nonce, "")
			return err
		}, "audience"},
		{"a code issued to another client → refused", func() error {
			a, code := signIn(t, op, other, "amina", nil)
			_, err := p.Finish(ctx, a, code)
			return err
		}, "did not accept the code"},
		{"an expired ID token → refused", func() error {
			a, code := signIn(t, op, late, "amina", nil)
			a.Created = time.Now().Add(2 * time.Hour)
			_, err := late.Finish(ctx, a, code)
			return err
		}, "expired"},
		{"a nonce that is not the sign-in's → refused", func() error {
			a, code := signIn(t, op, p, "amina", func(q url.Values) { q.Set("nonce", "someone-elses-nonce") })
			_, err := p.Finish(ctx, a, code)
			return err
		}, "nonce"},
		{"a PKCE verifier that is not the sign-in's → refused", func() error {
			a, code := signIn(t, op, p, "amina", nil)
			a.Verifier = oauth2.GenerateVerifier()
			_, err := p.Finish(ctx, a, code)
			return err
		}, "did not accept the code"},
		{"an attempt older than ten minutes → refused", func() error {
			a, code := signIn(t, op, p, "amina", nil)
			a.Created = time.Now().Add(-AttemptLife - time.Minute)
			_, err := p.Finish(ctx, a, code)
			return err
		}, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if !errors.Is(err, ErrSignIn) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrSignIn saying %q", err, tt.want)
			}
		})
	}
}

func TestParseRoleMap(t *testing.T) {
	got, err := ParseRoleMap([]string{"a=admin, b=coordinator", "c=auditor"})
	if err != nil || len(got) != 3 || got["a"] != domain.RoleAdmin || got["b"] != domain.RoleCoordinator || got["c"] != domain.RoleAuditor {
		t.Errorf("ParseRoleMap: %v, %v", got, err)
	}
	for _, bad := range []string{"a", "a=subscriber", "=admin", "a=root", "a=admin,a=auditor"} {
		if _, err := ParseRoleMap([]string{bad}); err == nil {
			t.Errorf("ParseRoleMap(%q): no error", bad)
		}
	}
}
