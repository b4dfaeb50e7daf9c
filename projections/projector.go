package projections

import (
	"context"
	"iter"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/iom-who/engagements/domain"
)

// Source reads stored events in stream order, starting after a sequence;
// with f.Live it keeps following until ctx ends. eventstore.Store is one.
type Source interface {
	Read(ctx context.Context, after uint64, f domain.Filter) iter.Seq2[domain.Message, error]
}

// Reader fetches stored events by stream sequence, and reads the stream for
// the global log; eventstore.Store is one.
type Reader interface {
	EventReader
	Source
}

// EventReader fetches one stored event by stream sequence; eventstore.Store
// is one. LoadCheckpoint asks it whether a checkpoint belongs to the stream.
type EventReader interface {
	Event(ctx context.Context, seq uint64) (domain.Event, error)
}

// BatchReader fetches many stored events by stream sequence at once, in
// the order asked; eventstore.Store is one (Events pipelines the direct
// gets). A Reader that is one serves the reads within a window, which fetch
// a few hundred scattered events a page, with it instead of event by event.
type BatchReader interface {
	Events(ctx context.Context, seqs []uint64) ([]domain.Event, error)
}

// Stats counts what the projector has seen.
type Stats struct {
	Applied     uint64 // last stream sequence handled
	Events      uint64 // events folded
	Rejected    uint64 // events that decoded but broke the domain rules
	Undecodable uint64 // messages that were not valid event envelopes
}

// Projector runs the read models: it folds each stream message into every
// one of them under one lock, knows how far it has applied the stream, and
// saves and loads them as one checkpoint. Its zero value is not usable;
// call New.
type Projector struct {
	log *slog.Logger

	mu      sync.RWMutex
	applied uint64
	// lastEventID and lastEventSeq name the last folded event (checkpoints check it).
	lastEventID  string
	lastEventSeq uint64
	reader       Reader
	// windowed caches the events the reads within a window fetched, by
	// sequence (see windowCache); replaced whenever reader is.
	windowed *lru.Cache[uint64, domain.Event]
	// waiters are the WaitFor calls still waiting, each woken (its channel
	// closed) only once applied reaches its sequence, not on every event.
	// waitMu guards them; it is taken inside mu, never the other way round.
	waitMu  sync.Mutex
	waiters []waiter
	// onWait, set by tests only, is called when a WaitFor call starts waiting.
	onWait func(seq uint64)

	// The read models, guarded by mu.
	current    current
	sequences  sequences
	keys       keys
	recent     recent
	timeline   timeline
	milestones milestones
	upcoming   upcoming

	events, rejected, undecodable atomic.Uint64
	// erasures counts the erasures folded since the projector was made
	// (not saved): a checkpoint saved before one holds the plain state.
	erasures atomic.Uint64

	// observe, when set (Observe), is handed every message fold reads.
	observe func(domain.Message)
}

// Observe makes the projector hand fn every message it reads from the
// stream, in stream order, after folding it (a resubscription may repeat
// some): whoever else folds the whole stream (the proofs' catch-up) can
// take them from here rather than read and decode the stream a second
// time. fn runs on the projector's goroutine and must be quick. Call it
// before Run.
func (p *Projector) Observe(fn func(domain.Message)) { p.observe = fn }

// New returns an empty projector.
func New(log *slog.Logger) *Projector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Projector{log: log, current: newCurrent(), sequences: newSequences(), keys: newKeys(),
		timeline: newTimeline(), milestones: newMilestones(), upcoming: newUpcoming(), windowed: newWindowCache()}
}

// UseReader sets where history and log reads fetch the events from; the
// events cached from the previous reader are dropped.
func (p *Projector) UseReader(r Reader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reader = r
	p.windowed = newWindowCache()
}

