package projections

import "slices"

// OnWait sets f to be called whenever a WaitFor call starts waiting, so a
// test knows when it does.
func OnWait(p *Projector, f func(seq uint64)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onWait = f
}

// Waiting lists the sequences WaitFor calls are still waiting for, sorted.
func Waiting(p *Projector) []uint64 {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	var out []uint64
	for _, w := range p.waiters {
		out = append(out, w.seq)
	}
	slices.Sort(out)
	return out
}
