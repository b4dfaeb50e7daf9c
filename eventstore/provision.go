package eventstore

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Error codes of JetStream's placement refusals that pass by themselves: a
// cluster that has just formed, or a peer that missed a heartbeat under
// load, refuses to place a new stream or bucket for a moment ("no suitable
// peers for placement, peer offline"; "JetStream system temporarily
// unavailable").
const (
	errCodeNoPeers      jetstream.ErrorCode = 10005
	errCodeClusterNotUp jetstream.ErrorCode = 10008
)

// provisionFor is how long Provision keeps trying.
const provisionFor = 30 * time.Second

// Provision runs create (a stream's or bucket's CreateOrUpdate) and tries
// again, with a growing pause, while JetStream refuses the placement for a
// reason that passes by itself, for up to 30 s or until ctx ends; any other
// error is returned at once. Every bucket and stream the service opens at
// start goes through it, so serve starting beside a cluster that is still
// settling does not fail.
func Provision[T any](ctx context.Context, create func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(provisionFor)
	pause := 100 * time.Millisecond
	for {
		v, err := create(ctx)
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) ||
			apiErr.ErrorCode != errCodeNoPeers && apiErr.ErrorCode != errCodeClusterNotUp || time.Now().After(deadline) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}
