package projections

import (
	"cmp"
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

// Dated returns the open dated items (domain.View.Deadlines) of the
// engagements that f selects, by day, then engagement, then kind and ref.
// It reads the current state in memory under the read lock, using the kind
// and party indexes; every deadline kind the domain knows is included
// without more work here.
func (p *Projector) Dated(f DatedFilter) (items []DatedItem, more bool) {
	p.mu.RLock()
	ids := p.current.candidates(Filter{Kind: f.Kind, Party: f.Party})
	for _, id := range ids {
		en, ok := p.current.byID[id]
		if !ok {
			continue
		}
		e := en.e
		if f.Kind != "" && e.Kind() != f.Kind || f.Party != "" && !containsFold(e.Parties(), f.Party) {
			continue
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
	p.mu.RUnlock()
	slices.SortFunc(items, func(a, b DatedItem) int {
		return cmp.Or(strings.Compare(a.On, b.On), strings.Compare(a.EngagementID, b.EngagementID),
			strings.Compare(string(a.Deadline.Kind), string(b.Deadline.Kind)), strings.Compare(a.Ref, b.Ref))
	})
	if f.Limit > 0 && len(items) > f.Limit {
		return items[:f.Limit], true
	}
	return items, false
}
