package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iom-who/engagements/domain"
)

// Source reads stored events in stream order, starting after a sequence;
// with f.Live it keeps following until ctx ends. eventstore.Store is one.
type Source interface {
	Read(ctx context.Context, after uint64, f domain.Filter) iter.Seq2[domain.Message, error]
}

// Result is what an append produced, remembered per idempotency key so a
// retried request gets the first answer.
type Result struct {
	EngagementID string
	EventID      string
	Type         domain.EventType
	Sequence     uint64
	Version      int
	// RecordedAt is when the first append was stored; keys are forgotten
	// some time after JetStream's duplicate window has passed.
	RecordedAt time.Time
}

// IdempotencyMemory is how long the projection remembers idempotency keys:
// longer than JetStream's 24 h duplicate window, so a key JetStream still
// knows is never one the projection has forgotten.
const IdempotencyMemory = 25 * time.Hour

// pruneEvery is how many folded events pass between prunings of old keys.
const pruneEvery = 4096

// Stats counts what the projector has seen.
type Stats struct {
	Applied     uint64 // last stream sequence handled
	Events      uint64 // events folded
	Rejected    uint64 // events that decoded but broke the domain rules
	Undecodable uint64 // messages that were not valid event envelopes
}

type set map[string]struct{}

// Reader fetches stored events by stream sequence, and walks the stream for
// the global log; eventstore.Store is one.
type Reader interface {
	Event(ctx context.Context, seq uint64) (domain.Event, error)
	Source
}

// Projector holds the read models. Its zero value is not usable; call New.
type Projector struct {
	log *slog.Logger

	mu       sync.RWMutex
	byID     map[string]*domain.Engagement
	history  map[string][]uint64 // engagement id → sequences of its folded events
	order    []string            // engagement ids, sorted (UUIDv7: creation order)
	byKind   map[domain.Kind]set
	byStatus map[domain.Status]set
	byParty  map[string]set
	byTag    map[string]set
	idem     map[string]Result
	lastSeq  map[string]uint64 // engagement id → sequence of its latest message
	// rejectedSeqs are the decodable messages the rules refused: the global
	// log, read from the stream, leaves them out (there are few).
	rejectedSeqs map[uint64]struct{}
	// correctedBy maps an event id to the ids of the corrections of it.
	correctedBy map[string][]string
	// lastEventID and lastEventSeq name the last folded event (checkpoints check it).
	lastEventID  string
	lastEventSeq uint64
	reader       Reader
	applied      uint64
	// waiters are the WaitFor calls still waiting, each woken (its channel
	// closed) only once applied reaches its sequence, not on every event.
	// waitMu guards them; it is taken inside mu, never the other way round.
	waitMu  sync.Mutex
	waiters []waiter

	// recent keeps the last applied events, oldest overwritten first, for the
	// live views; every event folded after recentFrom is in it.
	recent     [recentChanges]Change
	recentN    uint64 // events ever put in recent
	recentFrom uint64

	events, rejected, undecodable atomic.Uint64
	// frozen counts checkpoints encoding engagement states they took under
	// the lock; while it is positive Handle folds into copies, so the lock
	// is held only while the checkpoint copies pointers.
	frozen atomic.Int32
}

// New returns an empty projector.
func New(log *slog.Logger) *Projector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Projector{
		log:          log,
		byID:         make(map[string]*domain.Engagement),
		history:      make(map[string][]uint64),
		correctedBy:  make(map[string][]string),
		rejectedSeqs: make(map[uint64]struct{}),
		byKind:       make(map[domain.Kind]set),
		byStatus:     make(map[domain.Status]set),
		byParty:      make(map[string]set),
		byTag:        make(map[string]set),
		idem:         make(map[string]Result),
		lastSeq:      make(map[string]uint64),
	}
}

// UseReader sets where history and log reads fetch the events from.
func (p *Projector) UseReader(r Reader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reader = r
}

