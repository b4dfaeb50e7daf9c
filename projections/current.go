package projections

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iom-who/engagements/domain"
)

// LastChange is an engagement's latest change of substance in the world,
// as the portfolio shows it: the type and occurred_at of its folded event
// that occurred last, notes left out (a note says something about the
// engagement; it does not change it). Of events that occurred at the same
// instant the later in the stream wins.
type LastChange struct {
	Type       domain.EventType
	OccurredAt time.Time
	// Precision is the event's time precision (domain.PrecisionNone: the
	// record has no date; year and month in the current state only).
	Precision string
}

// fold makes ev the last change if it is one. Events come in stream order.
func (c *LastChange) fold(ev domain.Event) {
	if c.Type != "" && ev.Type == domain.EngagementNoted {
		return
	}
	if c.Type == "" || !ev.OccurredAt.Before(c.OccurredAt) {
		c.Type, c.OccurredAt, c.Precision = ev.Type, ev.OccurredAt, ev.TimePrecision
	}
}

// lastChangeOf is the last change of the events, in stream order, that fall in w.
func lastChangeOf(events []domain.Event, w domain.Window) LastChange {
	var c LastChange
	for _, ev := range events {
		if w.Contains(ev) {
			c.fold(ev)
		}
	}
	return c
}

type set map[string]struct{}

// entry is what current keeps of one engagement.
type entry struct {
	e    *domain.Engagement
	last LastChange
}

// current is the read model of every engagement's current state, with the
// indexes List uses and each engagement's last change.
type current struct {
	byID     map[string]*entry
	order    []string // engagement ids, sorted (UUIDv7: creation order)
	byKind   map[domain.Kind]set
	byStatus map[domain.Status]set
	byParty  map[string]set
	byTag    map[string]set
	// frozen counts checkpoints encoding engagement states they took under
	// the lock; while it is positive Apply folds into copies, so the lock
	// is held only while the checkpoint copies pointers.
	frozen *atomic.Int32
}

func newCurrent() current {
	return current{byID: make(map[string]*entry), byKind: make(map[domain.Kind]set),
		byStatus: make(map[domain.Status]set), byParty: make(map[string]set), byTag: make(map[string]set),
		frozen: new(atomic.Int32)}
}

// Apply folds ev, the message at seq, into its engagement; the domain's
// error if the rules refuse it, and then nothing changes.
func (c *current) Apply(seq uint64, ev domain.Event) error {
	en, ok := c.byID[ev.EngagementID]
	if !ok {
		en = &entry{e: &domain.Engagement{}}
	}
	e := en.e
	if ok && c.frozen.Load() > 0 {
		// A checkpoint is encoding the states it took: fold into a copy.
		e = e.Clone()
	}
	before := indexedOf(e)
	if err := e.Apply(ev); err != nil {
		return err
	}
	// The entry changes in place: a checkpoint took a copy of it.
	en.e = e
	en.last.fold(ev)
	if !ok {
		c.byID[ev.EngagementID] = en
		i, _ := slices.BinarySearch(c.order, ev.EngagementID)
		c.order = slices.Insert(c.order, i, ev.EngagementID)
	}
	if after := indexedOf(e); !ok || !before.equal(after) {
		if ok {
			c.unindex(e.ID(), before)
		}
		c.index(e.ID(), after)
	}
	return nil
}

// indexed is what the indexes know of an engagement. Apply replaces the
// slices rather than changing them, so a copy taken before Apply still
// holds the old values.
type indexed struct {
	kind    domain.Kind
	status  domain.Status
	parties []string
	tags    []string
}

func indexedOf(e *domain.Engagement) indexed {
	return indexed{kind: e.Kind(), status: e.Status(), parties: e.Parties(), tags: e.Tags()}
}

func (a indexed) equal(b indexed) bool {
	return a.kind == b.kind && a.status == b.status && slices.Equal(a.parties, b.parties) && slices.Equal(a.tags, b.tags)
}

