package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Under SyncAlways (the default) concurrent appends are committed in
// batches; these tests append concurrently and check that every caller
// gets the answer its own append deserves.

// noted is an engagement.noted event for id, numbered n.
func noted(id string, n int) domain.Event {
	ev := newEvent(id)
	ev.Type, ev.Version = domain.EngagementNoted, n+1
	ev.Data = json.RawMessage(fmt.Sprintf(`{"note":"note %d"}`, n))
	return ev
}

// together runs f(0..n-1) in n goroutines released at once.
func together(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func TestGroupCommitManyWriters(t *testing.T) {
	s, _, js := newListeningStore(t)
	const writers, rounds = 64, 8
	type stored struct {
		seq uint64
		ev  domain.Event
	}
	results := make([][]stored, writers)
	together(writers, func(w int) {
		id := newID()
		expected := uint64(0)
		for n := range rounds {
			ev := noted(id, n)
			if n == 0 {
				ev = newEvent(id)
			}
			seq, dup, err := s.Append(t.Context(), ev, expected)
			if err != nil || dup {
				t.Errorf("writer %d round %d: Append(expected %d) = %d, dup %v, %v; want stored", w, n, expected, seq, dup, err)
				return
			}
			results[w] = append(results[w], stored{seq, ev})
			expected = seq
		}
	})

	seen := make(map[uint64]bool)
	batched := 0
	for w, rs := range results {
		for _, r := range rs {
			if seen[r.seq] {
				t.Errorf("writer %d: sequence %d returned twice", w, r.seq)
			}
			seen[r.seq] = true
			got, err := s.Event(t.Context(), r.seq)
			if err != nil {
				t.Fatalf("Event %d: %v", r.seq, err)
			}
			if got.ID != r.ev.ID || got.EngagementID != r.ev.EngagementID || got.Version != r.ev.Version {
				t.Errorf("writer %d: at %d is event %s (%s v%d), want %s (%s v%d)", w, r.seq,
					got.ID, got.EngagementID, got.Version, r.ev.ID, r.ev.EngagementID, r.ev.Version)
			}
			if rawMessage(t, js, r.seq).Header.Get("Nats-Batch-Id") != "" {
				batched++
			}
		}
	}
	if got := lastSequence(t, s); got != writers*rounds {
		t.Errorf("LastSequence = %d, want %d", got, writers*rounds)
	}
	// 64 writers at once leave enough waiting for batches; if none were
	// formed, group commit is not working.
	if batched == 0 {
		t.Error("no append was stored in an atomic batch")
	}
	t.Logf("%d of %d appends stored in batches", batched, writers*rounds)
}

func TestGroupCommitConflictsAmongValidAppends(t *testing.T) {
	s := newTestStore(t)
	const engagements = 48
	ids := make([]string, engagements)
	heads := make([]uint64, engagements)
	for i := range ids {
		ids[i] = newID()
		heads[i] = mustAppend(t, s, newEvent(ids[i]), 0)
	}
	for round := 1; round <= 4; round++ {
		// Every third append uses a stale sequence; they all arrive at once.
		stale := func(i int) bool { return (i+round)%3 == 0 }
		errs := make([]error, engagements)
		seqs := make([]uint64, engagements)
		before := lastSequence(t, s)
		together(engagements, func(i int) {
			expected := heads[i]
			if stale(i) {
				expected = heads[i] - 1
			}
			seqs[i], _, errs[i] = s.Append(t.Context(), noted(ids[i], round), expected)
		})
		valid := uint64(0)
		for i, err := range errs {
			switch {
			case stale(i) && !errors.Is(err, domain.ErrConflict):
				t.Errorf("round %d: stale append %d: %v, want ErrConflict", round, i, err)
			case !stale(i) && err != nil:
				t.Errorf("round %d: valid append %d: %v, want stored", round, i, err)
			case !stale(i):
				valid++
				heads[i] = seqs[i]
				if got, err := s.Event(t.Context(), seqs[i]); err != nil || got.EngagementID != ids[i] || got.Version != round+1 {
					t.Errorf("round %d: at %d is %s v%d (%v), want %s v%d", round, seqs[i], got.EngagementID, got.Version, err, ids[i], round+1)
				}
			}
		}
		if got := lastSequence(t, s); got != before+valid {
			t.Errorf("round %d: LastSequence = %d, want %d", round, got, before+valid)
		}
	}
}

func TestGroupCommitRepeatedKey(t *testing.T) {
	s := newTestStore(t)
	const retries = 24
	key := "req-" + newID()
	seqs := make([]uint64, retries)
	dups := make([]bool, retries)
	errs := make([]error, retries)
	before := lastSequence(t, s)
	// A retried create picks a new engagement id each time, so only the
	// key can tell the retries apart from new engagements.
	together(retries, func(i int) {
		ev := newEvent(newID())
		ev.IdempotencyKey = key
		seqs[i], dups[i], errs[i] = s.Append(t.Context(), ev, 0)
	})
	first := uint64(0)
	for i := range retries {
		if errs[i] != nil {
			t.Fatalf("retry %d: %v", i, errs[i])
		}
		if !dups[i] {
			if first != 0 {
				t.Fatalf("retries %d stored twice (at %d and %d)", i, first, seqs[i])
			}
			first = seqs[i]
		}
	}
	if first == 0 {
		t.Fatal("no retry was stored")
	}
	for i := range retries {
		if seqs[i] != first {
			t.Errorf("retry %d: sequence %d, want the stored one's %d", i, seqs[i], first)
		}
	}
	if got := lastSequence(t, s); got != before+1 {
		t.Errorf("LastSequence = %d, want %d", got, before+1)
	}
}

func TestGroupCommitSameEngagementTwice(t *testing.T) {
	s := newTestStore(t)
	const engagements = 32
	ids := make([]string, engagements)
	heads := make([]uint64, engagements)
	for i := range ids {
		ids[i] = newID()
		heads[i] = mustAppend(t, s, newEvent(ids[i]), 0)
	}
	before := lastSequence(t, s)
	errs := make([]error, 2*engagements)
	// Two writers per engagement, both with the right expected sequence.
	together(2*engagements, func(i int) {
		_, _, errs[i] = s.Append(t.Context(), noted(ids[i/2], i%2), heads[i/2])
	})
	for e := range engagements {
		wins := 0
		for _, err := range errs[2*e : 2*e+2] {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, domain.ErrConflict):
				t.Errorf("engagement %d: %v, want success or ErrConflict", e, err)
			}
		}
		if wins != 1 {
			t.Errorf("engagement %d: %d writers won, want exactly 1", e, wins)
		}
	}
	if got := lastSequence(t, s); got != before+engagements {
		t.Errorf("LastSequence = %d, want %d", got, before+engagements)
	}
}

