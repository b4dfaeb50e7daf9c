package app

import (
	"testing"
	"time"
)

// The default policy pauses 1 ms doubling to 32 ms between in-flight
// refusals, each pause jittered to between half and all of it.
func TestDefaultRetryPauses(t *testing.T) {
	for _, tc := range []struct {
		n        int
		min, max time.Duration
	}{
		{0, 500 * time.Microsecond, time.Millisecond},
		{1, time.Millisecond, 2 * time.Millisecond},
		{4, 8 * time.Millisecond, 16 * time.Millisecond},
		{5, 16 * time.Millisecond, 32 * time.Millisecond},
		{1000, 16 * time.Millisecond, 32 * time.Millisecond},
	} {
		for range 100 {
			if d := DefaultRetry.pause(tc.n); d < tc.min || d > tc.max {
				t.Fatalf("pause %d is %v, want %v to %v", tc.n, d, tc.min, tc.max)
			}
		}
	}
}
