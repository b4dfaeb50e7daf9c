package projections

import (
	"errors"
	"fmt"

	"github.com/iom-who/engagements/domain"
)

// Change is one folded event as live views announce it.
type Change struct {
	Sequence     uint64
	EngagementID string
	Type         domain.EventType
	Actor        string
}

// recentChanges is how many of the latest folded events recent keeps.
const recentChanges = 4096

// recent is the read model of the last recentChanges folded events, oldest
// overwritten first, for the live views; every event folded after from is
// in it.
type recent struct {
	ring [recentChanges]Change
	n    uint64 // events ever put in ring
	from uint64
}

// Apply puts ev, folded at seq, in the ring.
func (r *recent) Apply(seq uint64, ev domain.Event) {
	slot := &r.ring[r.n%recentChanges]
	if r.n >= recentChanges {
		r.from = slot.Sequence // what it overwrites is no longer kept
	}
	*slot = Change{Sequence: seq, EngagementID: ev.EngagementID, Type: ev.Type, Actor: ev.Actor}
	r.n++
}

// after returns up to limit changes after sequence after, in order, and
// true; or false when some of them are no longer kept.
func (r *recent) after(after uint64, limit int) ([]Change, bool) {
	if after < r.from {
		return nil, false
	}
	var out []Change
	for i := r.n - min(r.n, recentChanges); i < r.n && len(out) < limit; i++ {
		if c := r.ring[i%recentChanges]; c.Sequence > after {
			out = append(out, c)
		}
	}
	return out, true
}

// save saves nothing: the ring starts empty after a restart, and a live
// view that asks about changes before it reads the log.
func (r *recent) save() saving { return saving{} }

func (r *recent) load(n int) (loader, error) {
	if n != 0 {
		return nil, fmt.Errorf("%d parts, want none", n)
	}
	return recentLoader{r}, nil
}

type recentLoader struct{ r *recent }

func (recentLoader) decode(int, []byte) error { return errors.New("no parts") }

// restore empties the ring: what came before applied is in the log, not
// in memory.
func (l recentLoader) restore(applied uint64) { *l.r = recent{from: applied} }
