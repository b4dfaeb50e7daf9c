package eventstore_test

import (
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// A read to the end whose consumer goes away half-way (its server lost it,
// heartbeats missed on a starved machine) goes on from the last message it
// handed over: every message once, in order.
func TestReadResumesAfterLosingItsConsumer(t *testing.T) {
	s := openStore(t, eventstore.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1", Sync: eventstore.SyncInterval})
	_, js := connect(t, s)
	// Far enough apart that the second deletion finds the second consumer,
	// not the first one's messages still buffered on the way.
	const n = 6000
	for range n {
		mustAppend(t, s, newEvent(newID()), 0)
	}
	stream, err := js.Stream(t.Context(), eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	var seen []uint64
	deleted := 0
	for m, err := range s.Read(t.Context(), 0, domain.Filter{}) {
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if m.Err != nil {
			t.Errorf("sequence %d: %v", m.Sequence, m.Err)
		}
		seen = append(seen, m.Sequence)
		if len(seen) == n/4 || len(seen) == 3*n/4 {
			for name := range stream.ConsumerNames(t.Context()).Name() {
				if err := stream.DeleteConsumer(t.Context(), name); err != nil {
					t.Fatalf("delete consumer %s: %v", name, err)
				}
				deleted++
			}
		}
	}
	if deleted < 2 {
		t.Fatalf("deleted %d consumers, want the read's consumer twice", deleted)
	}
	if len(seen) != n {
		t.Fatalf("read handed over %d messages, want %d", len(seen), n)
	}
	for i, seq := range seen {
		if seq != uint64(i+1) {
			t.Fatalf("message %d has sequence %d: repeated or skipped", i, seq)
		}
	}
}
