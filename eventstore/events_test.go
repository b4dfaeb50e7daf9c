package eventstore_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// Events reads what Event reads, for more sequences than one chunk of
// pipelined direct gets, in the order asked (shuffled, with repeats).
func TestEventsMatchEvent(t *testing.T) {
	s := newTestStore(t)
	const n = 600 // more than one chunk (512)
	var seqs []uint64
	for range n {
		seqs = append(seqs, mustAppend(t, s, newEvent(newID()), 0))
	}
	asked := append(seqs, seqs[:40]...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(asked), func(i, j int) { asked[i], asked[j] = asked[j], asked[i] })
	got, err := s.Events(t.Context(), asked)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(got) != len(asked) {
		t.Fatalf("Events: %d events for %d sequences", len(got), len(asked))
	}
	for i, seq := range asked {
		want, err := s.Event(t.Context(), seq)
		if err != nil {
			t.Fatalf("Event(%d): %v", seq, err)
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Fatalf("Events[%d] (sequence %d) = %+v, Event = %+v", i, seq, got[i], want)
		}
	}
	if got, err := s.Events(t.Context(), nil); err != nil || len(got) != 0 {
		t.Fatalf("Events(none) = %d events, %v", len(got), err)
	}
}

// A sequence with no message, or a message that fails its check, fails
// the whole read as Event fails for it.
func TestEventsErrors(t *testing.T) {
	s, _, js := newListeningStore(t)
	first := mustAppend(t, s, newEvent(newID()), 0)
	id := newID()
	unhashed, err := eventstore.Encode(newEvent(id))
	if err != nil {
		t.Fatal(err)
	}
	forged := publishRaw(t, js, "engagements.agreement."+id+".recorded", unhashed)
	for _, tt := range []struct {
		name string
		seqs []uint64
		want error
	}{
		{"beyond the end", []uint64{first, forged + 5}, domain.ErrNotFound},
		{"sequence 0", []uint64{0, first}, domain.ErrNotFound},
		{"published around Append, without a hash", []uint64{first, forged}, eventstore.ErrUnverified},
		// Enough sequences to be split over the store's two connections:
		// the failure is in the second half.
		{"beyond the end, in a read split over two connections", append(slices.Repeat([]uint64{first}, 100), forged+5), domain.ErrNotFound},
		{"without a hash, in the first half of a split read", append([]uint64{forged}, slices.Repeat([]uint64{first}, 100)...), eventstore.ErrUnverified},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Events(t.Context(), tt.seqs); !errors.Is(err, tt.want) {
				t.Fatalf("Events(%v): err = %v, want %v", tt.seqs, err, tt.want)
			}
		})
	}
}
