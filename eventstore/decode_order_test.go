package eventstore_test

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
)

// TestReadDecodesInStreamOrder reads a stream longer than the read-ahead,
// with messages published around the API among them, through Read (which
// decodes and hash-checks on a goroutine of its own, ahead of the caller) at
// GOMAXPROCS 1 and 4, and checks each yielded message against the same
// sequence fetched and decoded on its own by Store.Message: the same events
// and errors, every sequence once, in stream order; and the read models
// folded from Read with those folded from the messages fetched one by one.
// It is what a parallel decode or fold would have to keep passing.
func TestReadDecodesInStreamOrder(t *testing.T) {
	s, _, js := newListeningStore(t)
	const events, engagements = 1200, 7
	ids := make([]string, engagements)
	last := make([]uint64, engagements)
	versions := make([]int, engagements)
	heads := make([]string, engagements)
	for i := range ids {
		ids[i] = newID()
	}
	for i := range events {
		k := i % engagements
		if i%97 == 50 { // around the API, on an engagement of its own: Read reports it undecodable
			subject := fmt.Sprintf("engagements.agreement.%s.noted", newID())
			if _, err := js.Publish(t.Context(), eventstore.IntakeSubject(subject), []byte(`{"not":"an event"}`)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		ev := newEvent(ids[k])
		versions[k]++
		if versions[k] > 1 {
			ev.Type, ev.Version, ev.Data = domain.EngagementNoted, versions[k], []byte(fmt.Sprintf(`{"note":"note %d"}`, i))
		}
		ev.PrevHash = heads[k]
		last[k] = mustAppend(t, s, ev, last[k])
		m, err := s.Message(t.Context(), last[k])
		if err != nil {
			t.Fatal(err)
		}
		heads[k] = m.Hash
	}
	total := lastSequence(t, s)
	// The read models folded from Read and from each message fetched on its
	// own, one after the other, are the same.
	sequential := projections.New(nil)
	for seq := uint64(1); seq <= total; seq++ {
		m, err := s.Message(t.Context(), seq)
		if err != nil {
			t.Fatalf("Message(%d): %v", seq, err)
		}
		sequential.Handle(seq, m.Event, m.Err)
	}
	if st := sequential.Stats(); st.Undecodable == 0 || st.Events == 0 || st.Rejected != 0 {
		t.Fatalf("sequential fold: %+v, want events and undecodable messages, none rejected", st)
	}
	for _, procs := range []int{1, 4} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			var seq uint64
			parallel := projections.New(nil)
			defer func() {
				if got, want := parallel.Stats(), sequential.Stats(); got != want {
					t.Errorf("fold of Read: %+v, sequential fold: %+v", got, want)
				}
				for _, id := range ids {
					got, err := parallel.Get(t.Context(), id, domain.Window{})
					if err != nil {
						t.Fatal(err)
					}
					want, err := sequential.Get(t.Context(), id, domain.Window{})
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("engagement %s: fold of Read %+v, sequential fold %+v", id, got, want)
					}
				}
			}()
			for m, err := range s.Read(t.Context(), 0, domain.Filter{}) {
				if err != nil {
					t.Fatalf("Read after %d: %v", seq, err)
				}
				parallel.Handle(m.Sequence, m.Event, m.Err)
				seq++
				if m.Sequence != seq {
					t.Fatalf("Read yielded sequence %d, want %d", m.Sequence, seq)
				}
				want, err := s.Message(t.Context(), seq)
				if err != nil {
					t.Fatalf("Message(%d): %v", seq, err)
				}
				if !reflect.DeepEqual(m.Event, want.Event) || fmt.Sprint(m.Err) != fmt.Sprint(want.Err) ||
					m.Hash != want.Hash || m.PrevHash != want.PrevHash || m.Subject != want.Subject {
					t.Fatalf("sequence %d: Read gave %+v (err %v), Message gave %+v (err %v)", seq, m.Event, m.Err, want.Event, want.Err)
				}
			}
			if seq != total {
				t.Errorf("Read yielded %d messages, want %d", seq, total)
			}
		})
	}
}
