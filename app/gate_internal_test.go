package app

import (
	"context"
	"errors"
	"testing"
)

// An append waits at its engagement's gate while another is through; one
// whose context ends meanwhile gives up and leaves nothing behind, and the
// gate is gone once the last append leaves.
func TestGates(t *testing.T) {
	var gs gates
	first, err := gs.enter(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := gs.enter(t.Context(), "b")
	if err != nil {
		t.Fatalf("another engagement's gate: %v", err)
	}
	gs.leave("b", other)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := gs.enter(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("entering a busy gate with an ended context: %v, want context.Canceled", err)
	}
	if g := gs.m["a"]; g == nil || g.users != 1 {
		t.Fatalf("after the one that gave up, gate %+v, want one user", g)
	}

	entered := make(chan *gate)
	go func() {
		g, err := gs.enter(t.Context(), "a")
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
