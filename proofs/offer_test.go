package proofs_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

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
			if got.Sequence != want.Sequence || got.Root != want.Root || got.Head != want.Head ||
				got.HeadsRoot != want.HeadsRoot || got.Engagements != want.Engagements {
				t.Errorf("checkpoint %+v, want the one read from the stream: %+v", got, want)
			}
		})
	}
}
