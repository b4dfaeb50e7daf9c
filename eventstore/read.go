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
// follows new appends live, until ctx ends (it then returns ctx.Err()). h
// receives each message in stream order: the decoded event, or an error
// wrapping ErrUndecodable for a message that is not a valid envelope; seq is
// always the stream sequence.
//
// Any trouble (the consumer's server gone, missed heartbeats, a delivery
// lost in transit) ends Subscribe with an error wrapping
// domain.ErrUnavailable, never with a gap: the caller subscribes again after
// the last sequence it handled, as projections.Projector.Run does.
func (s *Store) Subscribe(ctx context.Context, after uint64, h func(seq uint64, ev domain.Event, err error)) error {
	return s.read(ctx, after, []string{subjectRoot + ".>"}, false, func(m message) error {
		h(m.seq, m.ev, m.err)
		return nil
	})
}
