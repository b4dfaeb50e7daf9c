package projections

import (
	"slices"

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
	items = byDay(items)
	if f.Limit > 0 && len(items) > f.Limit {
		return items[:f.Limit], true
	}
	return items, false
}

// byDay sorts items by day, keeping the order they were gathered in (id
// order, each engagement's as Deadlines gives them) among items of one
// day. It sorts packed keys (the day as YYYYMMDD, then the position)
// rather than moving the items about: a calendar of tens of thousands of
// items sorts in milliseconds.
func byDay(items []DatedItem) []DatedItem {
	keys := make([]uint64, len(items))
	for i, it := range items {
		keys[i] = uint64(dayNumber(it.On))<<32 | uint64(i)
	}
	slices.Sort(keys)
	out := make([]DatedItem, len(items))
	for j, k := range keys {
		out[j] = items[uint32(k)]
	}
	return out
}

// dayNumber is YYYY-MM-DD as the number YYYYMMDD (0 for anything else,
// which the domain never stores).
func dayNumber(on string) uint32 {
	if len(on) != len(domain.DateLayout) || on[4] != '-' || on[7] != '-' {
		return 0
	}
	var n uint32
	for _, c := range on[:4] + on[5:7] + on[8:] {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint32(c-'0')
	}
	return n
}
