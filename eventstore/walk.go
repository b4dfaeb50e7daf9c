package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrStopWalk, returned by a Walk callback, ends the walk without an error.
var ErrStopWalk = errors.New("stop walking")

// filterSubjects narrows a walk to a kind and to event types; empty
// arguments match all. Kinds and types are allow-listed before they become
// part of a subject.
func filterSubjects(kind domain.Kind, types []domain.EventType) ([]string, error) {
	k := "*"
	if kind != "" {
		if !kind.Valid() {
			return nil, fmt.Errorf("filter: unknown kind %q", kind)
		}
		k = string(kind)
	}
	if len(types) == 0 {
		return []string{subjectRoot + "." + k + ".>"}, nil
	}
	out := make([]string, len(types))
	for i, t := range types {
		if _, err := domain.ParseEventType(string(t)); err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		out[i] = subjectRoot + "." + k + ".*." + t.Verb()
	}
	return out, nil
}

// Walk reads the stored messages after sequence after that match kind and
// types (empty: all), in
// order, up to the stream's end as it was when the walk began; it does not
// wait for new ones. fn gets each message as Subscribe's handler does
// (decoded and hash-checked, or an error); an error from fn ends the walk
// and is returned. Memory stays constant whatever the stream's length.
func (s *Store) Walk(ctx context.Context, after uint64, kind domain.Kind, types []domain.EventType,
	fn func(seq uint64, ev domain.Event, err error) error) error {
	subjects, err := filterSubjects(kind, types)
	if err != nil {
		return err
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", unavailable(err))
	}
	if info.State.Msgs == 0 || after >= info.State.LastSeq {
		return nil
	}
	// An ephemeral, unacknowledged consumer in memory: its pending count says
	// at once whether anything matches, and the server removes it if this
	// process goes away mid-walk.
	cfg := jetstream.ConsumerConfig{
		FilterSubjects:    subjects,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	}
	if after > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = after + 1
	}
	cons, err := s.stream.CreateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create consumer: %w", unavailable(err))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	if cons.CachedInfo().NumPending == 0 {
		return nil
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
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("next message: %w", unavailable(err))
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		seq := meta.Sequence.Stream
		ev, derr := decodeMsg(msg.Subject(), msg.Headers(), msg.Data(), seq)
		if err := fn(seq, ev, derr); err != nil {
			if errors.Is(err, ErrStopWalk) {
				return nil
			}
			return err
		}
		if meta.NumPending == 0 || seq >= info.State.LastSeq {
			return nil
		}
	}
}