// Run follows src from the start until ctx ends, resubscribing after errors
// from where it stopped. It returns nil when ctx ends.
func (p *Projector) Run(ctx context.Context, src Source) error {
	backoff := 100 * time.Millisecond
	for {
		after := p.Applied()
		var err error
		for m, rerr := range src.Read(ctx, after, domain.Filter{Live: true}) {
			if rerr != nil {
				err = rerr
				break
			}
			p.Handle(m.Sequence, m.Event, m.Err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if p.Applied() > after {
			// It was working (a cluster node left, say): try again soon,
			// not after the longest wait an earlier outage reached.
			backoff = 100 * time.Millisecond
		}
		p.log.Warn("projection subscription ended; resubscribing", "after", p.Applied(), "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Handle folds one stream message. A message that does not decode or does not
// apply is logged and counted, and never stops later ones.
func (p *Projector) Handle(seq uint64, ev domain.Event, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq <= p.applied {
		return // already seen (a resubscription may repeat)
	}
	defer p.advance(seq)
	if err != nil {
		// A message published around the API still moves its engagement's
		// subject sequence (the store names the engagement when it can).
		if domain.CheckID(ev.EngagementID) == nil {
			p.lastSeq[ev.EngagementID] = seq
		}
		p.undecodable.Add(1)
		p.log.Warn("undecodable event skipped", "sequence", seq, "err", err)
		return
	}
	ev.Sequence = seq
	if domain.CheckID(ev.EngagementID) == nil {
		// Even an event the rules reject moves the engagement's subject
		// sequence, which the next append must name as expected.
		p.lastSeq[ev.EngagementID] = seq
	}
	e, ok := p.byID[ev.EngagementID]
	if !ok {
		e = &domain.Engagement{}
	} else if p.frozen.Load() > 0 {
		// A checkpoint is encoding the states it took: fold into a copy.
		e = e.Clone()
	}
	before := indexedOf(e)
	if err := e.Apply(ev); err != nil {
		p.rejected.Add(1)
		p.rejectedSeqs[seq] = struct{}{}
		p.log.Warn("event rejected by the domain rules", "sequence", seq, "type", ev.Type,
			"engagement", ev.EngagementID, "err", err)
		return
	}
	p.byID[ev.EngagementID] = e
	if !ok {
		i, _ := slices.BinarySearch(p.order, ev.EngagementID)
		p.order = slices.Insert(p.order, i, ev.EngagementID)
	}
	if after := indexedOf(e); !ok || !before.equal(after) {
		if ok {
			p.unindex(e.ID, before)
		}
		p.index(e.ID, after)
	}
	p.lastEventID, p.lastEventSeq = ev.ID, seq
	p.remember(Change{Sequence: seq, EngagementID: ev.EngagementID, Type: ev.Type, Actor: ev.Actor})
	p.history[ev.EngagementID] = append(p.history[ev.EngagementID], seq)
	if ev.Type == domain.EngagementCorrected {
		p.markCorrected(ev)
	}
	if ev.IdempotencyKey != "" {
		p.idem[ev.IdempotencyKey] = Result{EngagementID: ev.EngagementID, EventID: ev.ID, Type: ev.Type,
			Sequence: seq, Version: ev.Version, RecordedAt: ev.RecordedAt}
	}
	if p.events.Add(1)%pruneEvery == 0 {
		p.pruneKeys(ev.RecordedAt.Add(-IdempotencyMemory))
	}
}

// pruneKeys forgets idempotency keys first used before cutoff, so the map
// stays as large as a day's keyed writes, not all of history's.
func (p *Projector) pruneKeys(cutoff time.Time) {
	for k, r := range p.idem {
		if r.RecordedAt.Before(cutoff) {
			delete(p.idem, k)
		}
	}
}

// markCorrected notes the correction's id against the corrected event, so
// history shows the two side by side.
func (p *Projector) markCorrected(correction domain.Event) {
	var d struct {
		Corrects string `json:"corrects"`
	}
	if err := json.Unmarshal(correction.Data, &d); err != nil {
		return
	}
	p.correctedBy[d.Corrects] = append(p.correctedBy[d.Corrects], correction.ID)
}

// waiter is one WaitFor call: ch is closed once sequence seq is applied.
type waiter struct {
	seq uint64
	ch  chan struct{}
}

// advance records that seq is applied and wakes the waiters it satisfies.
// The caller holds mu for writing.
func (p *Projector) advance(seq uint64) {
	p.applied = seq
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	p.waiters = slices.DeleteFunc(p.waiters, func(w waiter) bool {
		if w.seq > seq {
			return false
		}
		close(w.ch)
		return true
	})
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
	return indexed{kind: e.Kind, status: e.Status, parties: e.Parties, tags: e.Tags}
}

func (a indexed) equal(b indexed) bool {
	return a.kind == b.kind && a.status == b.status && slices.Equal(a.parties, b.parties) && slices.Equal(a.tags, b.tags)
}

// index adds an engagement to the indexes; most events change none of
// what they hold, and Handle then leaves them alone.
func (p *Projector) index(id string, x indexed) {
	add(p.byKind, x.kind, id)
	add(p.byStatus, x.status, id)
	for _, party := range x.parties {
		add(p.byParty, strings.ToLower(party), id)
	}
	for _, tag := range x.tags {
		add(p.byTag, strings.ToLower(tag), id)
	}
}

func (p *Projector) unindex(id string, x indexed) {
	remove(p.byKind, x.kind, id)
	remove(p.byStatus, x.status, id)
	for _, party := range x.parties {
		remove(p.byParty, strings.ToLower(party), id)
	}
	for _, tag := range x.tags {
		remove(p.byTag, strings.ToLower(tag), id)
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

// Count is the number of engagements.
func (p *Projector) Count() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.byID)
}

// Applied is the last stream sequence the projector has handled.
func (p *Projector) Applied() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.applied
}

// Stats returns the projector's counters.
func (p *Projector) Stats() Stats {
	return Stats{Applied: p.Applied(), Events: p.events.Load(), Rejected: p.rejected.Load(),
		Undecodable: p.undecodable.Load()}
}

// WaitFor blocks until the projector has handled stream sequence seq, which
// gives a writer read-your-writes, or until ctx ends.
func (p *Projector) WaitFor(ctx context.Context, seq uint64) error {
	p.mu.RLock()
	if p.applied >= seq {
		p.mu.RUnlock()
		return nil
	}
	// Registered under mu, so no advance can slip in between the check and
	// the registration.
	w := waiter{seq: seq, ch: make(chan struct{})}
	p.waitMu.Lock()
	p.waiters = append(p.waiters, w)
	p.waitMu.Unlock()
	p.mu.RUnlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		p.waitMu.Lock()
		defer p.waitMu.Unlock()
		select {
		case <-w.ch:
			return nil // reached after all, just as ctx ended
		default:
		}
		p.waiters = slices.DeleteFunc(p.waiters, func(o waiter) bool { return o.ch == w.ch })
		return ctx.Err()
	}
}

// Get returns a copy of the engagement's current state.
func (p *Projector) Get(id string) (*domain.Engagement, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.byID[id]
	if !ok {
		return nil, false
	}
	return e.Clone(), true
}

// Read calls fn with the engagement's current state and the stream sequence
// of its latest message (the expected sequence of its next append), without
// copying the state as Get and State do. fn runs under the projector's read
// lock: it must be quick, must not change e or keep anything of it after it
// returns, and must not call the projector. Read reports whether the
// engagement exists; fn is called only when it does.
func (p *Projector) Read(id string, fn func(e *domain.Engagement, lastSeq uint64)) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.byID[id]
	if ok {
		fn(e, p.lastSeq[id])
	}
	return ok
}

// State returns a copy of the engagement's current state and the stream
// sequence of its latest message, the expected sequence of the next append.
func (p *Projector) State(id string) (*domain.Engagement, uint64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.byID[id]
	if !ok {
		return nil, 0, false
	}
	return e.Clone(), p.lastSeq[id], true
}

// History returns the engagement's events, oldest first, read from the
// stream. domain.ErrNotFound if there is no such engagement.
func (p *Projector) History(ctx context.Context, id string) ([]domain.Event, error) {
	return p.HistoryAt(ctx, id, domain.Window{})
}

// HistoryAt returns the engagement's events that fall in w, oldest first;
// domain.ErrNotFound if none do (the engagement did not exist yet). Only
// the sequences are kept in memory; the events are fetched from the stream.
func (p *Projector) HistoryAt(ctx context.Context, id string, w domain.Window) ([]domain.Event, error) {
	p.mu.RLock()
	seqs, ok := p.history[id]
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

// fetch reads events by sequence and adds corrected_by.
func (p *Projector) fetch(ctx context.Context, r Reader, seqs []uint64) ([]domain.Event, error) {
	if r == nil {
		return nil, errors.New("projections: no reader to fetch events from")
	}
	out := make([]domain.Event, 0, len(seqs))
	for _, seq := range seqs {
		ev, err := r.Event(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("event at sequence %d: %w", seq, err)
		}
		out = append(out, ev)
	}
	p.mu.RLock()
	for i := range out {
		if c := p.correctedBy[out[i].ID]; len(c) > 0 {
			out[i].CorrectedBy = slices.Clone(c)
		}
	}
	p.mu.RUnlock()
	return out, nil
}

// GetAt returns the engagement as it was within w: only the events in the
// window are folded. domain.ErrNotFound if it did not exist then.
func (p *Projector) GetAt(ctx context.Context, id string, w domain.Window) (*domain.Engagement, error) {
	if w.IsZero() {
		e, ok := p.Get(id)
		if !ok {
			return nil, fmt.Errorf("engagement %s: %w", id, domain.ErrNotFound)
		}
		return e, nil
	}
	h, err := p.History(ctx, id)
	if err != nil {
		return nil, err
	}
	e, ok := domain.Replay(h, w)
	if !ok {
		return nil, fmt.Errorf("engagement %s within the window: %w", id, domain.ErrNotFound)
	}
	return e, nil
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
	for m, err := range r.Read(ctx, f.After, domain.Filter{Selection: domain.Selection{Kind: f.Kind, Types: f.Types}}) {
		if err != nil {
			return nil, err
		}
		seq, ev := m.Sequence, m.Event
		if seq > applied {
			break
		}
		p.mu.RLock()
		_, rejected := p.rejectedSeqs[seq]
		if c := p.correctedBy[ev.ID]; m.Err == nil && len(c) > 0 {
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

// Change is one folded event as live views announce it.
type Change struct {
	Sequence     uint64
	EngagementID string
	Type         domain.EventType
	Actor        string
}

// recentChanges is how many of the latest folded events Recent keeps.
const recentChanges = 4096

// remember puts c in the ring of recent changes. The caller holds mu.
func (p *Projector) remember(c Change) {
	slot := &p.recent[p.recentN%recentChanges]
	if p.recentN >= recentChanges {
		p.recentFrom = slot.Sequence // what it overwrites is no longer kept
	}
	*slot = c
	p.recentN++
}

// Recent returns up to limit folded events after sequence after, in order,
// from memory, and true; or false when some of them are no longer (or, after
// a checkpoint was loaded, not) kept, and the caller must read the log.
func (p *Projector) Recent(after uint64, limit int) ([]Change, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if after < p.recentFrom {
		return nil, false
	}
	var out []Change
	for i := p.recentN - min(p.recentN, recentChanges); i < p.recentN && len(out) < limit; i++ {
		if c := p.recent[i%recentChanges]; c.Sequence > after {
			out = append(out, c)
		}
	}
	return out, true
}

// Idempotent returns the result of the append made with key, if any.
func (p *Projector) Idempotent(key string) (Result, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	r, ok := p.idem[key]
	return r, ok
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
	// folded from its events in the window only, and absent if it did not exist.
	Window domain.Window
}

// List returns one page of engagements in id order (creation order) and
// whether more follow, from memory; it ignores f.Window (see ListAt).
func (p *Projector) List(f Filter) (items []*domain.Engagement, more bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, id := range p.candidates(f) {
		if id <= f.After {
			continue
		}
		e := p.byID[id]
		if !f.matches(e) {
			continue
		}
		if len(items) == f.Limit {
			return items, true
		}
		items = append(items, e.Clone())
	}
	return items, false
}

// ListAt is List that also honours f.Window: each engagement is then folded
// from its events in the window, read from the stream.
func (p *Projector) ListAt(ctx context.Context, f Filter) (items []*domain.Engagement, more bool, err error) {
	if f.Window.IsZero() {
		items, more = p.List(f)
		return items, more, nil
	}
	p.mu.RLock()
	ids := slices.Clone(p.order)
	p.mu.RUnlock()
	for _, id := range ids {
		if id <= f.After {
			continue
		}
		e, err := p.GetAt(ctx, id, f.Window)
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
		items = append(items, e)
	}
	return items, false, nil
}

// matches applies the filter's predicates to one engagement.
func (f Filter) matches(e *domain.Engagement) bool {
	q := strings.ToLower(strings.TrimSpace(f.Q))
	return !(f.Kind != "" && e.Kind != f.Kind ||
		f.Status != "" && e.StatusAt(f.Now) != f.Status ||
		f.Party != "" && !containsFold(e.Parties, f.Party) ||
		f.Tag != "" && !containsFold(e.Tags, f.Tag) ||
		q != "" && !matches(e, q))
}

// candidates picks the smallest index that a filter names, sorted.
func (p *Projector) candidates(f Filter) []string {
	var sets []set
	if f.Kind != "" {
		sets = append(sets, p.byKind[f.Kind])
	}
	if f.Status != "" {
		s := p.byStatus[f.Status]
		if f.Status == domain.StatusExpired || f.Status == domain.StatusActive {
			// expiry is derived from the date, so both live under active.
			s = union(p.byStatus[domain.StatusActive], p.byStatus[domain.StatusExpired])
		}
		sets = append(sets, s)
	}
	if f.Party != "" {
		sets = append(sets, p.byParty[strings.ToLower(f.Party)])
	}
	if f.Tag != "" {
		sets = append(sets, p.byTag[strings.ToLower(f.Tag)])
	}
	if len(sets) == 0 {
		return p.order
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

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

func matches(e *domain.Engagement, q string) bool {
	if strings.Contains(strings.ToLower(e.Title), q) || strings.Contains(strings.ToLower(e.Description), q) {
		return true
	}
	for _, l := range [][]string{e.Parties, e.Tags} {
		for _, s := range l {
			if strings.Contains(strings.ToLower(s), q) {
				return true
			}
		}
	}
	return false
}
