package eventstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
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
		return domain.Event{}, fmt.Errorf("event at sequence %d: %w", seq, Unavailable(err))
	}
	m := domain.Message{Sequence: msg.Sequence, Payload: msg.Data}
	m.Event, m.Err = decodeMsg(msg.Subject, msg.Header, msg.Data, msg.Sequence)
	if err := s.keys.openMessage(ctx, &m); err != nil {
		return domain.Event{}, err
	}
	return m.Event, m.Err
}

// Message reads the message stored at seq with a direct get: its payload
// as stored, and the event decoded and hash-checked (Err says why not). A
// sequence with no message wraps domain.ErrNotFound.
func (s *Store) Message(ctx context.Context, seq uint64) (domain.Message, error) {
	msg, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return domain.Message{}, fmt.Errorf("message at sequence %d: %w", seq, domain.ErrNotFound)
		}
		return domain.Message{}, fmt.Errorf("message at sequence %d: %w", seq, Unavailable(err))
	}
	m := domain.Message{Sequence: msg.Sequence, Payload: msg.Data, Subject: msg.Subject,
		Hash: msg.Header.Get(HeaderHash), PrevHash: msg.Header.Get(HeaderPrevHash)}
	m.Event, m.Err = decodeMsg(msg.Subject, msg.Header, msg.Data, msg.Sequence)
	if err := s.keys.openMessage(ctx, &m); err != nil {
		return domain.Message{}, err
	}
	return m, nil
}

// Read is the one reader of the stream. It yields the stored messages after
// sequence after that f selects, in stream order, with no gap and no
// duplicate: each decoded and hash-checked, or, for a message that does not
// decode or fails its check, with Message.Err set (wrapping ErrUndecodable
// or ErrUnverified) — such a message is yielded like any other and reading
// goes on. Memory stays constant whatever the stream's length; breaking out
// of the loop ends the read.
//
// Without f.Live it ends at the end of the stream as it was when it began;
// a consumer lost on the way (missed heartbeats on a starved machine, a
// cluster node leaving) is replaced, resuming after the last message
// yielded, up to 5 times. With f.Live it goes on with new appends until ctx
// ends.
//
// A non-nil error is always the last thing yielded, with a zero Message:
// ctx.Err() when ctx ends, an error wrapping domain.ErrUnavailable when the
// consumer was lost (read again after the last sequence handled, as
// projections.Projector.Run does), or what is wrong with f.
func (s *Store) Read(ctx context.Context, after uint64, f domain.Filter) iter.Seq2[domain.Message, error] {
	return func(yield func(domain.Message, error) bool) {
		subjects, err := readSubjects(f.Selection)
		if err != nil {
			yield(domain.Message{}, err)
			return
		}
		stopped := false
		emit := func(m message) bool {
			if !yield(m.Message, nil) {
				stopped = true
				return false
			}
			return true
		}
		if f.Live {
			err = s.read(ctx, after, f.Since, subjects, false, emit)
		} else {
			err = s.readStored(ctx, after, f.Since, subjects, emit)
		}
		if err != nil && !stopped {
			yield(domain.Message{}, err)
		}
	}
}

// readAttempts is how many consumers a read to the end may use: it starts
// over after losing one.
const readAttempts = 5

// readStored passes the messages after sequence after up to the stream's
// end as it is now to fn, as read does, starting over after a lost
// consumer.
func (s *Store) readStored(ctx context.Context, after uint64, since time.Time, subjects []string, fn func(m message) bool) error {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", Unavailable(err))
	}
	if info.State.Msgs == 0 || after >= info.State.LastSeq {
		return nil
	}
	last := info.State.LastSeq
	for attempt := 1; ; attempt++ {
		stopped := false
		// After a lost consumer after is past since: a start by sequence.
		err := s.read(ctx, after, since, subjects, true, func(m message) bool {
			if !fn(m) {
				stopped = true
				return false
			}
			after = m.Sequence
			return m.Sequence < last // the end as it was when the read began
		})
		// A consumer lost on the way is not the end of a long read: go on
		// after the last message handed over, which is never repeated.
		if err == nil || stopped || !errors.Is(err, domain.ErrUnavailable) || attempt == readAttempts || ctx.Err() != nil {
			return err
		}
		s.log.Warn("read interrupted; resuming", "after", after, "attempt", attempt, "err", err)
	}
}
