package projections

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/iom-who/engagements/domain"
)

// The reads of the read models. Each thing has one way to read it: an
// engagement in place (Read, for the command path and the hot GET) or as a
// copy (Get, which also folds it as it was within a window); a page of
// engagements (List); an engagement's history (History); the global log
// (Log); the latest changes (Recent); an idempotency key (Idempotent).

// Count is the number of engagements.
func (p *Projector) Count() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.current.byID)
}

// Read calls fn with the engagement's current state and the stream sequence
// of its latest message (the expected sequence of its next append), without
// copying the state as Get does. fn runs under the projector's read lock:
// it must be quick, must not change e or keep anything of it after it
// returns, and must not call the projector. Read reports whether the
// engagement exists; fn is called only when it does.
func (p *Projector) Read(id string, fn func(e *domain.Engagement, lastSeq uint64)) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	en, ok := p.current.byID[id]
	if ok {
		fn(en.e, p.sequences.last[id])
	}
	return ok
}

// Get returns a copy of the engagement as it is, or with a window set, as
// it was within w: then only the events in the window, read from the
// stream, are folded (none when they all are: see asof.go). domain.ErrNotFound if it does not (or did not then)
// exist.
func (p *Projector) Get(ctx context.Context, id string, w domain.Window) (*domain.Engagement, error) {
	if w.IsZero() {
		p.mu.RLock()
		en, ok := p.current.byID[id]
		p.mu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("engagement %s: %w", id, domain.ErrNotFound)
		}
		return en.e.Clone(), nil
	}
	e, _, err := p.replay(ctx, id, w)
	return e, err
}

// replay folds the engagement's events that fall in w, read from the
// stream, and finds their last change.
func (p *Projector) replay(ctx context.Context, id string, w domain.Window) (*domain.Engagement, LastChange, error) {
	if b, ok := boundsOf(w); ok {
		if e, last, ok, err := p.replayIndexed(ctx, id, b); ok {
			return e, last, err
		}
	}
	h, err := p.History(ctx, id, domain.Window{})
	if err != nil {
		return nil, LastChange{}, err
	}
	e, ok := domain.Replay(h, w)
	if !ok {
		return nil, LastChange{}, fmt.Errorf("engagement %s within the window: %w", id, domain.ErrNotFound)
	}
	return e, lastChangeOf(h, w), nil
}

// History returns the engagement's events, oldest first, or with a window
// set only those that fall in w; domain.ErrNotFound if there is no such
// engagement (or none do: it did not exist yet). Only the sequences are
// kept in memory; the events are fetched from the stream.
func (p *Projector) History(ctx context.Context, id string, w domain.Window) ([]domain.Event, error) {
	if b, ok := boundsOf(w); ok && !w.IsZero() {
		if events, ok, err := p.historyIndexed(ctx, id, b); ok {
			return events, err
		}
	}
	p.mu.RLock()
	seqs, ok := p.sequences.history[id]
	seqs = slices.Clone(seqs)
	r := p.reader
	p.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("engagement %s: %w", id, domain.ErrNotFound)
	}
	events, err := p.fetch(ctx, r, seqs)
	if err != nil {
		return nil, err
	}
	if w.IsZero() {
		return events, nil
	}
	out := events[:0]
	for _, ev := range events {
		if w.Contains(ev) {
			out = append(out, ev)
		}
	}
	if len(out) == 0 || out[0].Type != domain.EngagementRecorded {
		return nil, fmt.Errorf("engagement %s within the window: %w", id, domain.ErrNotFound)
	}
	return out, nil
}

// HistoryQuery selects a page of an engagement's history by version, the
// 1-based position of an event in it: the events after After and before
// Before (when positive), within Window, at most Limit of them (when
// positive): the oldest of the range, or with Newest the newest.
type HistoryQuery struct {
	Window        domain.Window
	After, Before int
	Limit         int
	Newest        bool
}

// HistoryPage is a page of an engagement's history, oldest first. Older and
// Newer report whether events come before and after it (within the window,
// except that with one Newer is set by any later event); Latest is the
// engagement's version (its number of events).
type HistoryPage struct {
	Events       []domain.Event
	Older, Newer bool
	Latest       int
}

