package projections

import (
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
)

// timeline is the read model of when each engagement's folded events
// happened and were recorded: per engagement, in history order (parallel
// to sequences.history), each event's occurred_at and recorded_at as Unix
// nanoseconds and its type's index in domain.EventTypes. It is what answers
// the views within a window (as_of, known_at) without reading events from
// the stream: which engagements existed then, which of their events fall
// in the window (so only those are read, and none when they all do: the
// current state is the answer), and each one's last change then. It costs
// 17 bytes per event.
type timeline struct {
	byID map[string]marks
}

// marks are one engagement's points on both time axes: at holds two
// integers per event (occurred_at, recorded_at), types one byte.
type marks struct {
	at    []int64
	types []uint8
}

func newTimeline() timeline { return timeline{byID: make(map[string]marks)} }

// Apply records ev, folded at seq, at the end of its engagement's marks.
func (t *timeline) Apply(_ uint64, ev domain.Event) {
	m := t.byID[ev.EngagementID]
	m.at = append(m.at, nanos(ev.OccurredAt), nanos(ev.RecordedAt))
	m.types = append(m.types, typeIndex(ev.Type))
	t.byID[ev.EngagementID] = m
}

// len is the number of events marked.
func (m marks) len() int { return len(m.types) }

// in reports whether event i (0-based) falls inside b.
func (m marks) in(i int, b bounds) bool { return m.at[2*i] <= b.occurred && m.at[2*i+1] <= b.recorded }

// occurred is event i's occurred_at.
func (m marks) occurred(i int) time.Time { return time.Unix(0, m.at[2*i]).UTC() }

// typ is event i's type.
func (m marks) typ(i int) domain.EventType {
	if k := int(m.types[i]); k < len(domain.EventTypes) {
		return domain.EventTypes[k]
	}
	return ""
}

// The times marked are exact between these years; a time outside them is
// marked as the smallest or largest integer, which still compares exactly
// with any bound between boundMin and boundMax.
const (
	markMinYear  = 1700
	markMaxYear  = 2250
	boundMinYear = 1701
	boundMaxYear = 2249
)

func nanos(t time.Time) int64 {
	switch y := t.Year(); {
	case y < markMinYear:
		return math.MinInt64
	case y > markMaxYear:
		return math.MaxInt64
	}
	return t.UnixNano()
}

// typeIndex is t's index in domain.EventTypes (the types folded are all
// there); 255 for anything else.
func typeIndex(t domain.EventType) uint8 {
	if i := slices.Index(domain.EventTypes, t); i >= 0 && i < math.MaxUint8 {
		return uint8(i)
	}
	return math.MaxUint8
}

// bounds is a window in the marks' integers: an event is inside when both
// of its marks are at or below them.
type bounds struct{ occurred, recorded int64 }

// boundsOf converts w; false when one of its bounds lies outside the years
// the marks compare exactly (the caller then replays from the stream).
func boundsOf(w domain.Window) (bounds, bool) {
	b := bounds{occurred: math.MaxInt64, recorded: math.MaxInt64}
	for _, x := range []struct {
		t   time.Time
		dst *int64
	}{{w.AsOf, &b.occurred}, {w.KnownAt, &b.recorded}} {
		if x.t.IsZero() {
			continue
		}
		if y := x.t.Year(); y < boundMinYear || y > boundMaxYear {
			return bounds{}, false
		}
		*x.dst = x.t.UnixNano()
	}
	return b, true
}

// within is what the marks say of one engagement within a window.
type within struct {
	// exists: its engagement.recorded, its first event, falls inside.
	exists bool
	// all: every event falls inside, so its state then is its state now.
	all bool
	// versions are the 1-based versions of the events inside (when not all).
	versions []int
	// last is its last change within the window.
	last LastChange
}

