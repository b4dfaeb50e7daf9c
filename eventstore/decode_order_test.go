package eventstore_test

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// TestReadDecodesInStreamOrder reads a stream of several decoding batches,
// with messages published around the API among them, through Read (whose
// workers decode batches in parallel) with one worker and with four, and
// checks each yielded message against the same sequence fetched and
// decoded on its own by Store.Message: the same events and errors, every
// sequence once, in stream order.
func TestReadDecodesInStreamOrder(t *testing.T) {
	s, _, js := newListeningStore(t)
	const events, engagements = 450, 7
	ids := make([]string, engagements)
	last := make([]uint64, engagements)
	for i := range ids {
		ids[i] = newID()
	}
	for i := range events {
		k := i % engagements
		if i%97 == 50 { // around the API: no hash header, so Read reports it unverified
			subject := fmt.Sprintf("engagements.agreement.%s.noted", ids[k])
			ack, err := js.Publish(t.Context(), eventstore.IntakeSubject(subject), []byte(`{"not":"an event"}`))
			if err != nil {
				t.Fatal(err)
			}
			last[k] = ack.Sequence // it moves the engagement's subject sequence too
			continue
		}
		ev := newEvent(ids[k])
		if last[k] > 0 {
			ev.Type, ev.Version, ev.Data = domain.EngagementNoted, 0, []byte(fmt.Sprintf(`{"note":"note %d"}`, i))
		}
		last[k] = mustAppend(t, s, ev, last[k])
	}
	total := lastSequence(t, s)
	for _, procs := range []int{1, 4} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			var seq uint64
			for m, err := range s.Read(t.Context(), 0, domain.Filter{}) {
				if err != nil {
					t.Fatalf("Read after %d: %v", seq, err)
				}
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
