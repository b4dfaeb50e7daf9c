package domain

import "time"

// Window selects events on the two time axes. A zero bound does not filter.
type Window struct {
	// AsOf keeps events whose occurred_at is at or before it: what was true
	// in the world then, as known now.
	AsOf time.Time
	// KnownAt keeps events whose recorded_at is at or before it: what the
	// system knew then.
	KnownAt time.Time
}

// IsZero reports whether w filters nothing.
func (w Window) IsZero() bool { return w.AsOf.IsZero() && w.KnownAt.IsZero() }

// Contains reports whether ev falls inside the window.
func (w Window) Contains(ev Event) bool {
	return (w.AsOf.IsZero() || !ev.OccurredAt.After(w.AsOf)) &&
		(w.KnownAt.IsZero() || !ev.RecordedAt.After(w.KnownAt))
}

// Day is the moment statuses are derived for: AsOf, else KnownAt, else now.
func (w Window) Day(now time.Time) time.Time {
	switch {
	case !w.AsOf.IsZero():
		return w.AsOf
	case !w.KnownAt.IsZero():
		return w.KnownAt
	}
	return now
}

// Replay folds, in stream order, the events of one engagement that fall in
// w. The events were decided in that order, but a window may leave gaps, so
// versions are not required to follow one another here; an event whose
// transition does not hold without the events left out is skipped. The
// state's Version and Sequence are those of the last event folded. It
// returns false when the engagement did not exist within the window.
func Replay(events []Event, w Window) (*Engagement, bool) {
	return ReplayFrom(&Engagement{}, events, w)
}

// ReplayFrom is Replay continued from e, the state after an earlier part of
// the same history (a milestone), which it changes and returns: events
// holds only what follows that part.
func ReplayFrom(e *Engagement, events []Event, w Window) (*Engagement, bool) {
	for _, ev := range events {
		if !w.Contains(ev) {
			continue
		}
		version := ev.Version
		// The chain and the versions were checked when the events were
		// folded in full; a window may leave gaps in both.
		ev.Version, ev.PrevHash = e.v.Version+1, e.v.Hash
		if err := e.Apply(ev); err != nil {
			continue
		}
		e.v.Version = version
	}
	return e, e.Exists()
}
