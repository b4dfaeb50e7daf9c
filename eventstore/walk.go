package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/iom-who/engagements/domain"
)

// ErrStopWalk, returned by a Walk callback, ends the walk without an error.
var ErrStopWalk = errors.New("stop walking")

// Walk reads the stored messages after sequence after that match kind and
// types (empty: all), in
// order, up to the stream's end as it was when the walk began; it does not
// wait for new ones. fn gets each message as Subscribe's handler does
// (decoded and hash-checked, or an error); an error from fn ends the walk
// and is returned. Memory stays constant whatever the stream's length.
func (s *Store) Walk(ctx context.Context, after uint64, kind domain.Kind, types []domain.EventType,
	fn func(seq uint64, ev domain.Event, err error) error) error {
	subjects, err := selectionSubjects(domain.Selection{Kind: kind, Types: types})
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
	last := info.State.LastSeq
	for attempt := 1; ; attempt++ {
		var fnErr error
		err := s.read(ctx, after, subjects, true, func(m message) error {
			if err := fn(m.seq, m.ev, m.err); err != nil {
				if errors.Is(err, ErrStopWalk) {
					return errIdle
				}
				fnErr = err
				return err
			}
			after = m.seq
			if m.seq >= last {
				return errIdle // the end as it was when the walk began
			}
			return nil
		})
		// A consumer lost on the way (missed heartbeats on a starved
		// machine, a cluster node leaving) is not the end of a long walk:
		// go on after the last message handled, which is never repeated.
		if err == nil || fnErr != nil || !errors.Is(err, domain.ErrUnavailable) || attempt == walkAttempts || ctx.Err() != nil {
			return err
		}
		s.log.Warn("walk interrupted; resuming", "after", after, "attempt", attempt, "err", err)
	}
}

// walkAttempts is how many times a walk starts over after losing its consumer.
const walkAttempts = 5
