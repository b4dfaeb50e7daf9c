package app

import (
	"context"
	"math/rand/v2"
	"time"
)

// RetryPolicy says what an append without If-Match does when the stream
// refuses it because the engagement moved (domain.ErrConflict). An append
// with If-Match is never retried: the caller asked for that version only.
//
// A refusal is either a lost race (another append was stored: the retry
// starts from the caught-up state) or, on a clustered stream, an append
// still in flight (nothing stored yet). Either is retried, with pauses,
// for as long as Within allows; a count of attempts would not do: under
// sustained contention from many writers a writer may lose any number of
// races in a row.
type RetryPolicy struct {
	// Within bounds how long refusals are retried, from the first one,
	// and how long an append waits for the others queued on this instance
	// for its engagement; then ErrConflict (a 409).
	Within time.Duration
	// Backoff is the first pause between refusals; it doubles up to
	// MaxBackoff, and each pause is jittered to between half and all of it,
	// so that writers who lost to the same one do not all come back at
	// once. The first lost race of an append is retried at once.
	Backoff, MaxBackoff time.Duration
}

// DefaultRetry is the policy Service uses: refusals retried for up to 10 s,
// pausing 1 ms doubling to 32 ms, with jitter.
var DefaultRetry = RetryPolicy{
	Within:     10 * time.Second,
	Backoff:    time.Millisecond,
	MaxBackoff: 32 * time.Millisecond,
}

// pause is the n-th (from 0) pause between refusals.
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
