package projections

import (
	"context"
	"fmt"
	"slices"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/iom-who/engagements/domain"
	"golang.org/x/sync/errgroup"
)

// The reads within a window (as_of, known_at) answered from the timeline:
// which engagements existed, which of their events fall inside and their
// last change come from memory; only the events inside are read from the
// stream, and none for an engagement whose events all fall inside (its
// state then is its state now). A window whose bounds lie outside the
// years the timeline compares exactly is replayed from the stream instead.

// fetchers is how many engagements a list page reads from the stream at once.
const fetchers = 8

// windowCache is how many events the reads within a window keep, by stream
// sequence, most recently used first: a stored event never changes (the
// stream denies deletes and purges, and corrected_by is added from the
// projection on every read), so the portfolio's pages as of one date and
// another, which fold the same engagements' events, read each from the
// stream once. At about 1 KB a decoded event, 16384 of them hold the
// events of the first pages of any portfolio in ~16 MB.
const windowCache = 1 << 14

func newWindowCache() *lru.Cache[uint64, domain.Event] {
	c, err := lru.New[uint64, domain.Event](windowCache)
	if err != nil {
		panic(err) // only for a size ≤ 0
	}
	return c
}

// fetchWindowed is fetch for the reads within a window: the events cached
// come from memory, the others are fetched (in one batch) and cached.
func (p *Projector) fetchWindowed(ctx context.Context, r Reader, cache *lru.Cache[uint64, domain.Event], seqs []uint64) ([]domain.Event, error) {
	out := make([]domain.Event, len(seqs))
	var missing []uint64
	var at []int
	for i, seq := range seqs {
		if ev, ok := cache.Get(seq); ok {
			out[i] = ev
			continue
		}
		missing, at = append(missing, seq), append(at, i)
	}
	if len(missing) > 0 {
		fetched, err := p.fetch(ctx, r, missing)
		if err != nil {
			return nil, err
		}
		for k, i := range at {
			out[i] = fetched[k]
			ev := fetched[k]
			ev.CorrectedBy = nil // added on every read, from the projection
			cache.Add(missing[k], ev)
		}
	}
	p.mu.RLock()
	for i := range out {
		out[i].CorrectedBy = nil
		if c := p.sequences.correctedBy[out[i].ID]; len(c) > 0 {
			out[i].CorrectedBy = slices.Clone(c)
		}
	}
	p.mu.RUnlock()
	return out, nil
}

// at is one engagement within a window, taken under the read lock: either
// its current state (a copy: every event falls inside) or the sequences of
// the events inside, to read and fold.
type at struct {
	id   string
	last LastChange
	e    *domain.Engagement
	// base, when set, is the state at the latest milestone inside the
	// window; seqs then holds only the events inside that follow it.
	base *domain.Engagement
	seqs []uint64
}

// atLocked is engagement id within b; exists is false when it did not
// exist then, ok false when the timeline does not know it. The caller
// holds the read lock.
func (p *Projector) atLocked(id string, b bounds) (a at, exists, ok bool) {
	m, ok := p.timeline.byID[id]
	en, cur := p.current.byID[id]
	h := p.sequences.history[id]
	if !ok || !cur || len(h) != m.len() {
		return at{}, false, false
	}
	w := m.within(b, true)
	if !w.exists {
		return at{}, false, true
	}
	a = at{id: id, last: w.last}
	if w.all {
		a.e = en.e.Clone()
		return a, true, true
	}
	from := 0
	if m, ok := p.milestones.best(id, b); ok {
		a.base, from = m.engagement(en.e), m.version
	}
	i, _ := slices.BinarySearch(w.versions, from+1)
	a.seqs = make([]uint64, len(w.versions)-i)
	for j, v := range w.versions[i:] {
		a.seqs[j] = h[v-1]
	}
	return a, true, true
}

// foldAt is the engagement's state within the window: its copy, or the
// events inside read from the stream and folded as domain.Replay does
// (from the milestone when there is one).
func (p *Projector) foldAt(ctx context.Context, r Reader, cache *lru.Cache[uint64, domain.Event], a *at) error {
	if a.e != nil {
		return nil
	}
	events, err := p.fetchWindowed(ctx, r, cache, a.seqs)
	if err != nil {
		return err
	}
	return a.fold(events)
}

// fold sets a.e to the state of a.base (or of nothing) with events, the
// events inside the window after it, folded as domain.Replay does.
func (a *at) fold(events []domain.Event) error {
	base := a.base
	if base == nil {
		base = &domain.Engagement{}
	}
	e, ok := domain.ReplayFrom(base, events, domain.Window{})
	if !ok {
		// The first event inside is its engagement.recorded, which folds.
		return fmt.Errorf("engagement %s within the window: %w", a.id, domain.ErrNotFound)
	}
	a.e = e
	return nil
}

// replayIndexed is replay answered from the timeline; ok is false when the
// timeline cannot answer (the caller replays from the stream).
func (p *Projector) replayIndexed(ctx context.Context, id string, b bounds) (*domain.Engagement, LastChange, bool, error) {
	p.mu.RLock()
	a, exists, ok := p.atLocked(id, b)
	_, known := p.sequences.history[id]
	r, cache := p.reader, p.windowed
	p.mu.RUnlock()
	switch {
	case !known:
		return nil, LastChange{}, true, fmt.Errorf("engagement %s: %w", id, domain.ErrNotFound)
	case !ok:
		return nil, LastChange{}, false, nil
	case !exists:
		return nil, LastChange{}, true, fmt.Errorf("engagement %s within the window: %w", id, domain.ErrNotFound)
	}
	if err := p.foldAt(ctx, r, cache, &a); err != nil {
		return nil, LastChange{}, true, err
	}
	return a.e, a.last, true, nil
}

