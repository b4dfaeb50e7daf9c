package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go/jetstream"
)

// Refused writes. When the store cannot take writes — the file store is at
// the limit the embedded server set itself at start-up (75% of the disk's
// free space then), the disk is full, or a write failed and JetStream
// stopped writing — every append would wait for its timeout and then fail.
// Instead the store remembers the refusal: appends fail at once with
// domain.ErrUnavailable, appends already waiting are answered with it too,
// and WritesRefused says why (readiness). With the embedded server a
// watcher (watch.go) checks the server and the disk every probeInterval and
// heals the store once space is back; with an external server a refusal
// holds for refusalHold after the last refused write, and the next write
// tries again: the cluster heals itself.
const (
	// refusalHold is how long an external server's refusal is believed.
	refusalHold = 2 * time.Second
	// publishTimeout is the jetstream client's default, which bounds the
	// wait for a publish without a deadline; commitTimeout bounds a batch's.
	publishTimeout = 5 * time.Second
)

// RefusedError says why the store refuses writes. It wraps
// domain.ErrUnavailable: the client may retry later.
type RefusedError struct {
	// Reason is a sentence for operators ("the file store is at its limit").
	Reason string
}

func (e *RefusedError) Error() string { return "the event store refuses writes: " + e.Reason }

// Unwrap makes a refusal an outage.
func (e *RefusedError) Unwrap() error { return domain.ErrUnavailable }

// refusal is a refusal in force.
type refusal struct {
	err   *RefusedError
	until time.Time // zero: until the watcher clears it
}

// guard keeps the store's refusal and counts failed writes. Appends read it
// with one atomic load.
type guard struct {
	state    atomic.Pointer[refusal]
	failures atomic.Uint64

	// trip is cancelled, with the refusal as its cause, when a refusal
	// begins; appends waiting for an acknowledgement wait under it.
	mu   sync.Mutex
	trip atomic.Pointer[tripCtx]
	// poke asks the watcher to check now (a publish timed out).
	poke chan struct{}
}

type tripCtx struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newGuard() *guard {
	g := &guard{poke: make(chan struct{}, 1)}
	g.rearm()
	return g
}

// rearm installs a fresh trip context.
func (g *guard) rearm() {
	ctx, cancel := context.WithCancelCause(context.Background())
	g.trip.Store(&tripCtx{ctx, cancel})
}

// refused is the refusal in force, or nil.
func (g *guard) refused() *RefusedError {
	r := g.state.Load()
	if r == nil || (!r.until.IsZero() && time.Now().After(r.until)) {
		return nil
	}
	return r.err
}

// refuse puts a refusal in force, for hold or (hold 0) until clear. It
// reports whether none was in force before.
func (g *guard) refuse(reason string, hold time.Duration) bool {
	r := &refusal{err: &RefusedError{Reason: reason}}
	if hold > 0 {
		r.until = time.Now().Add(hold)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	began := g.refused() == nil
	g.state.Store(r)
	if began {
		t := g.trip.Load()
		t.cancel(r.err)
		g.rearm()
	}
	return began
}

// clear ends the refusal; it reports whether one was in force.
func (g *guard) clear() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	was := g.refused() != nil
	g.state.Store(nil)
	return was
}

// context is cancelled, with a *RefusedError as its cause, when the next
// refusal begins.
func (g *guard) context() context.Context { return g.trip.Load().ctx }

// refusedBy is the refusal that ended ctx, if one did.
func refusedBy(ctx context.Context) *RefusedError {
	var r *RefusedError
	if errors.As(context.Cause(ctx), &r) {
		return r
	}
	return nil
}

// refusalReason says whether a publish error is the store refusing writes
// (as opposed to a conflict, a lost connection or a slow answer), and why.
func refusalReason(err error) (string, bool) {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return "", false
	}
	switch apiErr.ErrorCode {
	case 10023: // JSInsufficientResourcesErr: the server's storage limit
		return fmt.Sprintf("JetStream has no storage left (%s)", apiErr.Description), true
	case 10047: // JSStorageResourcesExceededErr
		return fmt.Sprintf("JetStream's storage limit is exceeded (%s)", apiErr.Description), true
	case 10077: // JSStreamStoreFailedF: the file store failed a write
		return fmt.Sprintf("the file store failed a write (%s)", apiErr.Description), true
	case jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount:
		return "JetStream is disabled on the server", true
	}
	return "", false
}

// pokeWatcher asks the watcher, if there is one, to check at once.
func (g *guard) pokeWatcher() {
	select {
	case g.poke <- struct{}{}:
	default:
	}
}

// WritesRefused is nil while the store takes writes, else a *RefusedError
// that says why it does not.
func (s *Store) WritesRefused() error {
	if r := s.guard.refused(); r != nil {
		return r
	}
	return nil
}

// WriteFailures counts the appends that failed in the store (refused, timed
// out, lost with the connection) since it opened; conflicts and appends the
// caller gave up on are not counted.
func (s *Store) WriteFailures() uint64 { return s.guard.failures.Load() }

// failed records an append that failed with err: it counts it, and puts a
// refusal in force when the store refused it.
func (s *Store) failed(ctx context.Context, err error) {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // the caller gave up; not the store's failure
	}
	s.guard.failures.Add(1)
	var r *RefusedError
	if errors.As(err, &r) {
		return // already in force
	}
	if reason, ok := refusalReason(err); ok {
		hold := refusalHold
		if s.ns != nil {
			hold = 0 // the watcher knows when it ends
		}
		if s.guard.refuse(reason, hold) {
			s.log.Warn("the event store refuses writes", "reason", reason)
		}
	}
	if s.ns != nil {
		s.guard.pokeWatcher()
	}
}
