package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// A subscription's states.
const (
	// StateActive subscriptions deliver.
	StateActive = "active"
	// StatePaused subscriptions deliver nothing and keep their position;
	// resumed, they go on from there.
	StatePaused = "paused"
	// StateDeleting marks a subscription whose DELETE has begun; it
	// delivers nothing, and a retried DELETE finishes the job.
	StateDeleting = "deleting"
)

// ProgressBucket is the JetStream KV bucket of each subscription's
// delivery progress and health, one entry per subscription, written at
// most every 250 ms while it delivers. It is apart from Bucket so that
// these writes do not wake every instance's watch.
const ProgressBucket = "ENGAGEMENTS_WEBHOOK_PROGRESS"

// Health is how a subscription's deliveries are going, as every instance
// records them.
type Health struct {
	// AcknowledgedSequence is the last stream sequence settled: delivered
	// with a 2xx or recorded as a failure. A consumer that disappears is
	// recreated to start after it.
	AcknowledgedSequence uint64 `json:"acknowledged_sequence"`
	// LastDeliveredSequence is the last stream sequence a receiver
	// acknowledged with a 2xx (0: none yet).
	LastDeliveredSequence uint64 `json:"last_delivered_sequence"`
	// LastSuccessAt is when that was.
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
	// LastError says what went wrong with the last failed attempt, of
	// LastErrorSequence, at LastErrorAt; a later success leaves them.
	LastError         string     `json:"last_error,omitempty"`
	LastErrorSequence uint64     `json:"last_error_sequence,omitempty"`
	LastErrorAt       *time.Time `json:"last_error_at,omitempty"`
	// Pending is how many selected events are not settled yet (waiting or
	// in flight); null when the consumer cannot be read.
	Pending *uint64 `json:"pending"`
	// ConsumersRecreated counts how often the subscription's consumer was
	// found missing and made again.
	ConsumersRecreated uint64 `json:"consumers_recreated"`
}

// Health returns subscription id's delivery health: the recorded
// progress, and the pending count from its consumer.
func (m *Manager) Health(ctx context.Context, id string) (Health, error) {
	if _, err := m.Get(id); err != nil {
		return Health{}, err
	}
	h, _, err := m.loadProgress(ctx, id)
	if err != nil {
		return Health{}, err
	}
	h.Pending = nil
	info, err := m.src.DurableInfo(ctx, consumerName(id))
	switch {
	case err == nil:
		h.Pending = &info.Pending
	case !errors.Is(err, domain.ErrNotFound):
		return Health{}, err
	}
	return h, nil
}

// loadProgress reads subscription id's progress and its revision (0 when
// none is recorded yet).
func (m *Manager) loadProgress(ctx context.Context, id string) (Health, uint64, error) {
	e, err := m.progress.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Health{}, 0, nil
	}
	if err != nil {
		return Health{}, 0, fmt.Errorf("webhook progress: %w", eventstore.Unavailable(err))
	}
	var h Health
	if err := json.Unmarshal(e.Value(), &h); err != nil {
		// Progress only ever moves forward from here.
		m.log.Warn("webhook progress does not decode; starting it over", "subscription", id, "err", err)
		return Health{}, e.Revision(), nil
	}
	return h, e.Revision(), nil
}

// flushEvery is the least time between two writes of a subscription's
// progress: a burst of deliveries costs a few writes, not one each.
const flushEvery = 250 * time.Millisecond

// tracker keeps one worker's progress: exact in memory, where the worker
// updates it after each event, and written to the bucket by run, at most
// every flushEvery and once more when the worker stops. A missing consumer
// is made again from the memory's position (merged with the bucket's,
// which another instance may have moved); the bucket's may lag by up to
// flushEvery, so only when another instance settled events in that time
// before a consumer disappeared can those arrive twice. Writes are
// compare-and-set on the entry's revision, merged with what another
// instance wrote, and sequences never go back.
type tracker struct {
	m    *Manager
	id   string
	log  *slog.Logger
	wake chan struct{} // one pending signal: the progress changed
	done chan struct{} // closed when run has returned

	mu    sync.Mutex
	h     Health
	rev   uint64 // of the bucket entry h was last merged with or written as; 0: none
	dirty bool
}

func (m *Manager) newTracker(ctx context.Context, id string, log *slog.Logger) (*tracker, error) {
	t := &tracker{m: m, id: id, log: log, wake: make(chan struct{}, 1)}
	var err error
	t.h, t.rev, err = m.loadProgress(ctx, id)
	return t, err
}

