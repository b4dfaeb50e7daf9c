package projections_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// skip advances the projector to seq with a message that does not decode,
// the cheapest way to move its applied sequence.
func skip(p *projections.Projector, seq uint64) {
	p.Handle(seq, domain.Event{}, errors.New("not an event"))
}

func TestWaitForWakesOnlyWaitersWhoseSequenceIsApplied(t *testing.T) {
	p := projections.New(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := map[uint64]chan error{2: make(chan error, 1), 4: make(chan error, 1)}
	waiting := make(chan uint64, len(done))
	projections.OnWait(p, func(seq uint64) { waiting <- seq })
	for seq, ch := range done {
		go func() { ch <- p.WaitFor(ctx, seq) }()
	}
	for range done {
		<-waiting // both wait before anything is applied
	}
	skip(p, 1)
	skip(p, 2)
	if err := <-done[2]; err != nil {
		t.Fatalf("waiting for 2 after 2 was applied: %v", err)
	}
	// Applying 2 woke its waiter (done[2] answered), and that alone.
	if w := projections.Waiting(p); !slices.Equal(w, []uint64{4}) {
		t.Fatalf("waiting for 4 ended at 2: still waiting for %v", w)
	}
	select {
	case err := <-done[4]:
		t.Fatalf("waiting for 4 ended at 2: %v", err)
	default:
	}
	skip(p, 4) // sequences may jump (messages of other subjects)
	if err := <-done[4]; err != nil {
		t.Fatalf("waiting for 4 after 4 was applied: %v", err)
	}
	if err := p.WaitFor(ctx, 3); err != nil {
		t.Fatalf("waiting for a sequence already applied: %v", err)
	}
}

func TestWaitForEndsWithItsContext(t *testing.T) {
	p := projections.New(nil)
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		err := p.WaitFor(ctx, 7)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitFor(7) on an empty projector = %v, want the deadline", err)
		}
	}
	// The abandoned waits are gone: reaching 7 later must not trip over them.
	skip(p, 7)
	if err := p.WaitFor(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
}
