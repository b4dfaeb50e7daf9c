package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go/jetstream"
)

// liveHeartbeat is the idle heartbeat of the consumers that read the
// stream. Such a consumer lives on one server: when that server goes away
// (a cluster node shut down), two missed heartbeats are what tell the
// client. nats.go's default of 5 s stalled the projection, and with it every
// write's read-your-writes wait, for 10 s.
const liveHeartbeat = time.Second

// consumerTimeout bounds creating and deleting a consumer. While a cluster
// elects a new meta leader nobody answers; failing fast lets the caller try
// again as soon as there is one.
const consumerTimeout = 2 * time.Second

// message is one stored message as read hands it over.
type message struct {
	domain.Message
	pending uint64 // messages matching the filter still after this one
	// stop, when set, ends the read: the consumer failed (no message).
	stop error
}

// readAhead is how many decoded messages may wait for the reader's callback.
const readAhead = 512

// read is the one loop every reader of the stream uses. It creates an
// ephemeral, unacknowledged consumer in memory (the server removes it if
// this process goes away) for subjects after sequence after (or, with after
// 0 and since set, from the first message stored at or after since), and passes
// each message, decoded and hash-checked, to fn in stream order. It ends
// when ctx ends (returning ctx.Err()), when fn returns false (returning nil),
// or when anything goes wrong: the consumer's server gone,
// missed heartbeats, a delivery lost in transit — then with an error
// wrapping domain.ErrUnavailable, never with a gap, so the caller can read
// again after the last sequence it handled. With untilIdle it also ends,
// returning nil, once nothing matching is left.
//
// (nats.go's ordered consumer would recreate itself instead, but it waits up
// to 10 s for each attempt, which stalled readers for 11 s when a cluster
// node left.)
func (s *Store) read(ctx context.Context, after uint64, since time.Time, subjects []string, untilIdle bool, fn func(m message) bool) error {
	cons, err := s.readConsumer(ctx, after, since, subjects)
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), consumerTimeout)
		defer cancel()
		_ = s.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	if untilIdle && cons.CachedInfo().NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024), jetstream.PullHeartbeat(liveHeartbeat))
	if err != nil {
		return fmt.Errorf("consume: %w", Unavailable(err))
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	// Two stages: this goroutine hands messages to fn while another
	// receives and decodes the next ones (JSON and SHA-256), which keeps a
	// second core busy during a rebuild.
	decoded := make(chan message, readAhead)
	done := make(chan struct{})
	defer func() {
		close(done)
		it.Stop()
		for range decoded { // let the decoder finish
		}
	}()
	go decode(it, decoded, done, untilIdle)
	for m := range decoded {
		if m.stop != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return m.stop
		}
		if !fn(m) || untilIdle && m.pending == 0 {
			return nil
		}
	}
	return ctx.Err()
}

// readConsumer creates read's consumer: ephemeral, in memory, without
// acknowledgements, for subjects after sequence after; with after 0 and
// since set, from the first message stored at or after since (JetStream's
// DeliverByStartTime, by the time each message was stored).
func (s *Store) readConsumer(ctx context.Context, after uint64, since time.Time, subjects []string) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		FilterSubjects:    subjects,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
	}
	switch {
	case after > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = after + 1
	case !since.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	cctx, cancel := context.WithTimeout(ctx, consumerTimeout)
	cons, err := s.stream.CreateConsumer(cctx, cfg)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("create consumer: %w", Unavailable(err))
	}
	return cons, nil
}

// SequenceSince is the stream sequence of the first message stored at or
// after t, or the stream's next sequence when none is: where a reader that
// starts at t starts.
func (s *Store) SequenceSince(ctx context.Context, t time.Time) (uint64, error) {
	cons, err := s.readConsumer(ctx, 0, t, nil)
	if err != nil {
		return 0, err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), consumerTimeout)
	defer cancel()
	_ = s.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	// A new consumer's delivered stream sequence is the one before its
	// start, whether or not a message is there yet.
	return cons.CachedInfo().Delivered.Stream + 1, nil
}

// decode receives it's messages, decodes and hash-checks each, and sends
// them to decoded in stream order until done is closed, the consumer fails
// (a last message with stop set) or, with untilIdle, nothing is pending. It
// closes decoded when it returns.
func decode(it jetstream.MessagesContext, decoded chan<- message, done <-chan struct{}, untilIdle bool) {
	defer close(decoded)
	send := func(m message) bool {
		select {
		case decoded <- m:
			return true
		case <-done:
			return false
		}
	}
	var delivered uint64 // the consumer's own sequence: 1, 2, 3… with no gap
	for {
		msg, err := it.Next()
		if err != nil {
			send(message{stop: fmt.Errorf("next message: %w", Unavailable(err))})
			return
		}
		meta, err := msg.Metadata()
		if err != nil {
			send(message{stop: fmt.Errorf("message metadata: %w", err)})
			return
		}
		if meta.Sequence.Consumer != delivered+1 {
			// Unacknowledged deliveries are not sent again: one was lost.
			send(message{stop: fmt.Errorf("%w: delivery %d after %d (stream sequence %d): one was lost in transit",
				domain.ErrUnavailable, meta.Sequence.Consumer, delivered, meta.Sequence.Stream)})
			return
		}
		delivered = meta.Sequence.Consumer
		m := message{pending: meta.NumPending}
		m.Sequence, m.Payload = meta.Sequence.Stream, msg.Data()
		m.Subject, m.Hash, m.PrevHash = msg.Subject(), msg.Headers().Get(HeaderHash), msg.Headers().Get(HeaderPrevHash)
		m.Event, m.Err = decodeMsg(msg.Subject(), msg.Headers(), m.Payload, m.Sequence)
		if !send(m) || untilIdle && m.pending == 0 {
			return
		}
	}
}
