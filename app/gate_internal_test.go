package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

// An append waits at its engagement's gate while another is through; one
// whose context ends or that waits too long gives up (the latter with a
// conflict) and leaves nothing behind, and the gate is gone once the last
// append leaves.
func TestGates(t *testing.T) {
	var gs gates
	first, err := gs.enter(t.Context(), "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	other, err := gs.enter(t.Context(), "b", time.Minute)
	if err != nil {
		t.Fatalf("another engagement's gate: %v", err)
	}
	gs.leave("b", other)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := gs.enter(ctx, "a", time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("entering a busy gate with an ended context: %v, want context.Canceled", err)
	}
	if _, err := gs.enter(t.Context(), "a", time.Millisecond); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("queueing longer than allowed: %v, want domain.ErrConflict", err)
	}
	if g := gs.m["a"]; g == nil || g.users != 1 {
		t.Fatalf("after the ones that gave up, gate %+v, want one user", g)
	}

	entered := make(chan *gate)
	go func() {
		g, err := gs.enter(t.Context(), "a", time.Minute)
		if err != nil {
			t.Error(err)
		}
		entered <- g
	}()
	gs.leave("a", first)
	gs.leave("a", <-entered)
	if len(gs.m) != 0 {
		t.Errorf("%d gates left after every append left", len(gs.m))
	}
}

// An append through a gate nobody else uses allocates nothing once the
// gates have been used.
func TestGateAllocatesNothing(t *testing.T) {
	var gs gates
	id := "01a2354f-08f0-791a-9c65-7a67744c15c2"
	if n := testing.AllocsPerRun(100, func() {
		g, err := gs.enter(t.Context(), id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		gs.leave(id, g)
	}); n != 0 {
		t.Errorf("an uncontended gate allocates %v times", n)
	}
}
