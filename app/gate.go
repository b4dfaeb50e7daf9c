package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/iom-who/engagements/domain"
)

// gates lets one append at a time through per engagement, in the order
// they came, on this instance. Appends to one engagement are serial anyway
// (each must expect the sequence of the one before), and without a queue
// the writers that lost a race all came back at once: under sustained
// contention a writer could lose any number of races in a row while the
// winners were whoever was quickest. Through a gate the retries are left
// to races with other instances.
type gates struct {
	mu sync.Mutex
	m  map[string]*gate
}

// gate is one engagement's: a channel holding a token while an append is
// through, and how many appends hold or wait for it.
type gate struct {
	token chan struct{}
	users int
}

// gatePool keeps gates for reuse: every append takes one.
var gatePool = sync.Pool{New: func() any { return &gate{token: make(chan struct{}, 1)} }}

// enter waits until the append to engagement id may go through, for at
// most wait (then ErrConflict: too many appends queue for it) or until ctx
// ends; a nil error must be followed by leave. Waiting appends go through
// in the order they came (a channel's blocked senders queue in order).
func (gs *gates) enter(ctx context.Context, id string, wait time.Duration) (*gate, error) {
	gs.mu.Lock()
	if gs.m == nil {
		gs.m = make(map[string]*gate)
	}
	g := gs.m[id]
	if g == nil {
		g = gatePool.Get().(*gate)
		gs.m[id] = g
	}
	g.users++
	gs.mu.Unlock()
	select {
	case g.token <- struct{}{}:
		return g, nil
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case g.token <- struct{}{}:
		return g, nil
	case <-ctx.Done():
		gs.release(id, g)
		return nil, ctx.Err()
	case <-t.C:
		gs.release(id, g)
		return nil, fmt.Errorf("engagement %s: other appends to it queued for longer than %v: %w", id, wait, domain.ErrConflict)
	}
}

// tryEnter lets the append to engagement id through if no other append to
// it holds or waits for the gate; otherwise it reports false and the
// caller goes through enter. A true result must be followed by leave.
func (gs *gates) tryEnter(id string) (*gate, bool) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.m == nil {
		gs.m = make(map[string]*gate)
	}
	if gs.m[id] != nil {
		return nil, false
	}
	g := gatePool.Get().(*gate)
	g.token <- struct{}{}
	g.users = 1
	gs.m[id] = g
	return g, true
}

// leave lets the next append to engagement id through.
func (gs *gates) leave(id string, g *gate) {
	<-g.token
	gs.release(id, g)
}

// release drops one user of g, and g itself once nobody uses it.
func (gs *gates) release(id string, g *gate) {
	gs.mu.Lock()
	g.users--
	if g.users == 0 {
		delete(gs.m, id)
		gatePool.Put(g)
	}
	gs.mu.Unlock()
}