// HistoryPage returns the page of the engagement's history q selects;
// domain.ErrNotFound if there is no such engagement or it did not exist
// within q.Window. Only the page's events are read from the stream: which
// events fall in a window is known from the timeline (with a bound outside
// its years, every event of the range is read, and the first one).
func (p *Projector) HistoryPage(ctx context.Context, id string, q HistoryQuery) (HistoryPage, error) {
	p.mu.RLock()
	all, ok := p.sequences.history[id]
	r := p.reader
	p.mu.RUnlock()
	if !ok {
		return HistoryPage{}, fmt.Errorf("engagement %s: %w", id, domain.ErrNotFound)
	}
	// Apply only appends beyond the length taken here: all[:n] stays put.
	n := len(all)
	lo, hi := min(max(q.After, 0), n), n // versions lo+1 … hi
	if q.Before > 0 {
		hi = min(hi, q.Before-1)
	}
	hi = max(hi, lo)
	page := HistoryPage{Latest: n}
	if q.Window.IsZero() {
		from, to := lo, hi
		if q.Limit > 0 && to-from > q.Limit {
			if q.Newest {
				from = to - q.Limit
			} else {
				to = from + q.Limit
			}
		}
		events, err := p.fetch(ctx, r, slices.Clone(all[from:to]))
		if err != nil {
			return HistoryPage{}, err
		}
		page.Events, page.Older, page.Newer = events, from > 0, to < n
		return page, nil
	}
	if b, ok := boundsOf(q.Window); ok {
		if page, ok, err := p.historyPageIndexed(ctx, id, q, b); ok {
			return page, err
		}
	}
	seqs := slices.Clone(all[lo:hi])
	if lo > 0 {
		seqs = append([]uint64{all[0]}, seqs...) // did it exist within the window?
	}
	events, err := p.fetch(ctx, r, seqs)
	if err != nil {
		return HistoryPage{}, err
	}
	if len(events) == 0 || !q.Window.Contains(events[0]) || events[0].Type != domain.EngagementRecorded {
		return HistoryPage{}, fmt.Errorf("engagement %s within the window: %w", id, domain.ErrNotFound)
	}
	if lo > 0 {
		events = events[1:]
	}
	in := events[:0]
	for _, ev := range events {
		if q.Window.Contains(ev) {
			in = append(in, ev)
		}
	}
	from, to := pageBounds(len(in), q.Limit, q.Newest)
	page.Events = in[from:to]
	page.Older = from > 0 || lo > 0 // the first event is in the window
	page.Newer = to < len(in) || hi < n
	return page, nil
}

// Events returns the events of engagement id that have the given ids, in
// history order, read from the stream; ids that are not its events are left
// out. Only current history is searched (no window).
func (p *Projector) Events(ctx context.Context, id string, ids ...string) ([]domain.Event, error) {
	p.mu.RLock()
	var seqs []uint64
	if en, ok := p.current.byID[id]; ok {
		h := p.sequences.history[id]
		for _, x := range ids {
			if v, ok := en.e.EventVersion(x); ok && v <= len(h) {
				seqs = append(seqs, h[v-1])
			}
		}
	}
	r := p.reader
	p.mu.RUnlock()
	slices.Sort(seqs)
	return p.fetch(ctx, r, slices.Compact(seqs))
}

// fetch reads events by sequence and adds corrected_by: the one place that
// reads events of an engagement from the stream.
func (p *Projector) fetch(ctx context.Context, r Reader, seqs []uint64) ([]domain.Event, error) {
	if r == nil {
		return nil, errors.New("projections: no reader to fetch events from")
	}
	var out []domain.Event
	if b, ok := r.(BatchReader); ok && len(seqs) > 1 {
		var err error
		if out, err = b.Events(ctx, seqs); err != nil {
			return nil, err
		}
	} else {
		out = make([]domain.Event, 0, len(seqs))
		for _, seq := range seqs {
			ev, err := r.Event(ctx, seq)
			if err != nil {
				return nil, fmt.Errorf("event at sequence %d: %w", seq, err)
			}
			out = append(out, ev)
		}
	}
	p.mu.RLock()
	for i := range out {
		if c := p.sequences.correctedBy[out[i].ID]; len(c) > 0 {
			out[i].CorrectedBy = slices.Clone(c)
		}
	}
	p.mu.RUnlock()
	return out, nil
}

