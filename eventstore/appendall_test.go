package eventstore_test

import (
	"errors"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// AppendAll hands appends for many engagements over together; each still
// gets the answer it would get from Append alone: stored, refused for a
// stale sequence, or a duplicate of the key's first append — whatever the
// others in the call come to.
func TestAppendAllAnswersEachAppend(t *testing.T) {
	for _, sync := range []eventstore.Sync{eventstore.SyncAlways, eventstore.SyncInterval} {
		t.Run(string(sync), func(t *testing.T) {
			s := openStore(t, eventstore.Config{DataDir: t.TempDir(), Sync: sync})
			const n = 60
			ids := make([]string, n)
			heads := make([]uint64, n)
			for i := range ids {
				ids[i] = newID()
				heads[i] = mustAppend(t, s, newEvent(ids[i]), 0)
			}
			// The key of engagement 1's append was used by a note before.
			used := noted(ids[1], 1)
			used.IdempotencyKey = "k-used"
			firstSeq := mustAppend(t, s, used, heads[1])
			heads[1] = firstSeq

			stale := func(i int) bool { return i%3 == 0 }
			evs := make([]domain.Event, n)
			expected := make([]uint64, n)
			for i := range evs {
				evs[i] = noted(ids[i], 2)
				expected[i] = heads[i]
				if stale(i) {
					expected[i] = heads[i] - 1
				}
			}
			evs[1].IdempotencyKey = "k-used"
			before := lastSequence(t, s)
			seqs, dups, errs := s.AppendAll(t.Context(), evs, expected)
			if len(seqs) != n || len(dups) != n || len(errs) != n {
				t.Fatalf("AppendAll answered %d/%d/%d of %d", len(seqs), len(dups), len(errs), n)
			}
			stored := 0
			for i := range evs {
				switch {
				case stale(i):
					if !errors.Is(errs[i], domain.ErrConflict) {
						t.Errorf("stale append %d: %v, want ErrConflict", i, errs[i])
					}
				case i == 1:
					if errs[i] != nil || !dups[i] || seqs[i] != firstSeq {
						t.Errorf("repeated key: seq %d, dup %v, %v; want the first's %d, dup", seqs[i], dups[i], errs[i], firstSeq)
					}
				default:
					if errs[i] != nil || dups[i] {
						t.Errorf("append %d: dup %v, %v; want stored", i, dups[i], errs[i])
						continue
					}
					stored++
					got, err := s.Event(t.Context(), seqs[i])
					if err != nil || got.ID != evs[i].ID || got.EngagementID != ids[i] {
						t.Errorf("append %d: at %d is %s of %s (%v), want %s of %s", i, seqs[i], got.ID, got.EngagementID, err, evs[i].ID, ids[i])
					}
				}
			}
			if got := lastSequence(t, s); got != before+uint64(stored) {
				t.Errorf("LastSequence = %d, want %d", got, before+uint64(stored))
			}
		})
	}
}
