package webhooks

import (
	"context"
	"encoding/json"
	"errors"
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
	// SequenceSince is the sequence of the first event stored at or after
	// a time, or the stream's next one when there is none.
	SequenceSince(ctx context.Context, t time.Time) (uint64, error)
	// CreateDurable, Durable and DeleteDurable manage and bind each
	// subscription's durable consumer of the event stream, which hands
	// out decoded, hash-checked events one at a time.
	CreateDurable(ctx context.Context, name string, cfg eventstore.DurableConfig) error
	Durable(ctx context.Context, name string) (*eventstore.Durable, error)
	DeleteDurable(ctx context.Context, name string) error
	// DurableInfo says where a durable consumer stands (its pending count).
	DurableInfo(ctx context.Context, name string) (eventstore.DurableInfo, error)
	// Message reads the message stored at a sequence, for a redelivery.
	Message(ctx context.Context, seq uint64) (domain.Message, error)
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
	progress jetstream.KeyValue // see ProgressBucket
	failures jetstream.Stream
	client   *http.Client
	resolver *net.Resolver

	mu      sync.Mutex
	subs    map[string]stored
	revs    map[string]uint64 // each subscription's bucket revision, to ignore late echoes
	workers map[string]*worker
	// gone holds deleted ids (UUIDv7s are never reused), so that the
	// watch's late echo of a subscription's creation cannot revive it.
	gone map[string]bool

	ctx    context.Context // ends at Close; every worker's parent
	cancel context.CancelFunc
	wg     sync.WaitGroup // the watch and every worker

	delivered, attemptsFailed, failed, recreated atomic.Uint64
}

// Stats counts this instance's deliveries since it started.
type Stats struct {
	Delivered      uint64 // events a subscriber acknowledged with a 2xx
	AttemptsFailed uint64 // attempts that got no 2xx (each retry counts)
	Failed         uint64 // events given up on and recorded as failures
	Recreated      uint64 // consumers found missing and made again
}

// Stats returns this instance's delivery counters.
func (m *Manager) Stats() Stats {
	return Stats{Delivered: m.delivered.Load(), AttemptsFailed: m.attemptsFailed.Load(), Failed: m.failed.Load(),
		Recreated: m.recreated.Load()}
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
		subs: make(map[string]stored), revs: make(map[string]uint64), workers: make(map[string]*worker), gone: make(map[string]bool)}
	var err error
	m.kv, err = eventstore.Provision(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: Bucket, Description: "Webhook subscriptions", History: 1,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: bucket: %w", eventstore.Unavailable(err))
	}
	m.progress, err = eventstore.Provision(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: ProgressBucket, Description: "Webhook delivery progress and health", History: 1,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: progress bucket: %w", eventstore.Unavailable(err))
	}
	m.failures, err = eventstore.Provision(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:              FailureStream,
			Description:       "Webhook deliveries that failed every attempt, per subscription",
			Subjects:          []string{failureRoot + ".>"},
			Storage:           jetstream.FileStorage,
			Replicas:          cfg.Replicas,
			MaxMsgsPerSubject: int64(cfg.MaxFailures),
			Discard:           jetstream.DiscardOld,
		})
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
	st, err := decodeStored(u.Value())
	if err != nil {
		m.log.Warn("webhook subscription does not decode; not delivering it", "key", u.Key(), "err", err)
		return
	}
	m.remember(st, u.Revision())
}

// decodeStored decodes a bucket entry; entries written before states
// existed are active.
func decodeStored(raw []byte) (stored, error) {
	var st stored
	if err := json.Unmarshal(raw, &st); err != nil {
		return stored{}, err
	}
	if st.State == "" {
		st.State = StateActive
	}
	return st, nil
}

