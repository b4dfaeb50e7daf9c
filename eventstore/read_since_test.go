package eventstore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// between returns a time after everything stored so far and before
// anything stored next: the clock has moved past it when it returns (a
// spin of a microsecond or so, not a sleep).
func between() time.Time {
	t := time.Now()
	for !time.Now().After(t) {
	}
	return t
}

// storeAroundTime stores two events, takes a time, stores two more.
func storeAroundTime(t *testing.T, s *eventstore.Store) time.Time {
	t.Helper()
	mustAppend(t, s, newEvent(newID()), 0)
	mustAppend(t, s, newEvent(newID()), 0)
	at := between()
	mustAppend(t, s, newEvent(newID()), 0)
	mustAppend(t, s, newEvent(newID()), 0)
	return at
}

func TestReadSince(t *testing.T) {
	s := newTestStore(t)
	at := storeAroundTime(t, s)
	for _, tt := range []struct {
		name  string
		after uint64
		since time.Time
		want  []uint64
	}{
		{"since a time between appends → the later ones", 0, at, []uint64{3, 4}},
		{"since before the first → all", 0, at.Add(-time.Hour), []uint64{1, 2, 3, 4}},
		{"since after the last → none", 0, at.Add(time.Hour), nil},
		{"after a sequence wins over since", 1, at, []uint64{2, 3, 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := readAll(t, s, tt.after, domain.Filter{Since: tt.since}); !slices.Equal(got, tt.want) {
				t.Errorf("read %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadSinceLive(t *testing.T) {
	s := newTestStore(t)
	at := storeAroundTime(t, s)
	var got []uint64
	for m, err := range s.Read(t.Context(), 0, domain.Filter{Since: at, Live: true}) {
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got = append(got, m.Sequence)
		if len(got) == 2 {
			break
		}
	}
	if !slices.Equal(got, []uint64{3, 4}) {
		t.Errorf("live read since %v: %v, want [3 4]", at, got)
	}
}

func TestSequenceSince(t *testing.T) {
	s := newTestStore(t)
	if got, err := s.SequenceSince(t.Context(), time.Now()); err != nil || got != 1 {
		t.Errorf("empty stream: %d, %v; want 1", got, err)
	}
	at := storeAroundTime(t, s)
	for _, tt := range []struct {
		name  string
		since time.Time
		want  uint64
	}{
		{"a time between appends → the first after it", at, 3},
		{"before the first → 1", at.Add(-time.Hour), 1},
		{"after the last → the next sequence", at.Add(time.Hour), 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := s.SequenceSince(t.Context(), tt.since); err != nil || got != tt.want {
				t.Errorf("SequenceSince = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
