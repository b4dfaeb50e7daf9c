package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// Names on NATS of this package's own. The event stream and its subjects
// are eventstore's.
const (
	// Bucket is the JetStream KV bucket of subscriptions.
	Bucket = "ENGAGEMENTS_WEBHOOKS"
	// FailureStream keeps each subscription's dead letters.
	FailureStream = "ENGAGEMENTS_WEBHOOK_FAILURES"

	failureRoot    = "engagements-webhook-failures"
	consumerPrefix = "webhook-"
)

// Source is what the manager needs from the event store;
// eventstore.Store is one.
type Source interface {
	// JetStream is the connection to keep the bucket and the failure
	// stream on.
	JetStream() jetstream.JetStream
	// LastSequence is the event stream's last sequence.
	LastSequence(ctx context.Context) (uint64, error)
	// CreateDurable, Durable and DeleteDurable manage and bind each
	// subscription's durable consumer of the event stream, which hands
	// out decoded, hash-checked events one at a time.
	CreateDurable(ctx context.Context, name string, cfg eventstore.DurableConfig) error
	Durable(ctx context.Context, name string) (*eventstore.Durable, error)
	DeleteDurable(ctx context.Context, name string) error
}

// Config tunes delivery. The zero value is the production setting.
type Config struct {
	// Replicas of the bucket, the failure stream and the consumers; 0 means 1.
	Replicas int
	// MaxAttempts is how often an event is POSTed before it becomes a
	// failure; 0 means 8.
	MaxAttempts int
	// BackoffBase is the wait after the first failed attempt, doubled after
	// each one up to BackoffMax, with jitter; 0 means 1 s and 1 min.
	BackoffBase, BackoffMax time.Duration
	// Timeout bounds each attempt; 0 means 5 s.
	Timeout time.Duration
	// MaxFailures is how many dead letters are kept per subscription (the
	// oldest go first); 0 means 1000.
	MaxFailures int
	// MaxPerOwner bounds each token's subscriptions; 0 means 100.
	MaxPerOwner int
	// AllowLinkLocal lets endpoints resolve to link-local and metadata
	// addresses (169.254.0.0/16, fe80::/10), refused by default.
	AllowLinkLocal bool
	// Logger receives deliveries (debug) and failures (warn), never secrets.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Replicas = max(c.Replicas, 1)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = time.Minute
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffBase)
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 1000
	}
	if c.MaxPerOwner <= 0 {
		c.MaxPerOwner = 100
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// stored is a subscription as kept in KV, with its secret: an HMAC key must
// be kept as it is to sign with it. The bucket is not reachable through the
// API, and the secret is never shown or logged.
type stored struct {
	Subscription
	Secret string `json:"secret"`
}

// Manager keeps the subscriptions and delivers their events. Every instance
// runs one; they share the bucket, and the durable consumers share the work.
type Manager struct {
	cfg      Config
	src      Source
	log      *slog.Logger
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	failures jetstream.Stream
	client   *http.Client
	resolver *net.Resolver

	mu      sync.Mutex
	subs    map[string]stored
	workers map[string]*worker
	// gone holds deleted ids (UUIDv7s are never reused), so that the
	// watch's late echo of a subscription's creation cannot revive it.
	gone map[string]bool

	ctx    context.Context // ends at Close; every worker's parent
	cancel context.CancelFunc
	wg     sync.WaitGroup // the watch and every worker

	delivered, attemptsFailed, failed atomic.Uint64
}

// Stats counts this instance's deliveries since it started.
type Stats struct {
	Delivered      uint64 // events a subscriber acknowledged with a 2xx
	AttemptsFailed uint64 // attempts that got no 2xx (each retry counts)
	Failed         uint64 // events given up on and recorded as failures
}

// Stats returns this instance's delivery counters.
func (m *Manager) Stats() Stats {
	return Stats{Delivered: m.delivered.Load(), AttemptsFailed: m.attemptsFailed.Load(), Failed: m.failed.Load()}
}

// worker is one subscription's delivery goroutine.
type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Open opens (creating if needed) the bucket and the failure stream, and
// starts delivering every subscription; a watch on the bucket starts and
// stops deliveries as subscriptions come and go on any instance. Call Close
// before closing the store.
func Open(ctx context.Context, src Source, cfg Config) (*Manager, error) {
	cfg = cfg.withDefaults()
	js := src.JetStream()
	m := &Manager{cfg: cfg, src: src, js: js, log: cfg.Logger, client: newClient(cfg), resolver: net.DefaultResolver,
		subs: make(map[string]stored), workers: make(map[string]*worker), gone: make(map[string]bool)}
	var err error
	m.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "Webhook subscriptions", History: 1,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: bucket: %w", eventstore.Unavailable(err))
	}
	m.failures, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              FailureStream,
		Description:       "Webhook deliveries that failed every attempt, per subscription",
		Subjects:          []string{failureRoot + ".>"},
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		MaxMsgsPerSubject: int64(cfg.MaxFailures),
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: failure stream: %w", eventstore.Unavailable(err))
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	w, err := m.kv.WatchAll(m.ctx)
	if err != nil {
		m.cancel()
		return nil, fmt.Errorf("webhooks: watch subscriptions: %w", eventstore.Unavailable(err))
	}
	// The watch first replays every current value, then a nil marks the end.
	for u := range w.Updates() {
		if u == nil {
			break
		}
		m.apply(u)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-m.ctx.Done():
				return
			case u, ok := <-w.Updates():
				if !ok {
					return
				}
				if u != nil {
					m.apply(u)
				}
			}
		}
	}()
	return m, nil
}

