package stack_test

import (
	"testing"

	"github.com/iom-who/engagements/app/stack"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/tokens"
)

// Start refuses what it cannot wire: nothing without a store, and no web
// interface without a token store (every page needs a signed-in token) or
// a session store.
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
		{"pages without sessions", stack.Config{Store: store, Tokens: &tokens.Store{}, UI: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := stack.Start(tc.cfg); err == nil {
				_ = p.Close()
				t.Fatal("started")
			}
		})
	}
}
