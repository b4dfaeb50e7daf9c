package app

import (
	"context"
	"math/rand/v2"
	"time"
)

// RetryPolicy says what an append without If-Match does when the stream
// refuses it because the engagement moved (domain.ErrConflict). An append
// with If-Match is never retried: the caller asked for that version only.
type RetryPolicy struct {
	// Attempts bounds how often an append is tried after losing races to
	// other writers. Each lost race means another append was stored and the
	// retry starts from the caught-up state, so N concurrent writers need at
	// most N attempts; the bound only stops a writer from starving forever
	// under sustained contention (then ErrConflict, a 409).
	Attempts int
	// InFlightWait bounds how long refusals that stored nothing are waited
	// out. A clustered stream refuses at once, rather than queue, while
	// another append to the engagement is still in flight; such a refusal
	// does not spend an attempt.
	InFlightWait time.Duration
	// Backoff is the first pause between in-flight refusals; it doubles up
	// to MaxBackoff, and each pause is jittered to between half and all of
	// it.
	Backoff, MaxBackoff time.Duration
}

// DefaultRetry is the policy Service uses: 100 attempts; in-flight refusals
// waited out for up to 10 s, pausing 1 ms doubling to 32 ms, with jitter.
var DefaultRetry = RetryPolicy{
	Attempts:     100,
	InFlightWait: 10 * time.Second,
	Backoff:      time.Millisecond,
	MaxBackoff:   32 * time.Millisecond,
}

// pause is the n-th (from 0) pause between in-flight refusals.
func (p RetryPolicy) pause(n int) time.Duration {
	d := p.Backoff
	for ; n > 0 && d < p.MaxBackoff; n-- {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
