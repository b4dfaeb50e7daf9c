package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
// delivery progress and health, one entry per subscription, written after
// each event it settles. It is apart from Bucket so that these writes do
// not wake every instance's watch.
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

// tracker writes one worker's progress. Writes are compare-and-set on the
// entry's revision, and every change keeps sequences from going back, so
// two instances handing the consumer's events between them (one at a time)
// never lose each other's progress.
type tracker struct {
	m   *Manager
	id  string
	log *slog.Logger
	h   Health
	rev uint64
}

func (m *Manager) newTracker(ctx context.Context, id string, log *slog.Logger) (*tracker, error) {
	t := &tracker{m: m, id: id, log: log}
	var err error
	t.h, t.rev, err = m.loadProgress(ctx, id)
	return t, err
}

// save applies change to the recorded progress. A write that fails is
// logged, not returned: delivery goes on, and the worst outcome is that a
// recreated consumer hands out an already delivered event again.
func (t *tracker) save(ctx context.Context, change func(*Health)) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	kv := t.m.progress
	for range 3 {
		h := t.h
		change(&h)
		h.Pending = nil
		raw, err := json.Marshal(h)
		if err != nil {
			t.log.Warn("webhook progress not encoded", "err", err)
			return
		}
		var rev uint64
		if t.rev == 0 {
			rev, err = kv.Create(sctx, t.id, raw)
		} else {
			rev, err = kv.Update(sctx, t.id, raw, t.rev)
		}
		if err == nil {
			t.h, t.rev = h, rev
			return
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			t.log.Warn("webhook progress not recorded", "err", err)
			return
		}
		// Another instance wrote meanwhile: read its version, apply ours on top.
		if t.h, t.rev, err = t.m.loadProgress(sctx, t.id); err != nil {
			t.log.Warn("webhook progress not recorded", "err", err)
			return
		}
	}
	t.log.Warn("webhook progress not recorded: too many concurrent writers")
}

// settled records that seq was settled; delivered says it got a 2xx.
func (t *tracker) settled(ctx context.Context, seq uint64, delivered bool) {
	now := time.Now().UTC()
	t.save(ctx, func(h *Health) {
		h.AcknowledgedSequence = max(h.AcknowledgedSequence, seq)
		if delivered && seq >= h.LastDeliveredSequence {
			h.LastDeliveredSequence, h.LastSuccessAt = seq, &now
		}
	})
}

// failed records a failed attempt at seq.
func (t *tracker) failed(ctx context.Context, seq uint64, msg string) {
	now := time.Now().UTC()
	t.save(ctx, func(h *Health) {
		h.LastError, h.LastErrorSequence, h.LastErrorAt = msg, seq, &now
	})
}

// acknowledged moves the progress up to what the consumer says is
// acknowledged: progress recorded before this release, or lost writes.
func (t *tracker) acknowledged(ctx context.Context, seq uint64) {
	if seq <= t.h.AcknowledgedSequence {
		return
	}
	t.save(ctx, func(h *Health) { h.AcknowledgedSequence = max(h.AcknowledgedSequence, seq) })
}

// recreated counts one recreation of the consumer.
func (t *tracker) recreated(ctx context.Context) {
	t.save(ctx, func(h *Health) { h.ConsumersRecreated++ })
}
