package main

import (
	"context"
	"testing"

	"github.com/iom-who/engagements/eventstore"
	"go.uber.org/goleak"
)

// TestGenerateStoresAValidChain runs the generator the bench measures on,
// small, against a real embedded store: every event is stored (the stream's
// subjects are what appends use) and the chains verify, so the rebuild,
// restart and memory figures are taken on a stream the service accepts.
func TestGenerateStoresAValidChain(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: t.TempDir(), Sync: eventstore.SyncInterval})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ds, err := generate(ctx, store, 300, 30, nil)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	if ds.Events != 300 || len(ds.IDs) != 30 {
		t.Errorf("dataset: %d events over %d engagements, want 300 over 30", ds.Events, len(ds.IDs))
	}
	rep, err := store.Verify(ctx, nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !rep.OK || rep.Events != 300 || rep.Engagements != 30 {
		t.Errorf("verify: ok %v, %d events over %d engagements, problems %v", rep.OK, rep.Events, rep.Engagements, rep.Problems)
	}
}
