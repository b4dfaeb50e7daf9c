package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// opsClient sends requests to one Main with its admin token, on its own
// transport so that its idle connections can be closed (goleak).
type opsClient struct {
	base, token string
	http        *http.Client
}

func newOpsClient(t *testing.T, m *Main) *opsClient {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.Config.DataDir, "admin.token"))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	c := &opsClient{base: m.URL(), token: strings.TrimSpace(string(b)),
		http: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}}
	t.Cleanup(c.http.CloseIdleConnections)
	return c
}

// opsReply is one HTTP answer: status, headers and body.
type opsReply struct {
	status int
	header http.Header
	body   []byte
}

func (r opsReply) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// decode unmarshals the body into v.
func (r opsReply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends one request; headers are name, value pairs. A transport error is
// returned as such (the server may be gone).
func (c *opsClient) do(method, path, body string, headers ...string) (opsReply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return opsReply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return opsReply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return opsReply{}, err
	}
	return opsReply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// must is do for requests that have to reach the server.
func (c *opsClient) must(t *testing.T, method, path, body string, headers ...string) opsReply {
	t.Helper()
	r, err := c.do(method, path, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// logEvents reads the whole global log, page by page.
func (c *opsClient) logEvents(t *testing.T) []opsEvent {
	t.Helper()
	var all []opsEvent
	after := uint64(0)
	for {
		r := c.must(t, http.MethodGet, fmt.Sprintf("/v1/events?after=%d&limit=7", after), "")
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/events: %s", r)
		}
		var page struct {
			Events    []opsEvent `json:"events"`
			NextAfter uint64     `json:"next_after"`
		}
		r.decode(t, &page)
		if len(page.Events) == 0 {
			return all
		}
		all = append(all, page.Events...)
		after = page.NextAfter
	}
}

type opsEvent struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	EngagementID string `json:"engagement_id"`
	Sequence     uint64 `json:"sequence"`
	Version      int    `json:"version"`
}

// opsNATS is an external nats-server that can be stopped and started
// again on the same port and store directory.
type opsNATS struct {
	t    *testing.T
	opts server.Options
	ns   *server.Server
}

func startOpsNATS(t *testing.T) *opsNATS {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &opsNATS{t: t, opts: server.Options{ServerName: "outage", Host: "127.0.0.1", Port: port,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true, SyncAlways: true}}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *opsNATS) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port) }

func (s *opsNATS) start() {
	s.t.Helper()
	opts := s.opts // NewServer keeps and changes its options
	ns, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("nats server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		s.t.Fatal("nats server not ready")
	}
	s.ns = ns
}

func (s *opsNATS) stop() {
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.ns = nil
	}
}

// startOpsMain starts a Main against an external NATS server and closes it
// at the end of the test.
func startOpsMain(t *testing.T, natsURL string) *Main {
	t.Helper()
	m := &Main{Config: Config{NATSURL: natsURL, DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Sync: "always", Replicas: 1}}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m
}

// opsWriter records engagements and their events and remembers every
// acknowledged event id.
type opsWriter struct {
	c     *opsClient
	acked map[string]bool // event id → acknowledged
}

