package webui_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/app/stack"
	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
	"github.com/iom-who/engagements/proofs"
	"github.com/iom-who/engagements/sessions"
	"github.com/iom-who/engagements/tokens"
	"github.com/iom-who/engagements/webui"
)

// testEnv is the web UI mounted in the API, as serve runs it: a real
// embedded nats-server on a temp dir, the token store, and the projector,
// command path, API and pages wired by stack.Start with opts.
type testEnv struct {
	*httptest.Server
	tokens *tokens.Store
	store  *eventstore.Store
	proj   *projections.Projector
	svc    *app.Service
	cals   *calendars.Store
	// key is the public key checkpoints are signed with, on ledger.
	key    ed25519.PublicKey
	ledger *proofs.Ledger
}

func newTestEnv(t *testing.T, opts ...webui.Option) *testEnv {
	t.Helper()
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open event store: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("close event store: %v", err)
		}
	})
	ts, err := tokens.Open(ctx, store, tokens.Config{})
	if err != nil {
		t.Fatalf("tokens: %v", err)
	}
	t.Cleanup(ts.Close)
	cals, err := calendars.Open(ctx, store.JetStream(), calendars.Config{})
	if err != nil {
		t.Fatalf("calendars: %v", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := proofs.OpenLedger(ctx, store.JetStream(), 1, false)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := proofs.Open(ctx, store, ledger, proofs.Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := sessions.Open(ctx, store.JetStream(), sessions.Config{})
	if err != nil {
		t.Fatalf("sessions: %v", err)
	}
	t.Cleanup(ss.Close)
	parts, err := stack.Start(stack.Config{Store: store, Tokens: ts, Calendars: cals, Sessions: ss, UI: true, UIOptions: opts, Proofs: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := parts.Close(); err != nil {
			t.Errorf("projector: %v", err)
		}
	})
	srv := httptest.NewServer(parts.API)
	t.Cleanup(srv.Close)
	t.Cleanup(parts.UI.Close) // runs before srv.Close: live streams end first
	return &testEnv{Server: srv, tokens: ts, store: store, proj: parts.Projector, svc: parts.Service, cals: cals,
		key: key.Public().(ed25519.PublicKey), ledger: ledger}
}

// token creates a token, as an admin would.
func (te *testEnv) token(t *testing.T, name string, role domain.Role) string {
	t.Helper()
	tok, _, err := te.tokens.Create(context.Background(), name, role)
	if err != nil {
		t.Fatalf("create token %s: %v", name, err)
	}
	return tok
}

// record stores an engagement through the command path, as recorder, and
// returns its id. on is its occurred_at date (YYYY-MM-DD).
func (te *testEnv) record(t *testing.T, on string, data map[string]any) string {
	t.Helper()
	r := te.exec(t, app.Command{Type: domain.EngagementRecorded, OccurredAt: date(t, on), Data: raw(t, data), Actor: "recorder"})
	return r.EngagementID
}

// append stores one event of engagement id through the command path.
func (te *testEnv) append(t *testing.T, id string, typ domain.EventType, on string, data map[string]any) {
	t.Helper()
	te.exec(t, app.Command{EngagementID: id, Type: typ, OccurredAt: date(t, on), Data: raw(t, data), Actor: "someone-else"})
}

func (te *testEnv) exec(t *testing.T, cmd app.Command) app.Result {
	t.Helper()
	r, err := te.svc.Execute(context.Background(), cmd)
	if err != nil {
		t.Fatalf("execute %s: %v", cmd.Type, err)
	}
	return r
}

func (te *testEnv) history(t *testing.T, id string) []domain.Event {
	t.Helper()
	h, err := te.proj.History(context.Background(), id, domain.Window{})
	if err != nil {
		t.Fatalf("no history for %s: %v", id, err)
	}
	return h
}

func date(t *testing.T, on string) time.Time {
	t.Helper()
	if on == "" {
		return time.Time{}
	}
	d, err := time.Parse(domain.DateLayout, on)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func raw(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// browser is one person's browser: it keeps cookies and does not follow
// redirects, so tests see each 303.
type browser struct {
	t      *testing.T
	env    *testEnv
	client *http.Client
	last   page
}

type page struct {
	status int
	header http.Header
	body   string
}

func (p page) location() string { return p.header.Get("Location") }

func (te *testEnv) browser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: t, env: te, client: c}
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	b.last = page{status: resp.StatusCode, header: resp.Header, body: string(body)}
	return b.last
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.env.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form as a browser does.
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.env.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// submit posts form with the CSRF token of the last page shown.
func (b *browser) submit(path string, form url.Values) page {
	b.t.Helper()
	form.Set("_csrf", hidden(b.t, b.last.body, "_csrf"))
	return b.post(path, form)
}

// login signs in with token through the sign-in form.
func (b *browser) login(token string) page {
	b.t.Helper()
	p := b.get("/login")
	if p.status != http.StatusOK {
		b.t.Fatalf("GET /login: %d", p.status)
	}
	return b.submit("/login", url.Values{"token": {token}, "next": {hidden(b.t, p.body, "next")}})
}

// mustLogin signs in and checks it worked.
func (b *browser) mustLogin(token string) {
	b.t.Helper()
	if p := b.login(token); p.status != http.StatusSeeOther {
		b.t.Fatalf("sign in: %d %s", p.status, p.body)
	}
	if p := b.get("/"); p.status != http.StatusOK {
		b.t.Fatalf("portfolio after sign-in: %d", p.status)
	}
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// hidden is the value of the first hidden field called name.
func hidden(t *testing.T, body, name string) string {
	t.Helper()
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		if m[1] == name {
			return m[2]
		}
	}
	t.Fatalf("no hidden field %q in page", name)
	return ""
}

var formTypeRE = regexp.MustCompile(`<input type="hidden" name="type" value="([^"]+)">`)

// offered lists the event types of the page's forms, corrections left out.
func offered(body string) []string {
	var out []string
	for _, m := range formTypeRE.FindAllStringSubmatch(body, -1) {
		if m[1] != string(domain.EngagementCorrected) && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

// text is the page with tags removed and spaces collapsed, for assertions
// about what a reader sees.
func text(body string) string {
	body = regexp.MustCompile(`(?s)<head>.*?</head>`).ReplaceAllString(body, "")
	body = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(body, " ")
	for _, r := range [][2]string{{"&#39;", "'"}, {"&quot;", `"`}, {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&#34;", `"`}} {
		body = strings.ReplaceAll(body, r[0], r[1])
	}
	return strings.Join(strings.Fields(body), " ")
}

// mustContain fails unless the page text holds each of want.
func mustContain(t *testing.T, p page, want ...string) {
	t.Helper()
	tx := text(p.body)
	for _, w := range want {
		if !strings.Contains(tx, w) {
			t.Errorf("page (%d) does not say %q:\n%s", p.status, w, tx)
		}
	}
}

func mustNotContain(t *testing.T, p page, unwanted ...string) {
	t.Helper()
	tx := text(p.body)
	for _, w := range unwanted {
		if strings.Contains(tx, w) {
			t.Errorf("page (%d) says %q but should not:\n%s", p.status, w, tx)
		}
	}
}

// state is the engagement's current state, as the projection has it.
func (te *testEnv) state(t *testing.T, id string) domain.View {
	t.Helper()
	e, err := te.proj.Get(context.Background(), id, domain.Window{})
	if err != nil {
		t.Fatalf("no engagement %s: %v", id, err)
	}
	return e.View()
}
