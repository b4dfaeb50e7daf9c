package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/openid"
	"github.com/iom-who/engagements/webui"
)

// callbackPath is where the provider sends the browser back.
const callbackPath = "/login/oidc/callback"

// OIDCConfig is serve's directory sign-in (OpenID Connect); an empty
// Issuer turns it off.
type OIDCConfig struct {
	// Issuer, ClientID and ClientSecret: --oidc-issuer, --oidc-client-id,
	// --oidc-client-secret (or the file --oidc-client-secret-file names).
	Issuer, ClientID, ClientSecret string
	// RolesClaim is the claim listing the person's groups (--oidc-roles-claim).
	RolesClaim string
	// RoleMap maps groups to roles (--oidc-role-map group=role, repeated or
	// comma-separated).
	RoleMap map[string]domain.Role
	// RedirectURL (--oidc-redirect-url) defaults to <--public-url>/login/oidc/callback,
	// else http://<--http>/login/oidc/callback.
	RedirectURL string
	// Recheck is how often a session's role is asked of the provider again
	// (--oidc-recheck).
	Recheck time.Duration
}

// oidcFlags declares the --oidc-* flags; the returned function finishes
// them after parsing.
func oidcFlags(fs *flag.FlagSet, c *OIDCConfig) func() error {
	var secretFile string
	var roleMap []string
	fs.StringVar(&c.Issuer, "oidc-issuer", "", "sign people in to the web UI with this OpenID Provider (its issuer URL, e.g. https://login.microsoftonline.com/<tenant>/v2.0); unset: token sign-in only")
	fs.StringVar(&c.ClientID, "oidc-client-id", "", "this service's client id at the OpenID Provider")
	fs.StringVar(&c.ClientSecret, "oidc-client-secret", "", "its client secret (prefer --oidc-client-secret-file or ENGAGEMENTS_OIDC_CLIENT_SECRET)")
	fs.StringVar(&secretFile, "oidc-client-secret-file", "", "file holding the client secret")
	fs.StringVar(&c.RolesClaim, "oidc-roles-claim", "groups", "claim of the ID token (or userinfo) that lists the person's groups")
	fs.Func("oidc-role-map", "group=role (role admin, coordinator or auditor); repeat the flag or separate pairs with commas; a person in no mapped group is refused", func(v string) error {
		roleMap = append(roleMap, v)
		return nil
	})
	fs.StringVar(&c.RedirectURL, "oidc-redirect-url", "", "the callback URL registered at the provider (default <--public-url>"+callbackPath+", else http://<--http>"+callbackPath+")")
	fs.DurationVar(&c.Recheck, "oidc-recheck", webui.DefaultRecheck, "ask the provider this often (with the session's refresh token) whether a signed-in person still holds a role")
	return func() error {
		if secretFile != "" {
			if c.ClientSecret != "" {
				return errors.New("--oidc-client-secret and --oidc-client-secret-file exclude each other")
			}
			b, err := os.ReadFile(secretFile)
			if err != nil {
				return fmt.Errorf("--oidc-client-secret-file: %w", err)
			}
			c.ClientSecret = strings.TrimSpace(string(b))
		}
		var err error
		if c.RoleMap, err = openid.ParseRoleMap(roleMap); err != nil {
			return fmt.Errorf("--oidc-role-map: %w", err)
		}
		if c.Issuer == "" {
			return nil
		}
		switch {
		case c.ClientID == "":
			return errors.New("--oidc-issuer needs --oidc-client-id")
		case len(c.RoleMap) == 0:
			return errors.New("--oidc-issuer needs --oidc-role-map: without it nobody could sign in")
		case c.Recheck < time.Second:
			return errors.New("--oidc-recheck must be at least 1s")
		}
		return nil
	}
}

// redirectURL is the callback URL: the flag's, else under the public URL,
// else under the listen address (which must then have a port).
func (c OIDCConfig) redirectURL(publicURL, listen string) (string, error) {
	switch {
	case c.RedirectURL != "":
		return c.RedirectURL, nil
	case publicURL != "":
		return publicURL + callbackPath, nil
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil || port == "0" || port == "" {
		return "", errors.New("directory sign-in needs --oidc-redirect-url or --public-url when --http has no fixed port")
	}
	return "http://" + listen + callbackPath, nil
}

// openDirectory discovers the OpenID Provider, when one is configured, and
// returns the web UI's option for it.
func (m *Main) openDirectory(ctx context.Context) ([]webui.Option, error) {
	c := m.Config.OIDC
	if c.Issuer == "" {
		return nil, nil
	}
	redirect, err := c.redirectURL(m.Config.PublicURL, m.Config.HTTP)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := openid.New(dctx, openid.Config{Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		RedirectURL: redirect, RolesClaim: c.RolesClaim, RoleMap: c.RoleMap})
	if err != nil {
		return nil, err
	}
	base := m.Config.PublicURL
	if base == "" {
		base = strings.TrimSuffix(redirect, callbackPath)
	}
	m.Config.Logger.Info("directory sign-in", "issuer", c.Issuer, "client_id", c.ClientID, "redirect_url", redirect,
		"groups_mapped", len(c.RoleMap), "recheck", c.Recheck)
	return []webui.Option{webui.WithDirectory(p, c.Recheck, base)}, nil
}
