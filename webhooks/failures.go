package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

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
	out := make([]Failure, 0, pending)
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read webhook failures: %w", eventstore.Unavailable(err))
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			var f Failure
			if err := json.Unmarshal(msg.Data(), &f); err != nil {
				m.log.Warn("webhook failure record does not decode", "subscription", id, "err", err)
			} else {
				out = append(out, f)
			}
			if meta, err := msg.Metadata(); err == nil {
				pending = meta.NumPending
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
