// Package openid signs people in to the web UI with their organisation's
// directory, an OpenID Provider: the authorization code flow with PKCE,
// state and nonce (github.com/coreos/go-oidc/v3 and golang.org/x/oauth2),
// and the mapping of the directory's groups to this service's roles. It
// holds no state itself: the caller keeps an Attempt between Begin and
// Finish (server-side, once) and a Person's tokens in the session. It
// imports domain only.
package openid

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/iom-who/engagements/domain"
)

// AttemptLife bounds a sign-in from Begin to Finish.
const AttemptLife = 10 * time.Minute

// Roles a directory group may map to, strongest first: a person in several
// mapped groups gets the strongest of their roles.
var Roles = []domain.Role{domain.RoleAdmin, domain.RoleCoordinator, domain.RoleAuditor}

// Config is a client registered with an OpenID Provider.
type Config struct {
	// Issuer is the provider's issuer URL (its discovery document is at
	// Issuer/.well-known/openid-configuration).
	Issuer string
	// ClientID and ClientSecret are this service's registration there.
	ClientID, ClientSecret string
	// RedirectURL is where the provider sends the browser back:
	// <public URL>/login/oidc/callback.
	RedirectURL string
	// RolesClaim names the claim (of the ID token, else of the userinfo
	// response) that lists the person's groups; "" means "groups".
	RolesClaim string
	// RoleMap maps a group, as the claim names it, to a role (one of Roles).
	RoleMap map[string]domain.Role
	// Scopes are asked for besides openid, email, profile and
	// offline_access (a refresh token lets roles be checked again).
	Scopes []string
	// HTTPClient reaches the provider; nil means one with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock ID tokens are checked against; nil means time.Now.
	Now func() time.Time
}

// Provider is a discovered OpenID Provider and this service's client there.
type Provider struct {
	cfg        Config
	oauth      oauth2.Config
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	endSession string
}

// ErrSignIn marks a sign-in the provider's answer does not support: an ID
// token that fails verification, a nonce that does not match, a code the
// provider refuses. The message says which; show it, not the cause's details.
var ErrSignIn = errors.New("sign-in refused")

// New discovers the provider at cfg.Issuer and checks the configuration.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("openid: an issuer and a client id are needed")
	}
	if _, err := url.Parse(cfg.RedirectURL); err != nil || !strings.HasPrefix(cfg.RedirectURL, "http") {
		return nil, fmt.Errorf("openid: redirect URL %q is not an absolute http(s) URL", cfg.RedirectURL)
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "groups"
	}
	for g, r := range cfg.RoleMap {
		if !slices.Contains(Roles, r) {
			return nil, fmt.Errorf("openid: group %q maps to %q, not one of admin, coordinator, auditor", g, r)
		}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// The provider keeps this context's client for its key set.
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("openid: discover %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("openid: discovery document: %w", err)
	}
	scopes := append([]string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess}, cfg.Scopes...)
	return &Provider{cfg: cfg, provider: p, endSession: meta.EndSession,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.RedirectURL, Scopes: scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: cfg.Now}),
	}, nil
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Attempt is a sign-in between Begin and Finish: what the browser must
// bring back (State) and what only the server may know (Nonce, Verifier).
type Attempt struct {
	State    string    `json:"state"`
	Nonce    string    `json:"nonce"`
	Verifier string    `json:"verifier"`
	Next     string    `json:"next"`
	Created  time.Time `json:"created"`
}

// Begin starts a sign-in that returns to next: the provider's
// authorization URL to send the browser to, and the attempt to keep.
func (p *Provider) Begin(next string) (string, Attempt) {
	a := Attempt{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Next: next, Created: p.cfg.Now()}
	return p.oauth.AuthCodeURL(a.State, oidc.Nonce(a.Nonce), oauth2.S256ChallengeOption(a.Verifier)), a
}

// Person is who signed in, as the provider vouches for them.
type Person struct {
	Issuer, Subject string
	// Email is the address the provider verified, "" when it verified none.
	Email string
	Name  string
	// Groups are the person's groups as the roles claim lists them; Role
	// the strongest role they map to, "" when none does.
	Groups []string
	Role   domain.Role
	// IDToken is the last ID token (the hint for signing out); RefreshToken
	// lets roles be checked again, "" when the provider gave none.
	IDToken, RefreshToken string
	// Expiry is when the ID token expires.
	Expiry time.Time
}

// Actor is the name the person's events record: the verified e-mail, or
// the subject at the issuer when there is none.
func (p Person) Actor() string {
	if p.Email != "" {
		return p.Email
	}
	return p.Subject
}

// Finish exchanges the code the provider sent back to a for tokens,
// verifies the ID token (signature, issuer, audience, expiry, nonce) and
// reads the person and their role. A person with no mapped group is
// returned with Role "", not as an error.
func (p *Provider) Finish(ctx context.Context, a Attempt, code string) (Person, error) {
	if p.cfg.Now().Sub(a.Created) > AttemptLife {
		return Person{}, fmt.Errorf("%w: the sign-in took longer than %s", ErrSignIn, AttemptLife)
	}
	ctx = oidc.ClientContext(ctx, p.cfg.HTTPClient)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(a.Verifier))
	if err != nil {
		return Person{}, fmt.Errorf("%w: the provider did not accept the code: %w", ErrSignIn, err)
	}
	return p.person(ctx, tok, a.Nonce, "")
}

