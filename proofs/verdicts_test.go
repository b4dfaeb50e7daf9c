package proofs_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iom-who/engagements/projections"
	"github.com/iom-who/engagements/proofs"
	"github.com/nats-io/nats.go"
)

// TestVerdictsFromTheProjector signs a checkpoint of a stream holding an
// event the rules refuse, the event after it (which then does not follow
// its chain) and an undecodable message, once with the service's own
// chains and once asking a projector folded from the same stream: the two
// checkpoints must agree on everything they commit to.
func TestVerdictsFromTheProjector(t *testing.T) {
	f := newFixture(t)
	a, b := f.record(), f.record()
	f.note(a, "one")
	f.note(b, "two")
	f.note(b, "three")
	f.note(a, "four")
	f.rewrite(func(_ uint64, payload []byte) []byte {
		// An empty note: the chain hashes are recomputed, so it decodes
		// and checks out, but the rules refuse it.
		return bytes.Replace(payload, []byte(`"note":"two"`), []byte(`"note":""`), 1)
	})
	f.publishRaw(&nats.Msg{Subject: "engagements.agreement." + a + ".noted", Data: []byte(`{"forged":true}`)})

	proj := projections.New(nil)
	if err := proj.Fold(t.Context(), f.store, nil); err != nil {
		t.Fatalf("Fold: %v", err)
	}
	if st := proj.Stats(); st.Rejected != 2 || st.Undecodable != 1 {
		t.Fatalf("the projector folded %+v, want 2 rejected (the empty note and the one after it), 1 undecodable", st)
	}
	withVerdicts, err := proofs.Open(t.Context(), f.store, f.ledger, proofs.Config{Key: f.key, Verdicts: proj})
	if err != nil {
		t.Fatalf("proofs.Open: %v", err)
	}
	want := f.checkpoint()
	got, created, err := withVerdicts.Create(t.Context())
	if err != nil || !created {
		t.Fatalf("Create with verdicts: %v (created %v)", err, created)
	}
	if !sameCommitments(got, want) {
		t.Fatalf("with the projector's verdicts: %+v\nwith the service's own chains: %+v", got, want)
	}
	if want.Engagements != 2 {
		t.Fatalf("the checkpoint counts %d engagements, want 2", want.Engagements)
	}
	// Both checkpoints pass verification against the stream.
	if rep := onlineReport(t, f); len(rep.Problems) != 3 {
		t.Fatalf("verify: %d problems, want the 3 messages that do not continue their chains: %+v", len(rep.Problems), rep.Problems)
	}
}

// TestTreeGrowChangesNothing builds the same tree with and without room
// made beforehand (too little, then enough): roots and proofs agree at
// every size.
func TestTreeGrowChangesNothing(t *testing.T) {
	const n = 300
	plain, grown := proofs.NewTree(), proofs.NewTree()
	grown.Grow(100)
	for i := range n {
		if i == 150 {
			grown.Grow(n)
		}
		leaf := []byte{byte(i), byte(i >> 8)}
		if err := plain.Append(leaf); err != nil {
			t.Fatal(err)
		}
		if err := grown.Append(leaf); err != nil {
			t.Fatal(err)
		}
	}
	for size := uint64(1); size <= n; size++ {
		a, errA := plain.Root(size)
		b, errB := grown.Root(size)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Fatalf("root at %d: %x (%v) against %x (%v)", size, a, errA, b, errB)
		}
		pa, errA := plain.Inclusion(size/2, size)
		pb, errB := grown.Inclusion(size/2, size)
		if errA != nil || errB != nil || len(pa) != len(pb) {
			t.Fatalf("inclusion of %d at %d: %v, %v", size/2, size, errA, errB)
		}
		for i := range pa {
			if !bytes.Equal(pa[i], pb[i]) {
				t.Fatalf("inclusion of %d at %d differs at %d", size/2, size, i)
			}
		}
	}
}

// TestVerdictsNotYetThere: while the projection has not reached the end of
// the stream, signing waits for it until the caller's context ends, and
// signs once it has.
func TestVerdictsNotYetThere(t *testing.T) {
	f := newFixture(t)
	a := f.record()
	f.note(a, "one")
	proj := projections.New(nil)
	svc, err := proofs.Open(t.Context(), f.store, f.ledger, proofs.Config{Key: f.key, Verdicts: proj})
	if err != nil {
		t.Fatalf("proofs.Open: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := svc.Create(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Create before the projection caught up: %v, want the context's deadline", err)
	}
	if err := proj.Fold(t.Context(), f.store, nil); err != nil {
		t.Fatalf("Fold: %v", err)
	}
	cp, created, err := svc.Create(t.Context())
	if err != nil || !created || cp.Sequence != 2 || cp.Engagements != 1 {
		t.Fatalf("Create once caught up: %+v, created %v, %v", cp, created, err)
	}
}