// within evaluates m against b; versions are gathered only when want.
func (m marks) within(b bounds, want bool) within {
	n := m.len()
	if n == 0 || !m.in(0, b) {
		return within{}
	}
	w := within{exists: true, all: true}
	for i := range n {
		if !m.in(i, b) {
			if w.all && want {
				w.versions = make([]int, i, n)
				for j := range i {
					w.versions[j] = j + 1
				}
			}
			w.all = false
			continue
		}
		if !w.all && want {
			w.versions = append(w.versions, i+1)
		}
		w.last.fold(domain.Event{Type: m.typ(i), OccurredAt: m.occurred(i)})
	}
	if w.all {
		w.versions = nil
	}
	return w
}

// savedTimeline is the marks of some engagements in the checkpoint, flat:
// engagement i's ids end at Ends[i] in IDs and its events at Counts[i] in
// Types (and twice that in At).
type savedTimeline struct {
	IDs    string
	Ends   []uint32
	Counts []uint32
	At     []int64
	Types  []uint8
}

// save takes the marks: Apply only appends beyond the lengths taken here.
func (t *timeline) save() saving {
	type one struct {
		id string
		m  marks
	}
	entries := make([]one, 0, len(t.byID))
	for id, m := range t.byID {
		entries = append(entries, one{id, marks{at: slices.Clip(m.at), types: slices.Clip(m.types)}})
	}
	return saving{parts: chunks(len(entries)), part: func(i int) any {
		start, end := chunk(i, len(entries))
		var part savedTimeline
		var ids strings.Builder
		for _, e := range entries[start:end] {
			ids.WriteString(e.id)
			part.Ends = append(part.Ends, uint32(ids.Len()))
			part.At = append(part.At, e.m.at...)
			part.Types = append(part.Types, e.m.types...)
			part.Counts = append(part.Counts, uint32(len(part.Types)))
		}
		part.IDs = ids.String()
		return part
	}}
}

// each calls fn with each engagement's marks, which share the part's
// arrays (clipped: appending to one copies it).
func (s *savedTimeline) each(fn func(id string, m marks)) error {
	if len(s.Counts) != len(s.Ends) || len(s.At) != 2*len(s.Types) {
		return errors.New("timeline of unequal lengths")
	}
	var start, from uint32
	for i, end := range s.Ends {
		to := s.Counts[i]
		if end < start || int(end) > len(s.IDs) || to < from || int(to) > len(s.Types) {
			return errors.New("timeline out of bounds")
		}
		fn(s.IDs[start:end], marks{at: s.At[2*from : 2*to : 2*to], types: s.Types[from:to:to]})
		start, from = end, to
	}
	return nil
}

func (t *timeline) load(n int) (loader, error) {
	return &timelineLoader{t: t, parts: make([]savedTimeline, n)}, nil
}

type timelineLoader struct {
	t     *timeline
	parts []savedTimeline
}

func (l *timelineLoader) decode(i int, b []byte) error {
	if err := decodePart(b, &l.parts[i]); err != nil {
		return err
	}
	return l.parts[i].each(func(string, marks) {})
}

func (l *timelineLoader) restore(uint64) {
	n := 0
	for _, part := range l.parts {
		n += len(part.Ends)
	}
	t := timeline{byID: make(map[string]marks, n)}
	for _, part := range l.parts {
		_ = part.each(func(id string, m marks) { // checked when decoded
			if m.len() > 0 {
				t.byID[id] = m
			}
		})
	}
	*l.t = t
}

// Mark is one event of an engagement on the time axis: its type and when it
// happened.
type Mark struct {
	Type       domain.EventType
	OccurredAt time.Time
}

// Marks lists the engagement's folded events inside w (all when w is zero),
// in history order, from memory: what a timeline is drawn from. It reads no
// event from the stream.
func (p *Projector) Marks(id string, w domain.Window) []Mark {
	b, ok := boundsOf(w)
	if !ok {
		b = bounds{occurred: math.MaxInt64, recorded: math.MaxInt64}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	m := p.timeline.byID[id]
	out := make([]Mark, 0, m.len())
	for i := range m.len() {
		if m.in(i, b) {
			out = append(out, Mark{Type: m.typ(i), OccurredAt: m.occurred(i)})
		}
	}
	return out
}