// Run follows src from the start until ctx ends, resubscribing after errors
// from where it stopped. It returns nil when ctx ends.
func (p *Projector) Run(ctx context.Context, src Source) error {
	backoff := 100 * time.Millisecond
	for {
		after := p.Applied()
		err := p.follow(ctx, src, after)
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

// follow hands every message of src after sequence after to Handle until
// the reading ends.
func (p *Projector) follow(ctx context.Context, src Source, after uint64) error {
	return p.fold(ctx, src, after, true, nil)
}

// Fold hands every message src holds now after what p has applied to
// Handle, then returns: what `engagements rebuild` does with a fresh
// projector. progress, when set, is told each sequence folded.
func (p *Projector) Fold(ctx context.Context, src Source, progress func(seq uint64)) error {
	return p.fold(ctx, src, p.Applied(), false, progress)
}

// fold is the one loop that reads src into the projector, live (until the
// reading ends) or to the end of what is stored now.
func (p *Projector) fold(ctx context.Context, src Source, after uint64, live bool, progress func(seq uint64)) error {
	for m, err := range src.Read(ctx, after, domain.Filter{Live: live}) {
		if err != nil {
			return err
		}
		p.Handle(m.Sequence, m.Event, m.Err)
		if p.observe != nil {
			p.observe(m)
		}
		if progress != nil {
			progress(m.Sequence)
		}
	}
	return nil
}

// Handle folds one stream message into every read model. A message that
// does not decode or does not apply is logged and counted, and never stops
// later ones.
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
		p.sequences.touch(seq, ev.EngagementID)
		p.undecodable.Add(1)
		p.log.Warn("undecodable event skipped", "sequence", seq, "err", err)
		return
	}
	ev.Sequence = seq
	// Even an event the rules reject moves the engagement's subject
	// sequence, which the next append must name as expected.
	p.sequences.touch(seq, ev.EngagementID)
	if err := p.current.Apply(seq, ev); err != nil {
		p.sequences.reject(seq)
		p.rejected.Add(1)
		p.log.Warn("event rejected by the domain rules", "sequence", seq, "type", ev.Type,
			"engagement", ev.EngagementID, "err", err)
		return
	}
	p.lastEventID, p.lastEventSeq = ev.ID, seq
	if ev.Type == domain.EngagementPersonalDataErased {
		p.refold(ev)
		// The events cached for windowed reads were opened before the
		// erasure: reads from here on fetch (and open) them again.
		p.windowed = newWindowCache()
		p.erasures.Add(1)
	}
	p.sequences.Apply(seq, ev)
	p.timeline.Apply(seq, ev)
	p.milestones.Apply(ev.EngagementID, p.current.byID[ev.EngagementID].e, p.timeline.byID[ev.EngagementID])
	p.upcoming.Apply(p.current.byID[ev.EngagementID].e)
	p.recent.Apply(seq, ev)
	p.keys.Apply(seq, ev)
	p.events.Add(1)
}

// refoldWithin bounds the reads of a refold.
const refoldWithin = 30 * time.Second

// refold folds the engagement of ev, an erasure, again from its events as
// the reader opens them now (the subject's fields erased), so that its
// state in memory, and the next checkpoint, no longer hold what was
// erased; its milestones, states taken before, are dropped (reads within a
// window fold from the first event until new ones are taken). The caller
// holds mu for writing; an erasure is rare, and holding the lock while the
// history is read keeps every reader from seeing the state half done.
func (p *Projector) refold(ev domain.Event) {
	id := ev.EngagementID
	delete(p.milestones.byID, id)
	if p.reader == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), refoldWithin)
	defer cancel()
	seqs := p.sequences.history[id]
	events := make([]domain.Event, 0, len(seqs)+1)
	for _, seq := range seqs {
		e, err := p.reader.Event(ctx, seq)
		if err != nil {
			p.log.Error("refold after an erasure failed: the engagement's state keeps what was erased until a rebuild",
				"engagement", id, "sequence", seq, "err", err)
			return
		}
		e.Sequence = seq
		events = append(events, e)
	}
	events = append(events, ev)
	e, ok := domain.Replay(events, domain.Window{})
	en := p.current.byID[id]
	if !ok || en == nil || e.Version() != en.e.Version() || e.Hash() != en.e.Hash() {
		p.log.Error("refold after an erasure did not reach the engagement's state; it keeps what was erased until a rebuild",
			"engagement", id)
		return
	}
	en.e = e
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

// Applied is the last stream sequence the projector has handled.
func (p *Projector) Applied() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.applied
}

// Erasures counts the erasures (engagement.personal_data_erased) folded
// since the projector was made: when it moves, a checkpoint saved before
// holds personal data that is now erased, and should be replaced soon.
func (p *Projector) Erasures() uint64 { return p.erasures.Load() }

// Stats returns the projector's counters.
func (p *Projector) Stats() Stats {
	return Stats{Applied: p.Applied(), Events: p.events.Load(), Rejected: p.rejected.Load(),
		Undecodable: p.undecodable.Load()}
}

// Refused waits until the projector has handled every message up to
// stream sequence upTo (or ctx ends) and returns the sequences after after
// and up to upTo of the messages that decoded but were not folded: the
// domain rules refused them, so they do not continue their engagement's
// chain. proofs.Service asks it instead of folding every engagement a
// second time.
func (p *Projector) Refused(ctx context.Context, after, upTo uint64) (map[uint64]struct{}, error) {
	if err := p.WaitFor(ctx, upTo); err != nil {
		return nil, err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make(map[uint64]struct{})
	for seq := range p.sequences.rejected {
		if seq > after && seq <= upTo {
			out[seq] = struct{}{}
		}
	}
	return out, nil
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
	onWait := p.onWait
	p.mu.RUnlock()
	if onWait != nil {
		onWait(seq)
	}
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
