package eventstore_test

import (
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// A walk whose consumer goes away half-way (its server lost it, heartbeats
// missed on a starved machine) goes on from the last message it handed over:
// every message once, in order.
func TestWalkResumesAfterLosingItsConsumer(t *testing.T) {
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
	err = s.Walk(t.Context(), 0, "", nil, func(seq uint64, ev domain.Event, err error) error {
		if err != nil {
			t.Errorf("sequence %d: %v", seq, err)
		}
		seen = append(seen, seq)
		if len(seen) == n/4 || len(seen) == 3*n/4 {
			for name := range stream.ConsumerNames(t.Context()).Name() {
				if err := stream.DeleteConsumer(t.Context(), name); err != nil {
					t.Fatalf("delete consumer %s: %v", name, err)
				}
				deleted++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	if deleted < 2 {
		t.Fatalf("deleted %d consumers, want the walk's consumer twice", deleted)
	}
	if len(seen) != n {
		t.Fatalf("walk handed over %d messages, want %d", len(seen), n)
	}
	for i, seq := range seen {
		if seq != uint64(i+1) {
			t.Fatalf("message %d has sequence %d: repeated or skipped", i, seq)
		}
	}
}