func TestGroupCommitCloseWhileAppending(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(t.Context(), eventstore.Config{DataDir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	const writers = 64
	type stored struct {
		seq uint64
		id  string
	}
	acked := make([][]stored, writers)
	var started sync.WaitGroup
	started.Add(writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			id := newID()
			expected := uint64(0)
			for n := 0; ; n++ {
				ev := noted(id, n)
				if n == 0 {
					ev = newEvent(id)
				}
				seq, _, err := s.Append(context.Background(), ev, expected)
				if n == 0 {
					started.Done()
				}
				if err != nil {
					if !errors.Is(err, domain.ErrUnavailable) {
						t.Errorf("writer %d: %v, want ErrUnavailable once closed", w, err)
					}
					return
				}
				acked[w] = append(acked[w], stored{seq, ev.ID})
				expected = seq
			}
		})
	}
	started.Wait()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait() // every Append returned

	// What was acknowledged is there after a restart.
	s = openStore(t, eventstore.Config{DataDir: dir})
	n := 0
	for _, rs := range acked {
		for _, r := range rs {
			n++
			if got, err := s.Event(t.Context(), r.seq); err != nil || got.ID != r.id {
				t.Errorf("after reopening: at %d is %s (%v), want %s", r.seq, got.ID, err, r.id)
			}
		}
	}
	if n == 0 {
		t.Error("no append was acknowledged before Close")
	}
}

func TestOpenEnablesAtomicPublishOnAnExistingStream(t *testing.T) {
	dir := t.TempDir()
	cfg := eventstore.Config{DataDir: dir, NATSListen: "127.0.0.1:-1"}
	// A stream as an earlier version created it: no atomic batches.
	first, err := eventstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	nc, err := nats.Connect(first.ClientURL())
	if err != nil {
		first.Close()
		t.Fatalf("connect: %v", err)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		var stream jetstream.Stream
		if stream, err = js.Stream(t.Context(), eventstore.StreamName); err == nil {
			old := stream.CachedInfo().Config
			old.AllowAtomicPublish = false
			_, err = js.UpdateStream(t.Context(), old)
		}
	}
	nc.Close()
	first.Close()
	if err != nil {
		t.Fatalf("turn atomic publish off: %v", err)
	}

	s, _, js := newListeningStoreIn(t, dir)
	stream, err := js.Stream(t.Context(), eventstore.StreamName)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if !stream.CachedInfo().Config.AllowAtomicPublish {
		t.Fatal("AllowAtomicPublish = false after Open, want true")
	}
	// And batches work on it.
	together(32, func(int) {
		if _, _, err := s.Append(t.Context(), newEvent(newID()), 0); err != nil {
			t.Errorf("Append: %v", err)
		}
	})
	if got := lastSequence(t, s); got != 32 {
		t.Errorf("LastSequence = %d, want 32", got)
	}
}