func (w *opsWriter) record(t *testing.T, title string) (id string) {
	t.Helper()
	r := w.c.must(t, http.MethodPost, "/v1/engagements",
		`{"kind":"initiative","title":"`+title+`","parties":["IOM","WHO"]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("record %s: %s", title, r)
	}
	var e struct{ ID string }
	r.decode(t, &e)
	// The recorded event's id is the first of the engagement's history.
	var h struct{ Events []opsEvent }
	w.c.must(t, http.MethodGet, "/v1/engagements/"+e.ID+"/history", "").decode(t, &h)
	if len(h.Events) != 1 {
		t.Fatalf("history of a new engagement: %d events", len(h.Events))
	}
	w.acked[h.Events[0].ID] = true
	return e.ID
}

func (w *opsWriter) note(t *testing.T, id, note string) {
	t.Helper()
	r := w.c.must(t, http.MethodPost, "/v1/engagements/"+id+"/events",
		`{"type":"engagement.noted","data":{"note":"`+note+`"}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("note %s: %s", note, r)
	}
	var ev opsEvent
	r.decode(t, &ev)
	w.acked[ev.ID] = true
}

func TestNATSOutageRefusesWritesServesReadsAndRecovers(t *testing.T) {
	nats := startOpsNATS(t)
	m := startOpsMain(t, nats.url())
	c := newOpsClient(t, m)
	w := &opsWriter{c: c, acked: map[string]bool{}}

	var ids []string
	for i := range 3 {
		id := w.record(t, fmt.Sprintf("Before the outage %d", i))
		w.note(t, id, "first note")
		ids = append(ids, id)
	}
	before := map[string]string{}
	for _, id := range ids {
		before[id] = string(c.must(t, http.MethodGet, "/v1/engagements/"+id, "").body)
	}
	stored, err := m.Store.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// A web session opened before the outage.
	cookie := webSignIn(t, m.URL(), c.token)

	nats.stop()

	// Once the service has noticed (the first readyz), writes must be
	// refused at once and never sent.
	t.Run("readyz is 503", func(t *testing.T) {
		var r opsReply
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			start := time.Now()
			r = c.must(t, http.MethodGet, "/readyz", "")
			t.Logf("readyz while NATS is down: %d after %v", r.status, time.Since(start).Round(time.Millisecond))
			if r.status != http.StatusOK {
				break
			}
		}
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("readyz: %s %v, want 503 with Retry-After", r, r.header)
		}
	})

	// Writes refused during the outage, retried with the same key after it.
	refused := []struct{ path, body, key string }{
		{"/v1/engagements", `{"kind":"initiative","title":"During the outage","parties":["IOM"]}`, "outage-record"},
		{"/v1/engagements/" + ids[0] + "/events", `{"type":"engagement.noted","data":{"note":"refused"}}`, "outage-note"},
	}
	t.Run("writes are refused with 503 and Retry-After", func(t *testing.T) {
		for _, req := range refused {
			start := time.Now()
			r := c.must(t, http.MethodPost, req.path, req.body, "Idempotency-Key", req.key)
			took := time.Since(start)
			t.Logf("POST %s while NATS is down: %d after %v", req.path, r.status, took.Round(time.Millisecond))
			if r.status != http.StatusServiceUnavailable {
				t.Errorf("POST %s: %s, want 503", req.path, r)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("POST %s: Content-Type %q, want application/problem+json", req.path, ct)
			}
			if r.header.Get("Retry-After") == "" {
				t.Errorf("POST %s: no Retry-After", req.path)
			}
		}
	})
	t.Run("pages answer 503 at once: the session cannot be checked", func(t *testing.T) {
		start := time.Now()
		got := portfolioStatus(t, m.URL(), cookie)
		took := time.Since(start)
		t.Logf("GET / while NATS is down: %d after %v", got, took.Round(time.Millisecond))
		if got != http.StatusServiceUnavailable || took > 2*time.Second {
			t.Errorf("GET / with a session: %d after %v, want 503 at once", got, took)
		}
	})
	t.Run("reads serve the state from before", func(t *testing.T) {
		for _, id := range ids {
			r := c.must(t, http.MethodGet, "/v1/engagements/"+id, "")
			if r.status != http.StatusOK || string(r.body) != before[id] {
				t.Errorf("GET %s: %s, want 200 %s", id, r, before[id])
			}
		}
		var l struct{ Items []struct{ ID string } }
		r := c.must(t, http.MethodGet, "/v1/engagements?limit=100", "")
		if r.status != http.StatusOK {
			t.Fatalf("list: %s", r)
		}
		r.decode(t, &l)
		if len(l.Items) != len(ids) {
			t.Errorf("list: %d engagements, want %d", len(l.Items), len(ids))
		}
	})

	start := time.Now()
	nats.start()
	var ready opsReply
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ready = c.must(t, http.MethodGet, "/readyz", ""); ready.status == http.StatusOK {
			break
		}
	}
	if ready.status != http.StatusOK {
		t.Fatalf("readyz after NATS came back: %s, want 200", ready)
	}
	t.Logf("ready again %v after NATS restarted", time.Since(start).Round(time.Millisecond))
	if got := portfolioStatus(t, m.URL(), cookie); got != http.StatusOK {
		t.Errorf("GET / with the session from before the outage: %d, want 200 (still signed in)", got)
	}

	// Refused while disconnected means not sent: nothing was stored late,
	// after the reconnect.
	if last, err := m.Store.LastSequence(context.Background()); err != nil || last != stored {
		t.Errorf("stream after the outage: last sequence %d (%v), want %d: a refused write was stored", last, err, stored)
	}
	// A 503 leaves the outcome to a retry with the same Idempotency-Key:
	// each refused write is now stored, once.
	for _, req := range refused {
		r := c.must(t, http.MethodPost, req.path, req.body, "Idempotency-Key", req.key)
		if r.status != http.StatusCreated {
			t.Fatalf("retry of POST %s after the outage: %s, want 201", req.path, r)
		}
		var v struct{ ID string }
		r.decode(t, &v)
		if req.key == "outage-record" {
			var h struct{ Events []opsEvent }
			c.must(t, http.MethodGet, "/v1/engagements/"+v.ID+"/history", "").decode(t, &h)
			v.ID = h.Events[0].ID
		}
		w.acked[v.ID] = true
	}

	// Writes succeed again, on old and new engagements, and are visible.
	for _, id := range ids {
		w.note(t, id, "after the outage")
	}
	fresh := w.record(t, "After the outage")
	w.note(t, fresh, "second note")
	for _, id := range append(ids, fresh) {
		var e struct{ Version int }
		r := c.must(t, http.MethodGet, "/v1/engagements/"+id, "")
		r.decode(t, &e)
		want := 3 // recorded, noted before, noted after
		switch id {
		case fresh:
			want = 2
		case ids[0]:
			want = 4 // and the note refused during the outage, retried
		}
		if r.status != http.StatusOK || e.Version != want {
			t.Errorf("GET %s after the outage: %s, want version %d", id, r, want)
		}
	}

	// The projector resumed where it stopped: the global log holds every
	// acknowledged event exactly once, in gapless stream order, and nothing
	// else.
	log := c.logEvents(t)
	seen := map[string]int{}
	for i, ev := range log {
		seen[ev.ID]++
		if ev.Sequence != uint64(i+1) {
			t.Errorf("log[%d] has sequence %d, want %d (gap or repeat)", i, ev.Sequence, i+1)
		}
	}
	for id := range w.acked {
		if seen[id] != 1 {
			t.Errorf("acknowledged event %s is in the log %d times, want once", id, seen[id])
		}
	}
	for id, n := range seen {
		if !w.acked[id] {
			t.Errorf("event %s is in the log but was never acknowledged", id)
		}
		if n != 1 {
			t.Errorf("event %s is in the log %d times", id, n)
		}
	}
	last, err := m.Store.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(log)) != last {
		t.Errorf("log has %d events, stream %d", len(log), last)
	}
}