// Listed is one engagement of a List page (a copy) with its last change.
type Listed struct {
	*domain.Engagement
	LastChange LastChange
}

// List returns one page of engagements in id order (creation order) and
// whether more follow. Without f.Window it reads memory only; with it,
// each engagement shown is folded from its events in the window, read from
// the stream (none of an engagement whose events all fall inside; see
// listIndexed).
func (p *Projector) List(ctx context.Context, f Filter) (items []Listed, more bool, err error) {
	if !f.Window.IsZero() {
		return p.listAt(ctx, f)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, id := range p.current.candidates(f) {
		if id <= f.After {
			continue
		}
		en := p.current.byID[id]
		if !f.matches(en.e) {
			continue
		}
		if len(items) == f.Limit {
			return items, true, nil
		}
		items = append(items, Listed{Engagement: en.e.Clone(), LastChange: en.last})
	}
	return items, false, nil
}

// listAt is List within f.Window.
func (p *Projector) listAt(ctx context.Context, f Filter) (items []Listed, more bool, err error) {
	if b, ok := boundsOf(f.Window); ok {
		if items, more, ok, err := p.listIndexed(ctx, f, b); ok {
			return items, more, err
		}
	}
	p.mu.RLock()
	ids := slices.Clone(p.current.order)
	p.mu.RUnlock()
	for _, id := range ids {
		if id <= f.After {
			continue
		}
		e, last, err := p.replay(ctx, id, f.Window)
		if errors.Is(err, domain.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if !f.matches(e) {
			continue
		}
		if len(items) == f.Limit {
			return items, true, nil
		}
		items = append(items, Listed{Engagement: e, LastChange: last})
	}
	return items, false, nil
}

// LogFilter selects events of the global log.
type LogFilter struct {
	// After is the stream sequence to start after.
	After uint64
	// Limit is the page size; it must be positive.
	Limit int
	// Types, when not empty, are the event types to include.
	Types []domain.EventType
	Kind  domain.Kind
}

// Log returns up to f.Limit folded events in stream order after f.After,
// read from the stream (nothing of them is kept in memory): messages that did
// not decode or that the rules refused are left out, and so is anything the
// projection has not applied yet.
func (p *Projector) Log(ctx context.Context, f LogFilter) ([]domain.Event, error) {
	p.mu.RLock()
	r, applied := p.reader, p.applied
	p.mu.RUnlock()
	if r == nil {
		return nil, errors.New("projections: no reader to fetch events from")
	}
	var out []domain.Event
	if f.After >= applied {
		return out, nil
	}
	for m, err := range p.read(ctx, r, f) {
		if err != nil {
			return nil, err
		}
		seq, ev := m.Sequence, m.Event
		if seq > applied {
			break
		}
		p.mu.RLock()
		_, rejected := p.sequences.rejected[seq]
		if c := p.sequences.correctedBy[ev.ID]; m.Err == nil && len(c) > 0 {
			ev.CorrectedBy = slices.Clone(c)
		}
		p.mu.RUnlock()
		if m.Err != nil || rejected {
			continue
		}
		out = append(out, ev)
		if len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// read returns the stream's messages after f.After of f's kind and types:
// the one place that reads the stored stream for the log.
func (p *Projector) read(ctx context.Context, r Reader, f LogFilter) iter.Seq2[domain.Message, error] {
	return r.Read(ctx, f.After, domain.Filter{Selection: domain.Selection{Kind: f.Kind, Types: f.Types}})
}

// Recent returns up to limit folded events after sequence after, in order,
// from memory, and true; or false when some of them are no longer (or, after
// a checkpoint was loaded, not) kept, and the caller must read the log.
func (p *Projector) Recent(after uint64, limit int) ([]Change, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.recent.after(after, limit)
}

// Idempotent returns the result of the append made with key, if any.
func (p *Projector) Idempotent(key string) (Result, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	r, ok := p.keys.results[key]
	return r, ok
}

// pageBounds is the part [from, to) of n entries a page of at most limit
// shows (all when limit is 0): the first ones, or the last ones when newest.
func pageBounds(n, limit int, newest bool) (from, to int) {
	from, to = 0, n
	if limit > 0 && n > limit {
		if newest {
			from = n - limit
		} else {
			to = limit
		}
	}
	return from, to
}
