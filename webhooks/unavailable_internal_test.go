package webhooks

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go/jetstream"
)

// The same rule as eventstore's: JetStream's 503s (no quorum with two
// nodes down) are outages to retry, other API errors are not.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{Code: 503, ErrorCode: 10008}, true},
		{fmt.Errorf("read webhook failures: %w", &jetstream.APIError{Code: 503}), true},
		{context.DeadlineExceeded, true},
		{&jetstream.APIError{Code: 404, ErrorCode: 10059}, false},
		{context.Canceled, false},
	} {
		if got := errors.Is(unavailable(tc.err), domain.ErrUnavailable); got != tc.want {
			t.Errorf("unavailable(%v) is ErrUnavailable: %v, want %v", tc.err, got, tc.want)
		}
	}
}
