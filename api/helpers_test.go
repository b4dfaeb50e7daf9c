package api_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"github.com/iom-who/engagements/sessions"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/app/stack"
	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
	"github.com/iom-who/engagements/proofs"
	"github.com/iom-who/engagements/tokens"
	"github.com/iom-who/engagements/webhooks"
)

// testServer is the real API over a real embedded nats-server: store,
// projector, command path and HTTP server wired by stack.Start, as
// cmd/engagements wires them.
type testServer struct {
	*httptest.Server
	store *eventstore.Store
	proj  *projections.Projector
}

// newTestServer starts an embedded nats-server (no client port) on a temp
// dir, the projector and the API; t.Cleanup stops them in reverse order.
func newTestServer(t testing.TB) *testServer {
	t.Helper()
	return newTestServerWith(t, eventstore.Config{})
}

// newTestServerWith is newTestServer with store settings such as Sync; the
// data directory is always a fresh temp dir.
func newTestServerWith(t testing.TB, cfg eventstore.Config) *testServer {
	t.Helper()
	return buildServer(t, setup{store: cfg}).testServer
}

// setup says which optional parts a test server has.
type setup struct {
	store eventstore.Config
	// tokens turns authentication on, with an "admin" token.
	tokens bool
	// webhooks, when set, starts webhook delivery with these settings.
	webhooks *webhooks.Config
	// options are further api options.
	options []api.Option
	// maxDocument is the document size limit (0: the default).
	maxDocument int64
	// calendars serves calendar feeds; feedRate, when positive, limits
	// their fetches per client address (burst feedBurst) instead of the
	// default limit.
	calendars bool
	feedRate  float64
	feedBurst int
	// logger receives every part's logs (nil: discarded).
	logger *slog.Logger
	// proofs signs checkpoints with a new key (built.key) and serves them.
	proofs bool
	// sessions opens the web session bucket (so that admins may end
	// sessions through DELETE /v1/sessions).
	sessions bool
}

// built is a test server with its optional parts.
type built struct {
	*testServer
	api    *api.Server
	tokens *tokens.Store
	admin  string
	hooks  *webhooks.Manager
	cals   *calendars.Store
	// key signs the checkpoints when setup.proofs.
	key    ed25519.PrivateKey
	ledger *proofs.Ledger
}

// buildServer opens a store on a fresh temp dir with the optional parts and
// wires the rest with stack.Start, as cmd/engagements does; t.Cleanup stops
// them in reverse order.
func buildServer(t testing.TB, su setup) *built {
	t.Helper()
	ctx := context.Background()
	su.store.DataDir = t.TempDir()
	store, err := eventstore.Open(ctx, su.store)
	if err != nil {
		t.Fatalf("open event store: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("close event store: %v", err)
		}
	})
	b := &built{}
	cfg := stack.Config{Store: store, API: su.options, MaxDocumentSize: su.maxDocument, Logger: su.logger}
	if su.calendars {
		if b.cals, err = calendars.Open(ctx, store.JetStream(), calendars.Config{}); err != nil {
			t.Fatal(err)
		}
		cfg.Calendars = b.cals
		if su.feedRate > 0 {
			cfg.API = append(slices.Clone(cfg.API), api.WithCalendars(b.cals, su.feedRate, su.feedBurst))
		}
	}
	if su.tokens {
		if b.tokens, err = tokens.Open(ctx, store, tokens.Config{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.tokens.Close)
		if b.admin, _, err = b.tokens.Create(ctx, "admin", domain.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		cfg.Tokens = b.tokens
	}
	if su.webhooks != nil {
		if b.hooks, err = webhooks.Open(ctx, store, *su.webhooks); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.hooks.Close)
		cfg.Webhooks = b.hooks
	}
	if su.proofs {
		if _, b.key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			t.Fatal(err)
		}
		if b.ledger, err = proofs.OpenLedger(ctx, store.JetStream(), 1, false); err != nil {
			t.Fatal(err)
		}
		if cfg.Proofs, err = proofs.Open(ctx, store, b.ledger, proofs.Config{Key: b.key}); err != nil {
			t.Fatal(err)
		}
	}
	if su.sessions {
		if cfg.Sessions, err = sessions.Open(ctx, store.JetStream(), sessions.Config{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cfg.Sessions.Close)
	}
	parts, err := stack.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := parts.Close(); err != nil {
			t.Errorf("projector: %v", err)
		}
	})
	b.api = parts.API
	srv := httptest.NewUnstartedServer(b.api)
	srv.Config.MaxHeaderBytes = api.ReadHeaderBytes // as cmd/engagements serves it
	srv.Start()
	t.Cleanup(srv.Close)
	b.testServer = &testServer{Server: srv, store: store, proj: parts.Projector}
	return b
}

// response is what came back, body read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, r.body)
}

// newRequest builds a request to path. A non-empty body is sent as
// application/json unless header (name, value pairs) sets another
// Content-Type.
func (ts *testServer) newRequest(method, path string, body io.Reader, header ...string) (*http.Request, error) {
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req, nil
}

