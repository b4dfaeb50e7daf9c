package proofs_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/proofs"
	"github.com/nats-io/nats.go"
)

// A catch-up that takes messages the projector offered signs the
// checkpoint one that reads the whole stream itself signs, however many of
// them were offered, in whatever runs: the same root, head and heads root.
func TestCheckpointFromOfferedMessages(t *testing.T) {
	f := newFixture(t)
	a := history(f)
	// One message published around the service: it does not verify,
	// and its leaf is computed, not read from a header.
	raw := nats.NewMsg("engagements.agreement." + a + ".engagement.noted")
	raw.Data = []byte(`{"specversion":"1.0"}`)
	f.publishRaw(raw)
	for i := range 6 {
		f.note(a, "more")
		if i%2 == 0 {
			f.note(f.record(), "new")
		}
	}
	var all []domain.Message
	for m, err := range f.store.Read(t.Context(), 0, domain.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m)
	}
	want := f.checkpoint() // read from the stream
	n := len(all)
	for _, tc := range []struct {
		name  string
		offer func(offer func(domain.Message))
	}{
		{"none offered", func(func(domain.Message)) {}},
		{"all offered", func(offer func(domain.Message)) {
			for _, m := range all {
				offer(m)
			}
		}},
		{"the last half offered", func(offer func(domain.Message)) {
			for _, m := range all[n/2:] {
				offer(m)
			}
		}},
		{"the first half offered (the projector behind)", func(offer func(domain.Message)) {
			for _, m := range all[:n/2] {
				offer(m)
			}
		}},
		{"a gap in the middle", func(offer func(domain.Message)) {
			for i, m := range all {
				if i < n/3 || i > n/2 {
					offer(m)
				}
			}
		}},
		{"repeated after a resubscription", func(offer func(domain.Message)) {
			for _, m := range all[:n/2] {
				offer(m)
			}
			for _, m := range all[n/4:] {
				offer(m)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, key, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := proofs.Open(t.Context(), f.store, f.ledger, proofs.Config{Key: key, EveryEvents: 1 << 30}) // offers kept: as with periodic checkpoints
			if err != nil {
				t.Fatal(err)
			}
			tc.offer(svc.Offer)
			got, _, err := svc.Create(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !sameCommitments(got, want) {
				t.Errorf("checkpoint %+v, want the one read from the stream: %+v", got, want)
			}
		})
	}
}

// countingStream counts the messages the service reads from the stream.
type countingStream struct {
	proofs.Stream
	read atomic.Int64
}

func (c *countingStream) Read(ctx context.Context, after uint64, f domain.Filter) iter.Seq2[domain.Message, error] {
	return func(yield func(domain.Message, error) bool) {
		for m, err := range c.Stream.Read(ctx, after, f) {
			c.read.Add(1)
			if !yield(m, err) {
				return
			}
		}
	}
}

// TestOfferedMessagesAbsorbedWhileRunning: messages offered in order from
// the stream's start are folded into the tree by Run as they come (as a
// first start's projector offers them), so that the checkpoint signed
// afterwards reads nothing from the stream, and is the one a read of the
// stream gives.
func TestOfferedMessagesAbsorbedWhileRunning(t *testing.T) {
	defer proofs.SetAbsorbAt(4)()
	f := newFixture(t)
	a := history(f)
	for range 10 {
		f.note(a, "more")
	}
	var all []domain.Message
	for m, err := range f.store.Read(t.Context(), 0, domain.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m)
	}
	want := f.checkpoint()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	src := &countingStream{Stream: f.store}
	svc, err := proofs.Open(t.Context(), src, f.ledger, proofs.Config{Key: key, EveryEvents: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, svc)
	for _, m := range all {
		svc.Offer(m)
	}
	// Absorbed in runs of at least 4: all but the last few.
	deadline := time.Now().Add(10 * time.Second)
	for svc.TreeSize() < uint64(len(all)-4) {
		if time.Now().After(deadline) {
			t.Fatalf("the tree holds %d of the %d messages offered", svc.TreeSize(), len(all))
		}
		time.Sleep(5 * time.Millisecond) // polls the tree, a real condition
	}
	got, _, err := svc.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !sameCommitments(got, want) {
		t.Errorf("checkpoint %+v, want the one read from the stream: %+v", got, want)
	}
	if n := src.read.Load(); n != 0 {
		t.Errorf("the service read %d messages from the stream; all were offered", n)
	}
}
