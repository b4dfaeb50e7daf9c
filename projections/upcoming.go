package projections

import (
	"encoding/base64"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
)

// upcoming indexes every engagement's open deadlines (domain.Deadlines) by
// day, so that "what is coming" is answered by walking the days in order,
// not by scanning engagements. It is derived from current state alone: a
// checkpoint does not save it, loading one rebuilds it.
type upcoming struct {
	byID map[string][]domain.Deadline
	// byDay holds the engagements with a deadline on each day; days lists
	// those days, sorted (YYYY-MM-DD, or a partial date, which sorts as its
	// first day).
	byDay map[string]set
	days  []string
}

func newUpcoming() upcoming {
	return upcoming{byID: make(map[string][]domain.Deadline), byDay: make(map[string]set)}
}

// Apply sets e's deadlines; most events change none.
func (u *upcoming) Apply(e *domain.Engagement) {
	id := e.ID()
	old, now := u.byID[id], e.Deadlines()
	if slices.Equal(old, now) {
		return
	}
	for _, d := range old {
		if s, ok := u.byDay[d.On]; ok {
			delete(s, id)
			if len(s) == 0 {
				delete(u.byDay, d.On)
				if i, found := slices.BinarySearch(u.days, d.On); found {
					u.days = slices.Delete(u.days, i, i+1)
				}
			}
		}
	}
	if len(now) == 0 {
		delete(u.byID, id)
		return
	}
	u.byID[id] = now
	for _, d := range now {
		s, ok := u.byDay[d.On]
		if !ok {
			s = make(set)
			u.byDay[d.On] = s
			i, _ := slices.BinarySearch(u.days, d.On)
			u.days = slices.Insert(u.days, i, d.On)
		}
		s[id] = struct{}{}
	}
}

// rebuild indexes every engagement of c afresh (after a checkpoint loads).
func (u *upcoming) rebuild(c *current) {
	*u = newUpcoming()
	for _, en := range c.byID {
		u.Apply(en.e)
	}
}

// UpcomingQuery asks what is due up to Within days after Now, overdue
// items included.
type UpcomingQuery struct {
	// Now is the day to count from (UTC).
	Now time.Time
	// Within is how many days ahead to look.
	Within int
	// Kind, Party: the engagement's kind and one of its parties ("": any);
	// Type: the deadline's kind ("": any); Owner: an action item's owner
	// (case-insensitive; only action items match).
	Kind  domain.Kind
	Party string
	Type  domain.DeadlineKind
	Owner string
	// Limit is the most items to return; After resumes after a cursor.
	Limit int
	After string
}

// Upcoming is one dated item in the list, with its engagement.
type Upcoming struct {
	domain.Deadline
	EngagementID    string      `json:"engagement_id"`
	EngagementTitle string      `json:"engagement_title"`
	EngagementKind  domain.Kind `json:"engagement_kind"`
	DaysLeft        int         `json:"days_left"`
	Overdue         bool        `json:"overdue"`
}

// ErrBadCursor is an upcoming cursor this service did not make.
var ErrBadCursor = errors.New("not a cursor of this list")

// upcomingKey orders items: by day, then engagement, kind and ref.
func upcomingKey(on, id string, d domain.Deadline) string {
	return on + "\x00" + id + "\x00" + string(d.Kind) + "\x00" + d.Ref
}

// Upcoming lists the dated items due by q.Now + q.Within days, overdue
// first (they come first by date), then by date; next is the cursor of the
// following page, "" at the end.
func (p *Projector) Upcoming(q UpcomingQuery) (items []Upcoming, next string, err error) {
	var after string
	if q.After != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.After)
		if err != nil || strings.Count(string(b), "\x00") != 3 {
			return nil, "", ErrBadCursor
		}
		after = string(b)
	}
	today := q.Now.UTC().Truncate(24 * time.Hour)
	until := today.AddDate(0, 0, q.Within).Format(domain.DateLayout)
	p.mu.RLock()
	defer p.mu.RUnlock()
	day := ""
	if after != "" {
		day, _, _ = strings.Cut(after, "\x00")
	}
	p.eachDeadline(day, until, q.Kind, q.Party, func(id string, e *domain.Engagement, d domain.Deadline) bool {
		if q.Type != "" && d.Kind != q.Type ||
			q.Owner != "" && (d.Kind != domain.DeadlineAction || !strings.EqualFold(d.Owner, q.Owner)) {
			return true
		}
		if upcomingKey(d.On, id, d) <= after {
			return true
		}
		if len(items) == q.Limit {
			last := items[len(items)-1]
			next = base64.RawURLEncoding.EncodeToString([]byte(upcomingKey(last.On, last.EngagementID, last.Deadline)))
			return false
		}
		left := d.DaysLeft(q.Now)
		items = append(items, Upcoming{Deadline: d, EngagementID: id, EngagementTitle: e.Title(),
			EngagementKind: e.Kind(), DaysLeft: left, Overdue: left < 0})
		return true
	})
	return items, next, nil
}

// eachDeadline calls fn with each indexed deadline from day from (""
// the first) to until (""; no end), in day order, then engagement id,
// then as Deadlines orders them, of engagements of kind and with party
// ("": any), until fn returns false. The caller holds the read lock.
func (p *Projector) eachDeadline(from, until string, kind domain.Kind, party string,
	fn func(id string, e *domain.Engagement, d domain.Deadline) bool) {
	u := &p.upcoming
	start, _ := slices.BinarySearch(u.days, from)
	for _, day := range u.days[start:] {
		if until != "" && day > until { // a partial date sorts as its first day
			return
		}
		ids := make([]string, 0, len(u.byDay[day]))
		for id := range u.byDay[day] {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			en := p.current.byID[id]
			if en == nil || kind != "" && en.e.Kind() != kind || party != "" && !containsFold(en.e.Parties(), party) {
				continue
			}
			for _, d := range u.byID[id] {
				if d.On == day && !fn(id, en.e, d) {
					return
				}
			}
		}
	}
}

// WithDeadlines lists the ids of the engagements that have open deadlines
// now, from the upcoming index (no scan of engagements): soonest deadline
// first, each once.
func (p *Projector) WithDeadlines() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	ids := make([]string, 0, len(p.upcoming.byID))
	seen := make(set, len(p.upcoming.byID))
	for _, day := range p.upcoming.days {
		for _, id := range slices.Sorted(maps.Keys(p.upcoming.byDay[day])) {
			if _, ok := seen[id]; !ok {
				seen[id] = struct{}{}
				ids = append(ids, id)
			}
		}
	}
	return ids
}