// historyIndexed is History within b: only the events inside are read.
func (p *Projector) historyIndexed(ctx context.Context, id string, b bounds) ([]domain.Event, bool, error) {
	p.mu.RLock()
	m, ok := p.timeline.byID[id]
	h, known := p.sequences.history[id]
	r := p.reader
	var seqs []uint64
	if ok && len(h) == m.len() {
		for i := range m.len() {
			if m.in(i, b) {
				seqs = append(seqs, h[i])
			}
		}
	}
	exists := ok && m.len() > 0 && m.in(0, b)
	p.mu.RUnlock()
	switch {
	case !known:
		return nil, true, fmt.Errorf("engagement %s: %w", id, domain.ErrNotFound)
	case !ok || len(h) != m.len():
		return nil, false, nil
	case !exists:
		return nil, true, fmt.Errorf("engagement %s within the window: %w", id, domain.ErrNotFound)
	}
	events, err := p.fetch(ctx, r, seqs)
	return events, true, err
}

// historyPageIndexed is the windowed part of HistoryPage: the versions
// inside come from the timeline, and only the page's events are read.
func (p *Projector) historyPageIndexed(ctx context.Context, id string, q HistoryQuery, b bounds) (HistoryPage, bool, error) {
	p.mu.RLock()
	m, ok := p.timeline.byID[id]
	all := p.sequences.history[id]
	r := p.reader
	n := len(all)
	if !ok || m.len() != n {
		p.mu.RUnlock()
		return HistoryPage{}, false, nil
	}
	lo, hi := min(max(q.After, 0), n), n // versions lo+1 … hi
	if q.Before > 0 {
		hi = min(hi, q.Before-1)
	}
	hi = max(hi, lo)
	exists := n > 0 && m.in(0, b)
	var in []uint64
	for i := lo; i < hi && exists; i++ {
		if m.in(i, b) {
			in = append(in, all[i])
		}
	}
	p.mu.RUnlock()
	if !exists {
		return HistoryPage{}, true, fmt.Errorf("engagement %s within the window: %w", id, domain.ErrNotFound)
	}
	from, to := pageBounds(len(in), q.Limit, q.Newest)
	events, err := p.fetch(ctx, r, in[from:to])
	if err != nil {
		return HistoryPage{}, true, err
	}
	page := HistoryPage{Latest: n, Events: events}
	page.Older = from > 0 || lo > 0 // the first event is in the window
	page.Newer = to < len(in) || hi < n
	return page, true, nil
}

// listIndexed is List within b. Engagements are taken in id order from
// after f.After (a binary search), in batches of what the page still
// needs, under the read lock: those that did not exist then are skipped in
// memory; the others' states are folded outside it, a few at a time, and
// filtered. An unfiltered page reads the events inside the window of the
// engagements it shows, plus one (to know whether more follow), and no
// others.
func (p *Projector) listIndexed(ctx context.Context, f Filter, b bounds) (items []Listed, more bool, ok bool, err error) {
	after := f.After
	for {
		need := f.Limit + 1 - len(items)
		batch := make([]at, 0, need)
		p.mu.RLock()
		r, cache := p.reader, p.windowed
		order := p.current.order
		i, _ := slices.BinarySearch(order, after)
		for ; i < len(order) && len(batch) < need; i++ {
			id := order[i]
			if id <= after {
				continue
			}
			after = id
			if f.Kind != "" && p.current.byID[id].e.Kind() != f.Kind {
				continue // an engagement's kind never changes
			}
			a, exists, known := p.atLocked(id, b)
			if !known {
				p.mu.RUnlock()
				return nil, false, false, nil
			}
			if exists {
				batch = append(batch, a)
			}
		}
		exhausted := i >= len(order)
		p.mu.RUnlock()

		if err := p.foldAll(ctx, r, cache, batch); err != nil {
			return nil, false, true, err
		}
		for _, a := range batch {
			if !f.matches(a.e) {
				continue
			}
			if len(items) == f.Limit {
				return items, true, true, nil
			}
			items = append(items, Listed{Engagement: a.e, LastChange: a.last})
		}
		if exhausted {
			return items, false, true, nil
		}
	}
}

// foldAll folds the engagements of batch that need their events. With a
// BatchReader the events inside the window of all of them are read in one
// fetch (pipelined direct gets); otherwise a few engagements at a time,
// each reading its own.
func (p *Projector) foldAll(ctx context.Context, r Reader, cache *lru.Cache[uint64, domain.Event], batch []at) error {
	if _, ok := r.(BatchReader); !ok {
		var g errgroup.Group
		g.SetLimit(fetchers)
		for k := range batch {
			if batch[k].e == nil {
				g.Go(func() error { return p.foldAt(ctx, r, cache, &batch[k]) })
			}
		}
		return g.Wait()
	}
	var seqs []uint64
	for _, a := range batch {
		if a.e == nil {
			seqs = append(seqs, a.seqs...)
		}
	}
	events, err := p.fetchWindowed(ctx, r, cache, seqs)
	if err != nil {
		return err
	}
	for k := range batch {
		if batch[k].e != nil {
			continue
		}
		n := len(batch[k].seqs)
		if err := batch[k].fold(events[:n:n]); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}