// remember keeps st, the bucket's revision rev of it, and starts its worker
// unless one runs, or stops it unless st is active. An older revision than
// the one kept (the watch's late echo of a local change) changes nothing.
func (m *Manager) remember(st stored, rev uint64) {
	m.mu.Lock()
	if m.gone[st.ID] || rev < m.revs[st.ID] {
		m.mu.Unlock()
		return
	}
	m.subs[st.ID], m.revs[st.ID] = st, rev
	w, running := m.workers[st.ID]
	if st.State != StateActive {
		delete(m.workers, st.ID)
		m.mu.Unlock()
		if running {
			w.cancel()
			<-w.done
		}
		return
	}
	defer m.mu.Unlock()
	if running || m.ctx.Err() != nil {
		return
	}
	key, msg := decodeSecret(st.Secret)
	if msg != "" {
		m.log.Warn("webhook subscription has no usable secret; not delivering it", "subscription", st.ID)
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	w = &worker{cancel: cancel, done: make(chan struct{})}
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
	delete(m.revs, id)
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
// now, or, with req.FromSequence, those from that sequence on, or, with
// req.FromTime, those stored at or after that time.
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
	var fromTime *time.Time
	if !req.FromTime.IsZero() {
		if req.FromSequence > 0 {
			return Subscription{}, &domain.ValidationError{Fields: []domain.FieldError{{Field: "from_time",
				Message: "must not be sent with from_sequence; they name two starts"}}}
		}
		if from, err = m.src.SequenceSince(ctx, req.FromTime); err != nil {
			return Subscription{}, err
		}
		t := req.FromTime.UTC()
		fromTime = &t
	}
	st := stored{
		Subscription: Subscription{
			ID: uuid.Must(uuid.NewV7()).String(), Owner: owner, URL: req.URL,
			Types: slices.Clone(req.Types), FromSequence: from, FromTime: fromTime, SecretSet: true,
			CreatedAt: time.Now().UTC(), State: StateActive,
		},
		Secret: req.Secret,
	}
	// The consumer first: once the subscription is in the bucket, any
	// instance may start delivering it.
	err = m.src.CreateDurable(ctx, consumerName(st.ID), m.consumerConfig(st.ID, types, from))
	if err != nil {
		return Subscription{}, fmt.Errorf("webhook consumer: %w", err)
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return Subscription{}, err
	}
	rev, err := m.kv.Create(ctx, st.ID, raw)
	if err != nil {
		m.deleteConsumer(st.ID)
		return Subscription{}, fmt.Errorf("store webhook subscription: %w", eventstore.Unavailable(err))
	}
	m.remember(st, rev)
	return st.Subscription, nil
}

// consumerConfig is subscription id's durable consumer, starting at
// stream sequence from: when it is created, and when it is made again.
func (m *Manager) consumerConfig(id string, types []domain.EventType, from uint64) eventstore.DurableConfig {
	return eventstore.DurableConfig{
		Description: "webhook subscription " + id,
		Selection:   domain.Selection{Types: types},
		From:        from,
		// A delivery in progress says so before each attempt and while it
		// backs off, so only an instance that went away loses the event
		// to another, after AckWait.
		AckWait:  m.ackWait(),
		Replicas: m.cfg.Replicas,
	}
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
// instances through the watch, and deletes its consumer, its progress and
// its failures.
func (m *Manager) Delete(ctx context.Context, id string) error {
	if _, err := m.Get(id); err != nil {
		return err
	}
	// Marked first, so that no worker takes the missing consumer for one
	// to recreate; then the consumer before the entry: if deleting the
	// entry fails, the subscription is still listed and a retried DELETE
	// finishes the job.
	if _, err := m.setState(ctx, id, StateDeleting); err != nil && !errors.Is(err, domain.ErrNotFound) {
		return err
	}
	if err := m.src.DeleteDurable(ctx, consumerName(id)); err != nil {
		return fmt.Errorf("webhook consumer: %w", err)
	}
	if err := m.kv.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete webhook subscription: %w", eventstore.Unavailable(err))
	}
	m.forget(id)
	if err := m.progress.Purge(ctx, id); err != nil {
		m.log.Warn("webhook progress not purged", "subscription", id, "err", err)
	}
	if err := m.failures.Purge(ctx, jetstream.WithPurgeSubject(failureSubject(id))); err != nil {
		m.log.Warn("webhook failures not purged", "subscription", id, "err", err)
	}
	return nil
}

// Pause stops delivering subscription id on every instance; its consumer
// keeps its position. An event in flight is handed back, to be delivered
// (again) on Resume. Pausing a paused subscription changes nothing.
func (m *Manager) Pause(ctx context.Context, id string) (Subscription, error) {
	return m.setState(ctx, id, StatePaused)
}

// Resume delivers subscription id again, from where it was paused.
func (m *Manager) Resume(ctx context.Context, id string) (Subscription, error) {
	return m.setState(ctx, id, StateActive)
}

// setState writes subscription id's state to the bucket (compare-and-set,
// so two changes at once do not undo each other) and applies it here at
// once, on other instances through the watch. A subscription being
// deleted cannot be paused or resumed: it is not found.
func (m *Manager) setState(ctx context.Context, id, state string) (Subscription, error) {
	if _, err := m.Get(id); err != nil {
		return Subscription{}, err
	}
	for range 5 {
		e, err := m.kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return Subscription{}, fmt.Errorf("subscription %s: %w", id, domain.ErrNotFound)
		}
		if err != nil {
			return Subscription{}, fmt.Errorf("read webhook subscription: %w", eventstore.Unavailable(err))
		}
		st, err := decodeStored(e.Value())
		if err != nil {
			return Subscription{}, fmt.Errorf("read webhook subscription %s: %w", id, err)
		}
		if st.State == StateDeleting && state != StateDeleting {
			return Subscription{}, fmt.Errorf("subscription %s is being deleted: %w", id, domain.ErrNotFound)
		}
		rev := e.Revision()
		if st.State != state {
			st.State = state
			raw, err := json.Marshal(st)
			if err != nil {
				return Subscription{}, err
			}
			rev, err = m.kv.Update(ctx, id, raw, e.Revision())
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue // changed meanwhile: read it again
			}
			if err != nil {
				return Subscription{}, fmt.Errorf("store webhook subscription: %w", eventstore.Unavailable(err))
			}
		}
		m.remember(st, rev)
		return st.Subscription, nil
	}
	return Subscription{}, fmt.Errorf("subscription %s: %w: changed too often meanwhile", id, domain.ErrConflict)
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
