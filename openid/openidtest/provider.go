// Package openidtest starts a real OpenID Provider in process for tests
// and local trials (examples/oidc-provider):
// zitadel's certified OP (github.com/zitadel/oidc/v3/pkg/op) with the
// in-memory storage and login page of its example server, plus a groups
// claim per user that a test can change while the provider runs. Only
// tests and the example import it: it is no directory for production.
package openidtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Password is every test user's password.
const Password = "verysecure"

// User is a person in the test directory.
type User struct {
	ID, Username, Email string
	EmailVerified       bool
	Groups              []string
}

// Provider is a running OpenID Provider.
type Provider struct {
	// Issuer is its issuer URL (http://127.0.0.1:<port>).
	Issuer string

	srv     *httptest.Server
	store   *directory
	clients map[string]*storage.Client
}

// Start starts a provider with these users; it stops when the test ends.
func Start(t testing.TB, users ...User) *Provider {
	t.Helper()
	p, err := New("127.0.0.1:0", users...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// New starts a provider with these users listening on addr (its issuer is
// http://<addr>); Close stops it.
func New(addr string, users ...User) (*Provider, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	issuer := "http://" + ln.Addr().String()
	us := userStore{users: map[string]*storage.User{}}
	d := &directory{groups: map[string][]string{}, redirects: map[string][]string{}}
	for _, u := range users {
		us.users[u.ID] = &storage.User{ID: u.ID, Username: u.Username, Password: Password, FirstName: u.Username,
			LastName: "Test", Email: u.Email, EmailVerified: u.EmailVerified, PreferredLanguage: language.English}
		d.groups[u.ID] = slices.Clone(u.Groups)
	}
	clients := map[string]*storage.Client{}
	d.Storage = storage.NewStorageWithClients(us, clients)
	oidcHandler := exampleop.SetupServer(issuer, d, nil, false)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" { // the login page has none; a browser asks
			w.WriteHeader(http.StatusNoContent)
			return
		}
		oidcHandler.ServeHTTP(w, r)
	}))
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	return &Provider{Issuer: issuer, srv: srv, store: d, clients: clients}, nil
}

// Close stops the provider.
func (p *Provider) Close() { p.srv.Close() }

// AddClient registers a confidential web client of the service at each
// base URL: the provider may send browsers back to <base>/login/oidc/callback
// and, after signing out, to <base>/login?signed_out=1.
func (p *Provider) AddClient(id, secret string, bases ...string) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	var back, out []string
	for _, b := range bases {
		back = append(back, b+"/login/oidc/callback")
		out = append(out, b+"/login?signed_out=1")
	}
	p.clients[id] = storage.WebClient(id, secret, back...)
	p.store.redirects[id] = out
}

// SetGroups changes a user's groups from now on (the next token the
// provider issues carries them).
func (p *Provider) SetGroups(userID string, groups ...string) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.groups[userID] = groups
}

// directory is the example storage with a groups claim and registrable
// post-logout redirects.
type directory struct {
	*storage.Storage

	mu        sync.Mutex
	groups    map[string][]string // by user id
	redirects map[string][]string // post-logout, by client id
}

func (d *directory) groupsOf(userID string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.groups[userID])
}

// SetUserinfoFromRequest adds the groups claim to ID tokens.
func (d *directory) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := d.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	info.AppendClaims("groups", d.groupsOf(req.GetSubject()))
	return nil
}

// SetUserinfoFromToken adds it to the userinfo response.
func (d *directory) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := d.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	info.AppendClaims("groups", d.groupsOf(subject))
	return nil
}

// GetClientByClientID lets a client's registered post-logout redirect be
// used (the example's web clients have none).
func (d *directory) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := d.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return logoutClient{Client: c, postLogout: d.redirects[id]}, nil
}

type logoutClient struct {
	op.Client
	postLogout []string
}

func (c logoutClient) PostLogoutRedirectURIs() []string { return c.postLogout }

// userStore is the example's user store interface over a map.
type userStore struct{ users map[string]*storage.User }

func (s userStore) GetUserByID(id string) *storage.User { return s.users[id] }

func (s userStore) GetUserByUsername(name string) *storage.User {
	for _, u := range s.users {
		if u.Username == name {
			return u
		}
	}
	return nil
}

func (s userStore) ExampleClientID() string { return "service" }

// Client is an HTTP client for the provider's pages that signs in the way a
// browser does (the login form), stopping at any redirect that leaves the
// provider, so the caller sees where the provider sends the browser back.
func (p *Provider) Client(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if "http://"+req.URL.Host != p.Issuer {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// Tampered returns authURL with its query changed by tamper (an attacker
// editing the authorization request); authURL itself when tamper is nil.
func Tampered(authURL string, tamper func(url.Values)) string {
	if tamper == nil {
		return authURL
	}
	u, err := url.Parse(authURL)
	if err != nil {
		return authURL
	}
	q := u.Query()
	tamper(q)
	u.RawQuery = q.Encode()
	return u.String()
}

// SignIn follows authURL (this service's redirect to the provider) as a
// browser would, signs in as username on the provider's login page and
// returns where the provider then sends the browser: the callback URL with
// code and state.
func (p *Provider) SignIn(ctx context.Context, authURL, username string) (*url.URL, error) {
	jar, _ := cookiejar.New(nil)
	c := p.Client(jar)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != http.StatusOK || id == "" {
		return nil, fmt.Errorf("the provider's login page: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	form := url.Values{"id": {id}, "username": {username}, "password": {Password}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+"/login/username", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || resp.StatusCode/100 != 3 {
		return nil, fmt.Errorf("the provider did not send the browser back: %d (%v)", resp.StatusCode, err)
	}
	return loc, nil
}
