package eventstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iom-who/engagements/eventstore"
)

// TestProvisionRetriesPlacement: the refusal JetStream answers while a
// cluster settles (10005 "no suitable peers for placement, peer offline",
// as TestClusterFailover once met at start under load) is tried again; any
// other error is returned at once, and so is the refusal when ctx ends.
func TestProvisionRetriesPlacement(t *testing.T) {
	noPeers := &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, peer offline"}
	attempts := 0
	v, err := eventstore.Provision(context.Background(), func(context.Context) (int, error) {
		if attempts++; attempts < 3 {
			return 0, noPeers
		}
		return 42, nil
	})
	if err != nil || v != 42 || attempts != 3 {
		t.Errorf("got %d, %v after %d attempts; want 42 after 3", v, err, attempts)
	}

	other := &jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use"}
	attempts = 0
	if _, err := eventstore.Provision(context.Background(), func(context.Context) (int, error) {
		attempts++
		return 0, other
	}); !errors.Is(err, other) || attempts != 1 {
		t.Errorf("another refusal: %v after %d attempts; want it at once", err, attempts)
	}

	ctx, cancel := context.WithCancel(context.Background())
	attempts = 0
	if _, err := eventstore.Provision(ctx, func(context.Context) (int, error) {
		if attempts++; attempts == 2 {
			cancel()
		}
		return 0, noPeers
	}); !errors.Is(err, noPeers) || attempts != 2 {
		t.Errorf("with ctx ended: %v after %d attempts", err, attempts)
	}
}
