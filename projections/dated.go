package projections

import (
	"slices"
	"strings"

	"github.com/iom-who/engagements/domain"
)

// DatedFilter selects the dated items Dated returns. Empty fields match
// everything.
type DatedFilter struct {
	// Kind is the engagement's kind.
	Kind domain.Kind
	// Party is one of the engagement's parties (case-insensitive).
	Party string
	// Until, a day (YYYY-MM-DD), leaves out the items after it; overdue
	// items (before today) are always in.
	Until string
	// Limit caps the items returned (the earliest are kept); 0: no cap.
	Limit int
}

// DatedItem is one open dated item of an engagement, with what a calendar
// or a list needs to name the engagement.
type DatedItem struct {
	domain.Deadline
	EngagementID string
	Title        string
	Kind         domain.Kind
	Parties      []string
}

// datedChunk is how many engagements Dated reads per hold of the read
// lock, so that a feed of a large portfolio never holds up the writes
// that fold new events for long.
const datedChunk = 512

// Dated returns the open dated items (domain.View.Deadlines) of the
// engagements that f selects, by day, then engagement id, then as
// Deadlines orders them.
// It reads the current state in memory, using the kind and party indexes;
// every deadline kind the domain knows is included without more work
// here. The engagements are read datedChunk at a time, each under the read
// lock: every engagement's items are as of one moment, the list as a whole
// is not one snapshot (an event folded meanwhile may or may not be in it).
func (p *Projector) Dated(f DatedFilter) (items []DatedItem, more bool) {
	visit := func(id string, en *entry) {
		e := en.e
		if f.Kind != "" && e.Kind() != f.Kind || f.Party != "" && !containsFold(e.Parties(), f.Party) {
			return
		}
		for _, d := range e.Deadlines() {
			if f.Until != "" && d.On > f.Until {
				continue
			}
			// Apply replaces the slices it changes, so the parties taken
			// here stay as they are after the lock is released.
			items = append(items, DatedItem{Deadline: d, EngagementID: id, Title: e.Title(), Kind: e.Kind(),
				Parties: e.Parties()})
		}
	}
	if f.Kind != "" || f.Party != "" {
		// The index's members, copied: read them chunk by chunk.
		p.mu.RLock()
		ids := p.current.candidates(Filter{Kind: f.Kind, Party: f.Party})
		p.mu.RUnlock()
		for len(ids) > 0 {
			n := min(datedChunk, len(ids))
			p.mu.RLock()
			for _, id := range ids[:n] {
				if en, ok := p.current.byID[id]; ok {
					visit(id, en)
				}
			}
			p.mu.RUnlock()
			ids = ids[n:]
		}
	} else {
		// Every engagement, in id order: each chunk starts after the last
		// id read, wherever Apply has moved it meanwhile.
		last := ""
		for done := false; !done; {
			p.mu.RLock()
			order := p.current.order
			i := 0
			if last != "" {
				i, _ = slices.BinarySearch(order, last)
				if i < len(order) && order[i] == last {
					i++
				}
			}
			end := min(i+datedChunk, len(order))
			for _, id := range order[i:end] {
				visit(id, p.current.byID[id])
			}
			if end > i {
				last = order[end-1]
			}
			done = end == len(order)
			p.mu.RUnlock()
		}
	}
	// Items were gathered in id order, each engagement's by day (as
	// Deadlines gives them): a stable sort by day alone keeps both orders.
	slices.SortStableFunc(items, func(a, b DatedItem) int { return strings.Compare(a.On, b.On) })
	if f.Limit > 0 && len(items) > f.Limit {
		return items[:f.Limit], true
	}
	return items, false
}
