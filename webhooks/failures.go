package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// record keeps f as one of subscription id's dead letters. The failure
// stream keeps the latest MaxFailures per subscription. The message id
// makes a record repeated after a crash (before the event was acknowledged)
// count once.
func (m *Manager) record(ctx context.Context, id string, f Failure) error {
	f.FailedAt = time.Now().UTC()
	raw, err := json.Marshal(f)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err = m.js.Publish(rctx, failureSubject(id), raw,
		jetstream.WithExpectStream(FailureStream), jetstream.WithMsgID(id+"/"+strconv.FormatUint(f.Sequence, 10)))
	if err != nil {
		return fmt.Errorf("record webhook failure: %w", eventstore.Unavailable(err))
	}
	return nil
}

// Failures returns subscription id's dead letters, oldest first (at most
// the latest MaxFailures).
func (m *Manager) Failures(ctx context.Context, id string) ([]Failure, error) {
	if _, err := m.Get(id); err != nil {
		return nil, err
	}
	recs, err := m.failureRecords(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]Failure, len(recs))
	for i, r := range recs {
		out[i] = r.Failure
	}
	return out, nil
}

// failureRecord is a dead letter and where the failure stream keeps it.
type failureRecord struct {
	Failure
	streamSeq uint64
}

// failureRecords reads subscription id's dead letters, oldest first.
func (m *Manager) failureRecords(ctx context.Context, id string) ([]failureRecord, error) {
	// An ephemeral, unacknowledged consumer in memory: its pending count
	// says how many there are, and the server removes it if this process
	// goes away while reading.
	cons, err := m.failures.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     failureSubject(id),
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("read webhook failures: %w", eventstore.Unavailable(err))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = m.failures.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	pending := cons.CachedInfo().NumPending
	out := make([]failureRecord, 0, pending)
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read webhook failures: %w", eventstore.Unavailable(err))
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			var r failureRecord
			meta, merr := msg.Metadata()
			if merr == nil {
				pending, r.streamSeq = meta.NumPending, meta.Sequence.Stream
			}
			if err := json.Unmarshal(msg.Data(), &r.Failure); err != nil {
				m.log.Warn("webhook failure record does not decode", "subscription", id, "err", err)
			} else {
				out = append(out, r)
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read webhook failures: %w", eventstore.Unavailable(err))
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

// ErrPaused means the subscription is paused, and delivers nothing until
// it is resumed.
var ErrPaused = errors.New("the subscription is paused")

// ErrUndeliverable means the stored message fails its checks (it does not
// decode, or its hash is wrong): it is never delivered.
var ErrUndeliverable = errors.New("the stored message fails its checks and is never delivered")

// Redelivery is the outcome of re-sending a recorded failure.
type Redelivery struct {
	// Sequence and EventID name the event sent.
	Sequence uint64 `json:"sequence"`
	EventID  string `json:"event_id"`
	// Delivered is true when the receiver answered 2xx; the failure is then
	// removed from the subscription's failures.
	Delivered bool `json:"delivered"`
	// Status is the receiver's HTTP status (0 without an answer).
	Status int `json:"status"`
	// Error says what went wrong when not delivered.
	Error string `json:"error,omitempty"`
}

// Redeliver POSTs the event of subscription id's recorded failure at
// stream sequence seq once more, signed like every delivery, and waits for
// the answer. When the receiver answers 2xx the failure is removed from the
// list; otherwise it stays as it was. It does not move the subscription's
// position, and the event arrives out of stream order (receivers dedupe by
// webhook-id). An unknown failure wraps domain.ErrNotFound; a paused
// subscription is ErrPaused, a message that fails its checks
// ErrUndeliverable.
func (m *Manager) Redeliver(ctx context.Context, id string, seq uint64) (Redelivery, error) {
	m.mu.Lock()
	st, ok := m.subs[id]
	m.mu.Unlock()
	if !ok || st.State == StateDeleting {
		return Redelivery{}, fmt.Errorf("subscription %s: %w", id, domain.ErrNotFound)
	}
	if st.State == StatePaused {
		return Redelivery{}, fmt.Errorf("subscription %s: %w", id, ErrPaused)
	}
	recs, err := m.failureRecords(ctx, id)
	if err != nil {
		return Redelivery{}, err
	}
	var found []uint64 // the same event may be recorded more than once
	for _, r := range recs {
		if r.Sequence == seq {
			found = append(found, r.streamSeq)
		}
	}
	if len(found) == 0 {
		return Redelivery{}, fmt.Errorf("failure at sequence %d of subscription %s: %w", seq, id, domain.ErrNotFound)
	}
	msg, err := m.src.Message(ctx, seq)
	if err != nil {
		return Redelivery{}, err
	}
	if msg.Err != nil {
		return Redelivery{}, fmt.Errorf("sequence %d: %w: %w", seq, ErrUndeliverable, msg.Err)
	}
	key, bad := decodeSecret(st.Secret)
	if bad != "" {
		return Redelivery{}, fmt.Errorf("subscription %s has no usable secret: %w", id, ErrUndeliverable)
	}
	out := Redelivery{Sequence: seq, EventID: msg.Event.ID}
	out.Status, err = m.post(ctx, st.URL, key, msg.Event.ID, msg.Document())
	log := m.log.With("subscription", id, "sequence", seq, "event", msg.Event.ID)
	if err != nil {
		m.attemptsFailed.Add(1)
		out.Error = err.Error()
		log.Info("webhook failure redelivered without success", "status", out.Status, "err", err)
		return out, nil
	}
	m.delivered.Add(1)
	out.Delivered = true
	log.Info("webhook failure redelivered", "status", out.Status)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, s := range found {
		if err := m.failures.DeleteMsg(dctx, s); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, fmt.Errorf("remove redelivered webhook failure: %w", eventstore.Unavailable(err))
		}
	}
	return out, nil
}
