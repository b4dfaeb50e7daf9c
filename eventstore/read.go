package eventstore

import (
	"context"
	"errors"
	"fmt"

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

// Subscribe delivers every message after sequence after, in order, then
// follows new appends live, until ctx ends. h receives each message in
// stream order: the decoded event, or an error wrapping ErrUndecodable for a
// message that is not a valid envelope; seq is always the stream sequence.
// It uses an ordered consumer, which recreates itself after connection
// trouble without gaps.
func (s *Store) Subscribe(ctx context.Context, after uint64, h func(seq uint64, ev domain.Event, err error)) error {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if after > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = after + 1
	}
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", unavailable(err))
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("consume: %w", unavailable(err))
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("next message: %w", unavailable(err))
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		ev, derr := decodeMsg(msg.Subject(), msg.Headers(), msg.Data(), meta.Sequence.Stream)
		h(meta.Sequence.Stream, ev, derr)
	}
}