// change applies f to the progress and has run write it.
func (t *tracker) change(f func(*Health)) {
	t.mu.Lock()
	f(&t.h)
	t.dirty = true
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// position is the last sequence settled, as far as this worker knows.
func (t *tracker) position() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.h.AcknowledgedSequence
}

// reload merges the bucket's progress into memory.
func (t *tracker) reload(ctx context.Context) error {
	theirs, rev, err := t.m.loadProgress(ctx, t.id)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.h, t.rev = merge(t.h, theirs), rev
	t.mu.Unlock()
	return nil
}

// run writes the progress whenever it changes, at most every flushEvery,
// until ctx ends; then once more.
func (t *tracker) run(ctx context.Context) {
	defer t.flush(context.WithoutCancel(ctx))
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		}
		t.flush(ctx)
		if !sleep(ctx, flushEvery) {
			return
		}
	}
}

// flush writes the progress if it changed. A write that fails is logged,
// not returned: delivery goes on, and the worst outcome is that a
// recreated consumer hands out an already delivered event again.
func (t *tracker) flush(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kv := t.m.progress
	for range 3 {
		t.mu.Lock()
		if !t.dirty {
			t.mu.Unlock()
			return
		}
		h, rev := t.h, t.rev
		t.dirty = false
		t.mu.Unlock()
		h.Pending = nil
		raw, err := json.Marshal(h)
		if err != nil {
			t.log.Warn("webhook progress not encoded", "err", err)
			return
		}
		var next uint64
		if rev == 0 {
			next, err = kv.Create(sctx, t.id, raw)
		} else {
			next, err = kv.Update(sctx, t.id, raw, rev)
		}
		if err == nil {
			t.mu.Lock()
			if t.rev == rev {
				t.rev = next
			}
			t.mu.Unlock()
			return
		}
		t.mu.Lock()
		t.dirty = true // not written: try again
		t.mu.Unlock()
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			t.log.Warn("webhook progress not recorded", "err", err)
			return
		}
		// Another instance wrote meanwhile: merge its progress, write again.
		if err := t.reload(sctx); err != nil {
			t.log.Warn("webhook progress not recorded", "err", err)
			return
		}
	}
	t.log.Warn("webhook progress not recorded: too many concurrent writers")
}

// merge is the progress of a and b together: the later of each.
func merge(a, b Health) Health {
	a.AcknowledgedSequence = max(a.AcknowledgedSequence, b.AcknowledgedSequence)
	if b.LastDeliveredSequence > a.LastDeliveredSequence {
		a.LastDeliveredSequence, a.LastSuccessAt = b.LastDeliveredSequence, b.LastSuccessAt
	}
	if b.LastErrorAt != nil && (a.LastErrorAt == nil || b.LastErrorAt.After(*a.LastErrorAt)) {
		a.LastError, a.LastErrorSequence, a.LastErrorAt = b.LastError, b.LastErrorSequence, b.LastErrorAt
	}
	a.ConsumersRecreated = max(a.ConsumersRecreated, b.ConsumersRecreated)
	return a
}

// settled records that seq was settled; delivered says it got a 2xx.
func (t *tracker) settled(seq uint64, delivered bool) {
	now := time.Now().UTC()
	t.change(func(h *Health) {
		h.AcknowledgedSequence = max(h.AcknowledgedSequence, seq)
		if delivered && seq >= h.LastDeliveredSequence {
			h.LastDeliveredSequence, h.LastSuccessAt = seq, &now
		}
	})
}

// failed records a failed attempt at seq.
func (t *tracker) failed(seq uint64, msg string) {
	now := time.Now().UTC()
	t.change(func(h *Health) {
		h.LastError, h.LastErrorSequence, h.LastErrorAt = msg, seq, &now
	})
}

// acknowledged moves the progress up to what the consumer says is
// acknowledged: progress recorded before this release, or lost writes.
func (t *tracker) acknowledged(seq uint64) {
	if seq <= t.position() {
		return
	}
	t.change(func(h *Health) { h.AcknowledgedSequence = max(h.AcknowledgedSequence, seq) })
}

// recreated counts one recreation of the consumer.
func (t *tracker) recreated() {
	t.change(func(h *Health) { h.ConsumersRecreated++ })
}