// apply brings the local copy and the workers in line with one bucket entry.
func (m *Manager) apply(u jetstream.KeyValueEntry) {
	if u.Operation() != jetstream.KeyValuePut {
		m.forget(u.Key())
		return
	}
	var st stored
	if err := json.Unmarshal(u.Value(), &st); err != nil {
		m.log.Warn("webhook subscription does not decode; not delivering it", "key", u.Key(), "err", err)
		return
	}
	m.remember(st)
}

// remember keeps st and starts its worker unless one runs.
func (m *Manager) remember(st stored) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone[st.ID] {
		return
	}
	m.subs[st.ID] = st
	if _, ok := m.workers[st.ID]; ok || m.ctx.Err() != nil {
		return
	}
	key, msg := decodeSecret(st.Secret)
	if msg != "" {
		m.log.Warn("webhook subscription has no usable secret; not delivering it", "subscription", st.ID)
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	w := &worker{cancel: cancel, done: make(chan struct{})}
	m.workers[st.ID] = w
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(w.done)
		m.deliver(ctx, st, key)
	}()
}

// forget drops subscription id and stops its worker, waiting for it.
func (m *Manager) forget(id string) {
	m.mu.Lock()
	delete(m.subs, id)
	m.gone[id] = true
	w := m.workers[id]
	delete(m.workers, id)
	m.mu.Unlock()
	if w != nil {
		w.cancel()
		<-w.done
	}
}

// Close stops the watch and every delivery (an event being delivered is
// handed back to JetStream, to be delivered again) and waits for them.
func (m *Manager) Close() {
	m.mu.Lock() // remember checks m.ctx under mu before it adds a worker
	m.cancel()
	m.mu.Unlock()
	m.wg.Wait()
	m.client.CloseIdleConnections()
}

// Create validates req, makes the subscription's durable consumer and
// stores the subscription for owner. It receives the events appended after
// now, or, with req.FromSequence, those from that sequence on.
func (m *Manager) Create(ctx context.Context, owner string, req Request) (Subscription, error) {
	types, err := checkRequest(ctx, req, m.cfg.AllowLinkLocal, m.resolver)
	if err != nil {
		return Subscription{}, err
	}
	if n := len(m.List(owner)); n >= m.cfg.MaxPerOwner {
		return Subscription{}, fmt.Errorf("%w: %s has %d", ErrTooMany, owner, n)
	}
	last, err := m.src.LastSequence(ctx)
	if err != nil {
		return Subscription{}, err
	}
	next := last + 1
	from := next
	if req.FromSequence > 0 {
		if req.FromSequence > next {
			return Subscription{}, &domain.ValidationError{Fields: []domain.FieldError{{Field: "from_sequence",
				Message: fmt.Sprintf("must be at most %d, the stream's next sequence", next)}}}
		}
		from = req.FromSequence
	}
	st := stored{
		Subscription: Subscription{
			ID: uuid.Must(uuid.NewV7()).String(), Owner: owner, URL: req.URL,
			Types: slices.Clone(req.Types), FromSequence: from, SecretSet: true, CreatedAt: time.Now().UTC(),
		},
		Secret: req.Secret,
	}
	// The consumer first: once the subscription is in the bucket, any
	// instance may start delivering it.
	err = m.src.CreateDurable(ctx, consumerName(st.ID), eventstore.DurableConfig{
		Description: "webhook subscription " + st.ID,
		Selection:   domain.Selection{Types: types},
		From:        from,
		// A delivery in progress says so before each attempt and while it
		// backs off, so only an instance that went away loses the event
		// to another, after AckWait.
		AckWait:  m.ackWait(),
		Replicas: m.cfg.Replicas,
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("webhook consumer: %w", err)
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return Subscription{}, err
	}
	if _, err := m.kv.Create(ctx, st.ID, raw); err != nil {
		m.deleteConsumer(st.ID)
		return Subscription{}, fmt.Errorf("store webhook subscription: %w", eventstore.Unavailable(err))
	}
	m.remember(st)
	return st.Subscription, nil
}

// List returns owner's subscriptions (every one when owner is ""), oldest
// first.
func (m *Manager) List(owner string) []Subscription {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Subscription, 0, len(m.subs))
	for _, st := range m.subs {
		if owner == "" || st.Owner == owner {
			out = append(out, st.Subscription)
		}
	}
	// UUIDv7 ids sort in creation order.
	slices.SortFunc(out, func(a, b Subscription) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Get returns subscription id.
func (m *Manager) Get(id string) (Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.subs[id]
	if !ok {
		return Subscription{}, fmt.Errorf("subscription %s: %w", id, domain.ErrNotFound)
	}
	return st.Subscription, nil
}

// Delete stops delivering subscription id, here at once and on other
// instances through the watch, and deletes its consumer and its failures.
func (m *Manager) Delete(ctx context.Context, id string) error {
	if _, err := m.Get(id); err != nil {
		return err
	}
	// The consumer before the entry: if deleting the entry fails, the
	// subscription is still listed and a retried DELETE finishes the job.
	// Meanwhile its worker only finds no consumer.
	if err := m.src.DeleteDurable(ctx, consumerName(id)); err != nil {
		return fmt.Errorf("webhook consumer: %w", err)
	}
	if err := m.kv.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete webhook subscription: %w", eventstore.Unavailable(err))
	}
	m.forget(id)
	if err := m.failures.Purge(ctx, jetstream.WithPurgeSubject(failureSubject(id))); err != nil {
		m.log.Warn("webhook failures not purged", "subscription", id, "err", err)
	}
	return nil
}

func (m *Manager) deleteConsumer(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.src.DeleteDurable(ctx, consumerName(id)); err != nil {
		m.log.Warn("webhook consumer left behind", "subscription", id, "err", err)
	}
}

func consumerName(id string) string { return consumerPrefix + id }

func failureSubject(id string) string { return failureRoot + "." + id }
