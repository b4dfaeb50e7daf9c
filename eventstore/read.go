package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go/jetstream"
)

// Event reads the event stored at seq with a direct get.
func (s *Store) Event(ctx context.Context, seq uint64) (domain.Event, error) {
	msg, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return domain.Event{}, fmt.Errorf("event at sequence %d: %w", seq, domain.ErrNotFound)
		}
		return domain.Event{}, fmt.Errorf("event at sequence %d: %w", seq, unavailable(err))
	}
	return decodeMsg(msg.Subject, msg.Header, msg.Data, msg.Sequence)
}

// liveHeartbeat is the idle heartbeat of the consumers that follow the
// stream live. Such a consumer lives on one server: when that server goes
// away (a cluster node shut down), two missed heartbeats are what tell the
// client. nats.go's default of 5 s stalled the projection, and with it every
// write's read-your-writes wait, for 10 s.
const liveHeartbeat = time.Second

// subscribeTimeout bounds creating Subscribe's consumer. While a cluster
// elects a new meta leader nobody answers; failing fast lets the caller try
// again as soon as there is one.
const subscribeTimeout = 2 * time.Second

// Subscribe delivers every message after sequence after, in order, then
// follows new appends live, until ctx ends (it then returns ctx.Err()). h
// receives each message in stream order: the decoded event, or an error
// wrapping ErrUndecodable for a message that is not a valid envelope; seq is
// always the stream sequence.
//
// Any trouble (the consumer's server gone, missed heartbeats, a delivery
// lost in transit) ends Subscribe with an error wrapping
// domain.ErrUnavailable, never with a gap: the caller subscribes again after
// the last sequence it handled, as projections.Projector.Run does. (nats.go's
// ordered consumer would recreate itself, but it waits up to 10 s for each
// attempt, which stalled the projection for 11 s when a cluster node left.)
func (s *Store) Subscribe(ctx context.Context, after uint64, h func(seq uint64, ev domain.Event, err error)) error {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute, // removed by the server if this process goes away
	}
	if after > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = after + 1
	}
	cctx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	cons, err := s.stream.CreateConsumer(cctx, cfg)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("create consumer: %w", unavailable(err))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), subscribeTimeout)
		defer cancel()
		_ = s.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	it, err := cons.Messages(jetstream.PullMaxMessages(1024), jetstream.PullHeartbeat(liveHeartbeat))
	if err != nil {
		return fmt.Errorf("consume: %w", unavailable(err))
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	var delivered uint64 // the consumer's own sequence: 1, 2, 3… with no gap
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("next message: %w", unavailable(err))
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		if meta.Sequence.Consumer != delivered+1 {
			// Unacknowledged deliveries are not sent again: one was lost.
			return fmt.Errorf("%w: delivery %d after %d (stream sequence %d): one was lost in transit",
				domain.ErrUnavailable, meta.Sequence.Consumer, delivered, meta.Sequence.Stream)
		}
		delivered = meta.Sequence.Consumer
		ev, derr := decodeMsg(msg.Subject(), msg.Headers(), msg.Data(), meta.Sequence.Stream)
		h(meta.Sequence.Stream, ev, derr)
	}
}
