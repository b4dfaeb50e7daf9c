package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream's own 503s (no quorum, no leader while a cluster elects one;
// two nodes down) are outages the client should retry, like a lost
// connection; other API errors are not. Every adapter on the store's
// connection (webhooks, tokens) uses this one rule.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no quorum", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{"wrapped 503", fmt.Errorf("create consumer: %w", &jetstream.APIError{Code: 503}), true},
		{"webhook failures read with no quorum", fmt.Errorf("read webhook failures: %w", &jetstream.APIError{Code: 503}), true},
		{"timeout", context.DeadlineExceeded, true},
		{"no responders", nats.ErrNoResponders, true},
		{"bad request", &jetstream.APIError{Code: 400, ErrorCode: 10052}, false},
		{"not found", &jetstream.APIError{Code: 404, ErrorCode: 10059}, false},
		{"cancelled", context.Canceled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(eventstore.Unavailable(tc.err), domain.ErrUnavailable); got != tc.want {
				t.Errorf("Unavailable(%v) is ErrUnavailable: %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