// Recheck asks the provider again, with the refresh token, who subject is
// and which groups they are in now. An error means the provider no longer
// vouches for the session (the refresh token was revoked or expired, the
// person is gone or another subject answered) when it is ErrSignIn; any
// other error is the provider not answering.
func (p *Provider) Recheck(ctx context.Context, subject, refreshToken string) (Person, error) {
	ctx = oidc.ClientContext(ctx, p.cfg.HTTPClient)
	tok, err := p.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	var refused *oauth2.RetrieveError
	if errors.As(err, &refused) {
		return Person{}, fmt.Errorf("%w: the provider refused the refresh token: %w", ErrSignIn, err)
	}
	if err != nil {
		return Person{}, fmt.Errorf("openid: refresh at %s: %w", p.cfg.Issuer, err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return p.person(ctx, tok, "", subject)
}

// person verifies the token response's ID token and reads the person from
// it (and from the userinfo endpoint for what it lacks). nonce, when set,
// must be the token's; subject, when set, too.
func (p *Provider) person(ctx context.Context, tok *oauth2.Token, nonce, subject string) (Person, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Person{}, fmt.Errorf("%w: the provider sent no ID token", ErrSignIn)
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return Person{}, fmt.Errorf("%w: the ID token has expired: %w", ErrSignIn, err)
		}
		return Person{}, fmt.Errorf("%w: the ID token did not verify: %w", ErrSignIn, err)
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Person{}, fmt.Errorf("%w: the ID token's nonce is not this sign-in's", ErrSignIn)
	}
	if subject != "" && idt.Subject != subject {
		return Person{}, fmt.Errorf("%w: the provider answered for another subject", ErrSignIn)
	}
	claims := map[string]json.RawMessage{}
	if err := idt.Claims(&claims); err != nil {
		return Person{}, fmt.Errorf("%w: the ID token's claims: %w", ErrSignIn, err)
	}
	// What the ID token lacks may be in the userinfo response (providers
	// differ in which claims they put where).
	if (claims["email"] == nil || claims[p.cfg.RolesClaim] == nil) && p.provider.UserInfoEndpoint() != "" && tok.AccessToken != "" {
		info, err := p.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Person{}, fmt.Errorf("%w: the userinfo endpoint: %w", ErrSignIn, err)
		}
		if info.Subject != idt.Subject {
			return Person{}, fmt.Errorf("%w: userinfo answered for another subject", ErrSignIn)
		}
		more := map[string]json.RawMessage{}
		if err := info.Claims(&more); err != nil {
			return Person{}, fmt.Errorf("%w: the userinfo claims: %w", ErrSignIn, err)
		}
		for k, v := range more {
			if claims[k] == nil {
				claims[k] = v
			}
		}
	}
	per := Person{Issuer: idt.Issuer, Subject: idt.Subject, IDToken: raw, RefreshToken: tok.RefreshToken, Expiry: idt.Expiry}
	var email string
	var verified any
	_ = json.Unmarshal(claims["email"], &email)
	_ = json.Unmarshal(claims["email_verified"], &verified)
	if verified == true || verified == "true" {
		per.Email = email
	}
	_ = json.Unmarshal(claims["name"], &per.Name)
	per.Groups = groups(claims[p.cfg.RolesClaim])
	per.Role = p.role(per.Groups)
	return per, nil
}

// groups reads a claim that is a list of strings or one string.
func groups(raw json.RawMessage) []string {
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var one string
	if json.Unmarshal(raw, &one) == nil && one != "" {
		return []string{one}
	}
	return nil
}

// role is the strongest role the groups map to, "" when none does.
func (p *Provider) role(groups []string) domain.Role {
	best := -1
	for _, g := range groups {
		if i := slices.Index(Roles, p.cfg.RoleMap[g]); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return Roles[best]
}

// LogoutURL is where to send the browser to sign out at the provider too
// (RP-initiated logout, with the ID token as the hint and back to
// postLogout), or "" when the provider advertises no end_session_endpoint.
func (p *Provider) LogoutURL(idToken, postLogout string) string {
	if p.endSession == "" {
		return ""
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	q.Set("client_id", p.cfg.ClientID)
	if postLogout != "" {
		q.Set("post_logout_redirect_uri", postLogout)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// random is 256 random bits, URL-safe.
func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseRoleMap reads "group=role" pairs, as --oidc-role-map gives them.
func ParseRoleMap(pairs []string) (map[string]domain.Role, error) {
	m := make(map[string]domain.Role, len(pairs))
	for _, pair := range pairs {
		for item := range strings.SplitSeq(pair, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			g, r, ok := strings.Cut(item, "=")
			g, r = strings.TrimSpace(g), strings.TrimSpace(r)
			if !ok || g == "" || !slices.Contains(Roles, domain.Role(r)) {
				return nil, fmt.Errorf("%q is not group=role with role admin, coordinator or auditor", item)
			}
			if old, dup := m[g]; dup && old != domain.Role(r) {
				return nil, fmt.Errorf("group %q is mapped twice (%s and %s)", g, old, r)
			}
			m[g] = domain.Role(r)
		}
	}
	return m, nil
}
