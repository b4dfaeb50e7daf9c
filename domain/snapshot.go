package domain

import (
	"slices"
	"strings"
)

// EngagementSnapshot is an engagement's whole state, including what Apply
// keeps for corrections, in a form that can be saved and restored (for
// projection checkpoints).
type EngagementSnapshot struct {
	State View
	// Events is the engagement's packed event references (ids and types).
	Events []byte
	// SourceFields and SourceEvents pair each state field with the event
	// that last set it (two lists decode much faster than a map).
	SourceFields, SourceEvents []string
}

// Snapshot returns the engagement's whole state. It shares e's slices: e
// must not change while the snapshot is in use (Clone first otherwise).
func (e *Engagement) Snapshot() EngagementSnapshot {
	s := EngagementSnapshot{State: e.v, Events: e.events}
	sources := slices.SortedFunc(slices.Values(e.sources), func(a, b source) int {
		return strings.Compare(stateFields[a.field], stateFields[b.field])
	})
	// Each event's id is formatted once: a few events set all the fields.
	type formatted struct {
		event uint32
		id    string
	}
	var ids []formatted
	for _, src := range sources {
		i := slices.IndexFunc(ids, func(f formatted) bool { return f.event == src.event })
		if i < 0 {
			id, ok := e.eventAt(int(src.event))
			if !ok {
				continue
			}
			ids = append(ids, formatted{src.event, id})
			i = len(ids) - 1
		}
		s.SourceFields = append(s.SourceFields, stateFields[src.field])
		s.SourceEvents = append(s.SourceEvents, ids[i].id)
	}
	return s
}

// Restore rebuilds an engagement from a snapshot, which it takes over: the
// caller must not use s afterwards.
func Restore(s EngagementSnapshot) *Engagement {
	e := Engagement{v: s.State, events: s.Events}
	if len(s.SourceFields) > 0 {
		e.sources = make([]source, 0, len(s.SourceFields))
	}
	lastID, lastPos := "", 0
	for i, f := range s.SourceFields {
		if i >= len(s.SourceEvents) {
			break
		}
		if id := s.SourceEvents[i]; id != lastID {
			lastID, lastPos = id, e.version(id)-1
		}
		e.setSource(f, lastPos)
	}
	// Encodings such as gob drop empty slices; the API shows them as [].
	for _, l := range []*[]string{&e.v.Parties, &e.v.Tags} {
		if *l == nil {
			*l = []string{}
		}
	}
	if e.v.Links == nil {
		e.v.Links = []Link{}
	}
	return &e
}

// Refs returns the packed references of the engagement's first n events,
// sharing e's array (Apply only appends to it): the Events of a snapshot
// taken after its n-th event.
func (e *Engagement) Refs(n int) []byte {
	k := min(max(n, 0)*eventRefSize, len(e.events))
	return e.events[:k:k]
}

// MilestoneSnapshot is Snapshot without the event references, sharing
// nothing with e: a milestone kept while e goes on changing, whose Events
// are e's first references later on (Refs).
func (e *Engagement) MilestoneSnapshot() EngagementSnapshot {
	// The sources name their events by position in events: the snapshot
	// is taken with them, then left without.
	s := e.Clone().Snapshot()
	s.Events = nil
	return s
}
