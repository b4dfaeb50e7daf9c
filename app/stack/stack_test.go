package stack_test

import (
	"testing"

	"github.com/iom-who/engagements/app/stack"
	"github.com/iom-who/engagements/eventstore"
)

// Start refuses what it cannot wire: nothing without a store, and no web
// interface without a token store (every page needs a signed-in token).
func TestStartRefusesAnIncompleteConfig(t *testing.T) {
	store, err := eventstore.Open(t.Context(), eventstore.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	for _, tc := range []struct {
		name string
		cfg  stack.Config
	}{
		{"no store", stack.Config{}},
		{"pages without tokens", stack.Config{Store: store, UI: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := stack.Start(tc.cfg); err == nil {
				_ = p.Close()
				t.Fatal("started")
			}
		})
	}
}