// index adds an engagement to the indexes; most events change none of
// what they hold, and Apply then leaves them alone.
func (c *current) index(id string, x indexed) {
	add(c.byKind, x.kind, id)
	add(c.byStatus, x.status, id)
	for _, party := range x.parties {
		add(c.byParty, strings.ToLower(party), id)
	}
	for _, tag := range x.tags {
		add(c.byTag, strings.ToLower(tag), id)
	}
}

func (c *current) unindex(id string, x indexed) {
	remove(c.byKind, x.kind, id)
	remove(c.byStatus, x.status, id)
	for _, party := range x.parties {
		remove(c.byParty, strings.ToLower(party), id)
	}
	for _, tag := range x.tags {
		remove(c.byTag, strings.ToLower(tag), id)
	}
}

func add[K comparable](m map[K]set, k K, id string) {
	s, ok := m[k]
	if !ok {
		s = make(set)
		m[k] = s
	}
	s[id] = struct{}{}
}

func remove[K comparable](m map[K]set, k K, id string) {
	if s, ok := m[k]; ok {
		delete(s, id)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// indexAll fills the empty indexes with every engagement: the members of
// each set are gathered first, so each map is made once at its size.
func (c *current) indexAll(engagements []*domain.Engagement) {
	kinds := map[domain.Kind][]string{}
	statuses := map[domain.Status][]string{}
	parties := map[string][]string{}
	tags := map[string][]string{}
	for _, e := range engagements {
		kinds[e.Kind()] = append(kinds[e.Kind()], e.ID())
		statuses[e.Status()] = append(statuses[e.Status()], e.ID())
		for _, party := range e.Parties() {
			k := strings.ToLower(party)
			parties[k] = append(parties[k], e.ID())
		}
		for _, tag := range e.Tags() {
			k := strings.ToLower(tag)
			tags[k] = append(tags[k], e.ID())
		}
	}
	fill(c.byKind, kinds)
	fill(c.byStatus, statuses)
	fill(c.byParty, parties)
	fill(c.byTag, tags)
}

func fill[K comparable](index map[K]set, members map[K][]string) {
	for k, ids := range members {
		s := make(set, len(ids))
		for _, id := range ids {
			s[id] = struct{}{}
		}
		index[k] = s
	}
}

// candidates picks the smallest index that a filter names, sorted.
func (c *current) candidates(f Filter) []string {
	var sets []set
	if f.Kind != "" {
		sets = append(sets, c.byKind[f.Kind])
	}
	if f.Status != "" {
		s := c.byStatus[f.Status]
		if f.Status == domain.StatusExpired || f.Status == domain.StatusActive {
			// expiry is derived from the date, so both live under active.
			s = union(c.byStatus[domain.StatusActive], c.byStatus[domain.StatusExpired])
		}
		sets = append(sets, s)
	}
	if f.Party != "" {
		sets = append(sets, c.byParty[strings.ToLower(f.Party)])
	}
	if f.Tag != "" {
		sets = append(sets, c.byTag[strings.ToLower(f.Tag)])
	}
	if len(sets) == 0 {
		return c.order
	}
	smallest := sets[0]
	for _, s := range sets[1:] {
		if len(s) < len(smallest) {
			smallest = s
		}
	}
	ids := make([]string, 0, len(smallest))
	for id := range smallest {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func union(a, b set) set {
	out := make(set, len(a)+len(b))
	for id := range a {
		out[id] = struct{}{}
	}
	for id := range b {
		out[id] = struct{}{}
	}
	return out
}

// Filter selects engagements for List. Empty fields match everything.
type Filter struct {
	Kind   domain.Kind
	Status domain.Status
	Party  string
	Tag    string
	// Q is a case-insensitive text search in title, description, parties and tags.
	Q string
	// After is the id of the last engagement of the previous page.
	After string
	// Limit is the page size; it must be positive.
	Limit int
	// Now is the day statuses are derived for (an agreement past its expiry is expired).
	Now time.Time
	// Window, when set, lists the portfolio as it was: each engagement is
	// folded from its events in the window only, read from the stream, and
	// absent if it did not exist.
	Window domain.Window
}

// matches applies the filter's predicates to one engagement.
func (f Filter) matches(e *domain.Engagement) bool {
	q := strings.ToLower(strings.TrimSpace(f.Q))
	return !(f.Kind != "" && e.Kind() != f.Kind ||
		f.Status != "" && e.StatusAt(f.Now) != f.Status ||
		f.Party != "" && !containsFold(e.Parties(), f.Party) ||
		f.Tag != "" && !containsFold(e.Tags(), f.Tag) ||
		q != "" && !matches(e, q))
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

func matches(e *domain.Engagement, q string) bool {
	if strings.Contains(strings.ToLower(e.Title()), q) || strings.Contains(strings.ToLower(e.Description()), q) {
		return true
	}
	for _, l := range [][]string{e.Parties(), e.Tags()} {
		for _, s := range l {
			if strings.Contains(strings.ToLower(s), q) {
				return true
			}
		}
	}
	return false
}

// savedEngagement is one engagement in the checkpoint. Its last change is
// saved as seconds and nanoseconds (the stream's times are UTC): gob
// decodes a time.Time through an allocation of its own.
type savedEngagement struct {
	Snapshot      domain.EngagementSnapshot
	LastType      domain.EventType
	LastSec       int64
	LastNsec      int32
	LastPrecision string
}

// save takes the engagements in id order and freezes the model until they
// are encoded.
func (c *current) save() saving {
	c.frozen.Add(1)
	entries := make([]entry, len(c.order))
	for i, id := range c.order {
		entries[i] = *c.byID[id]
	}
	return saving{parts: chunks(len(entries)), done: func() { c.frozen.Add(-1) }, part: func(i int) any {
		start, end := chunk(i, len(entries))
		out := make([]savedEngagement, end-start)
		for j, en := range entries[start:end] {
			out[j] = savedEngagement{Snapshot: en.e.Snapshot(), LastType: en.last.Type,
				LastSec: en.last.OccurredAt.Unix(), LastNsec: int32(en.last.OccurredAt.Nanosecond()),
				LastPrecision: en.last.Precision}
		}
		return out
	}}
}

func (c *current) load(n int) (loader, error) {
	return &currentLoader{c: c, parts: make([][]entry, n)}, nil
}

// currentLoader restores the engagements of each part as it is decoded.
type currentLoader struct {
	c     *current
	parts [][]entry
}

func (l *currentLoader) decode(i int, b []byte) error {
	var saved []savedEngagement
	if err := decodePart(b, &saved); err != nil {
		return err
	}
	part := make([]entry, len(saved))
	for j, s := range saved {
		part[j] = entry{e: domain.Restore(s.Snapshot),
			last: LastChange{Type: s.LastType, OccurredAt: time.Unix(s.LastSec, int64(s.LastNsec)).UTC(),
				Precision: s.LastPrecision}}
	}
	l.parts[i] = part
	return nil
}

func (l *currentLoader) restore(uint64) {
	n := 0
	for _, part := range l.parts {
		n += len(part)
	}
	c := newCurrent()
	c.frozen = l.c.frozen
	c.byID = make(map[string]*entry, n)
	c.order = make([]string, 0, n)
	engagements := make([]*domain.Engagement, 0, n)
	for _, part := range l.parts {
		for _, en := range part {
			engagements = append(engagements, en.e)
			c.order = append(c.order, en.e.ID())
		}
	}
	// The indexes and the map by id are independent: build them side by side.
	var wg sync.WaitGroup
	wg.Go(func() { c.indexAll(engagements) })
	for _, part := range l.parts {
		for i := range part {
			c.byID[part[i].e.ID()] = &part[i]
		}
	}
	wg.Wait()
	if !slices.IsSorted(c.order) {
		slices.Sort(c.order)
	}
	*l.c = c
}
