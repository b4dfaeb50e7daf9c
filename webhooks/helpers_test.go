package webhooks_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/webhooks"
	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: delivery
// workers, watches, HTTP connections and servers must all stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quick is a delivery setting for tests: few attempts, short backoff.
var quick = webhooks.Config{MaxAttempts: 3, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond}

// newStore starts an embedded nats-server on a temp dir; the store closes
// when the test ends (after the managers, whose cleanups run first).
func newStore(t *testing.T) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// open starts a manager on store; it closes when the test ends (Close may
// also be called earlier).
func open(t *testing.T, store *eventstore.Store, cfg webhooks.Config) *webhooks.Manager {
	t.Helper()
	m, err := webhooks.Open(context.Background(), store, cfg)
	if err != nil {
		t.Fatalf("open webhooks: %v", err)
	}
	t.Cleanup(m.Close)
	return m
}

// newSecret is a fresh "whsec_" secret and its key.
func newSecret(t testing.TB) (string, []byte) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return webhooks.SecretPrefix + base64.StdEncoding.EncodeToString(key), key
}

// delivery is one request a receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// id is the CloudEvent id in the body.
func (d delivery) id(t *testing.T) string {
	t.Helper()
	var ce struct{ ID, Type string }
	if err := json.Unmarshal(d.body, &ce); err != nil {
		t.Fatalf("delivered body is not JSON: %v: %s", err, d.body)
	}
	return ce.ID
}

// receiver is a subscriber's endpoint: it passes every request on a channel
// and answers with what status(n) says for the n-th request (1-based).
type receiver struct {
	*httptest.Server
	got chan delivery

	mu sync.Mutex
	n  int
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	t.Helper()
	r := &receiver{got: make(chan delivery, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.n++
		n := r.n
		r.mu.Unlock()
		r.got <- delivery{header: req.Header.Clone(), body: body}
		w.WriteHeader(status(n))
	}))
	t.Cleanup(r.Close)
	return r
}

func always(status int) func(int) int { return func(int) int { return status } }

// next waits for the receiver's next request (bounded, so a broken
// delivery fails the test instead of hanging it).
func (r *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery arrived")
		return delivery{}
	}
}

// appended is one event written to the stream.
type appended struct {
	id      string
	seq     uint64
	payload []byte // as stored
}

// record appends an engagement.recorded event for a new agreement and
// returns its id, sequence and the payload exactly as the stream holds it.
func record(t testing.TB, store *eventstore.Store, title string) appended {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	ev := domain.Event{
		ID: uuid.Must(uuid.NewV7()).String(), Type: domain.EngagementRecorded,
		EngagementID: uuid.Must(uuid.NewV7()).String(), Kind: domain.KindAgreement, Version: 1,
		OccurredAt: now, RecordedAt: now, Actor: "test",
		Data: json.RawMessage(`{"kind":"agreement","title":` + mustJSON(title) + `,"parties":["IOM","WHO"]}`),
	}
	seq, _, err := store.Append(ctx, ev, 0)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	stream, err := store.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	return appended{id: ev.ID, seq: seq, payload: msg.Data}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// subscribe creates a subscription for every event type to url.
func subscribe(t *testing.T, m *webhooks.Manager, url, secret string, from uint64) webhooks.Subscription {
	t.Helper()
	sub, err := m.Create(context.Background(), "crm-sync", webhooks.Request{
		URL: url, Types: []string{"engagement.*", "agreement.*"}, Secret: secret, FromSequence: from})
	if err != nil {
		t.Fatalf("create subscription: %v", err)
	}
	return sub
}

// waitFailures polls (bounded) until subscription id has n failures.
func waitFailures(t *testing.T, m *webhooks.Manager, id string, n int) []webhooks.Failure {
	t.Helper()
	for i := 0; ; i++ {
		f, err := m.Failures(context.Background(), id)
		if err != nil {
			t.Fatalf("failures: %v", err)
		}
		if len(f) >= n {
			return f
		}
		if i == 1000 {
			t.Fatalf("%d failures, want %d", len(f), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitABit is the pause between two polls of a bounded wait.
func waitABit() { time.Sleep(10 * time.Millisecond) }

// waitSettled polls (bounded) until subscription id's consumer has
// acknowledged everything up to stream sequence seq.
func waitSettled(t *testing.T, store *eventstore.Store, id string, seq uint64) {
	t.Helper()
	ctx := context.Background()
	stream, err := store.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		cons, err := stream.Consumer(ctx, "webhook-"+id)
		if err != nil {
			t.Fatal(err)
		}
		if cons.CachedInfo().AckFloor.Stream >= seq {
			return
		}
		if i == 1000 {
			t.Fatalf("sequence %d not acknowledged: %+v", seq, cons.CachedInfo().AckFloor)
		}
		waitABit()
	}
}