// send performs req and reads the whole response. It is safe to call from
// any goroutine.
func (ts *testServer) send(req *http.Request) (response, error) {
	resp, err := ts.Client().Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// do sends method path with body (none when empty); it does not fail the
// test, so goroutines may call it.
func (ts *testServer) do(method, path, body string, header ...string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := ts.newRequest(method, path, rd, header...)
	if err != nil {
		return response{}, err
	}
	return ts.send(req)
}

// request is do that fails the test on a transport error.
func (ts *testServer) request(t testing.TB, method, path, body string, header ...string) response {
	t.Helper()
	r, err := ts.do(method, path, body, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (ts *testServer) get(t testing.TB, path string, header ...string) response {
	t.Helper()
	return ts.request(t, http.MethodGet, path, "", header...)
}

func (ts *testServer) post(t testing.TB, path, body string, header ...string) response {
	t.Helper()
	return ts.request(t, http.MethodPost, path, body, header...)
}

// engagement is the state GET /v1/engagements/{id} returns.
type engagement struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Title      string    `json:"title"`
	Parties    []string  `json:"parties"`
	Tags       []string  `json:"tags"`
	Links      []link    `json:"links"`
	Status     string    `json:"status"`
	Version    int       `json:"version"`
	Instrument string    `json:"instrument"`
	SignedOn   string    `json:"signed_on"`
	RenewedOn  string    `json:"renewed_on"`
	ExpiresOn  string    `json:"expires_on"`
	Role       string    `json:"role"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

type link struct {
	TargetID string `json:"target_id"`
	Relation string `json:"relation"`
}

// appended is the answer to POST /v1/engagements/{id}/events.
type appended struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Sequence uint64 `json:"sequence"`
	Version  int    `json:"version"`
}

// event is one entry of GET /v1/engagements/{id}/history.
type event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Sequence   uint64          `json:"sequence"`
	Version    int             `json:"version"`
	OccurredAt time.Time       `json:"occurred_at"`
	RecordedAt time.Time       `json:"recorded_at"`
	Actor      string          `json:"actor"`
	Data       json.RawMessage `json:"data"`
	Hash       string          `json:"hash"`
	// Personal lists the personal fields, opened or erased.
	Personal []domain.PersonalField `json:"personal"`
}

type page struct {
	Items      []engagement `json:"items"`
	NextCursor *string      `json:"next_cursor"`
}

// decode unmarshals a JSON response body, failing the test if it is not
// application/json or does not decode.
func decode[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if mt := mediaType(r.header); mt != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; response %s", r.header.Get("Content-Type"), r)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T: %v; response %s", v, err, r)
	}
	return v
}

func mediaType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt
}

// keys are the member names of a JSON object body.
func keys(t testing.TB, body []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, body)
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// hasKeys fails unless the JSON object body has every one of want.
func hasKeys(t testing.TB, body []byte, want ...string) {
	t.Helper()
	got := keys(t, body)
	for _, k := range want {
		if !slices.Contains(got, k) {
			t.Errorf("body lacks %q (has %v): %s", k, got, body)
		}
	}
}

// create records an engagement and returns its id; anything but 201 fails.
func (ts *testServer) create(t testing.TB, body string, header ...string) string {
	t.Helper()
	r := ts.post(t, "/v1/engagements", body, header...)
	if r.status != http.StatusCreated {
		t.Fatalf("create %s: %s", body, r)
	}
	return decode[engagement](t, r).ID
}

// appendEvent appends an event and returns the answer; anything but 201 fails.
func (ts *testServer) appendEvent(t testing.TB, id, body string, header ...string) appended {
	t.Helper()
	r := ts.post(t, "/v1/engagements/"+id+"/events", body, header...)
	if r.status != http.StatusCreated {
		t.Fatalf("append %s to %s: %s", body, id, r)
	}
	return decode[appended](t, r)
}

// state reads the current state; anything but 200 fails.
func (ts *testServer) state(t testing.TB, id string) engagement {
	t.Helper()
	r := ts.get(t, "/v1/engagements/"+id)
	if r.status != http.StatusOK {
		t.Fatalf("get %s: %s", id, r)
	}
	return decode[engagement](t, r)
}

// history reads an engagement's events; anything but 200 fails.
func (ts *testServer) history(t testing.TB, id string) []event {
	t.Helper()
	r := ts.get(t, "/v1/engagements/"+id+"/history")
	if r.status != http.StatusOK {
		t.Fatalf("history %s: %s", id, r)
	}
	return decode[struct {
		Events []event `json:"events"`
	}](t, r).Events
}

// lastSequence is the stream's last sequence: what the store really holds.
func (ts *testServer) lastSequence(t testing.TB) uint64 {
	t.Helper()
	seq, err := ts.store.LastSequence(context.Background())
	if err != nil {
		t.Fatalf("last sequence: %v", err)
	}
	return seq
}

// agreement is the body that records a draft agreement between IOM and WHO.
func agreement(title string) string {
	return fmt.Sprintf(`{"kind":"agreement","title":%q,"parties":["IOM","WHO"]}`, title)
}

// note is an engagement.noted event body.
func note(text string) string {
	return fmt.Sprintf(`{"type":"engagement.noted","data":{"note":%q}}`, text)
}

const signed = `{"type":"agreement.signed","data":{"signed_on":"2020-01-15"}}`

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func etag(version int) string { return fmt.Sprintf("%q", fmt.Sprint(version)) }
