package projections

import (
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
// engagements that f selects, by day, then engagement id, then as
// Deadlines orders them, from the index of deadlines by day that also
// answers Upcoming: every deadline kind the domain knows is included
// without more work here, and no engagement is scanned.
func (p *Projector) Dated(f DatedFilter) (items []DatedItem, more bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	p.eachDeadline("", f.Until, f.Kind, f.Party, func(id string, e *domain.Engagement, d domain.Deadline) bool {
		if f.Limit > 0 && len(items) == f.Limit {
			more = true
			return false
		}
		// Apply replaces the slices it changes, so the parties taken here
		// stay as they are after the lock is released.
		items = append(items, DatedItem{Deadline: d, EngagementID: id, Title: e.Title(), Kind: e.Kind(),
			Parties: e.Parties()})
		return true
	})
	return items, more
}
