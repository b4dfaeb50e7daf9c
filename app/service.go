package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
)

// Store is what the command path needs from the event store.
type Store interface {
	// Append stores ev if the engagement's latest message is still at
	// expected, returning its sequence; duplicate is true when ev's
	// idempotency key was used before and nothing new was stored.
	Append(ctx context.Context, ev domain.Event, expected uint64) (seq uint64, duplicate bool, err error)
	// LastSequence is the stream's last sequence.
	LastSequence(ctx context.Context) (uint64, error)
}

// Projection is what the command path reads from the read models.
type Projection interface {
	// Read calls fn with the engagement's current state and the stream
	// sequence of its latest message, under the projection's read lock, and
	// reports whether the engagement exists.
	Read(id string, fn func(e *domain.Engagement, lastSeq uint64)) bool
	// Idempotent returns the result of the append made with key, if any.
	Idempotent(key string) (Result, bool)
	// Applied is the last stream sequence the projection has handled.
	Applied() uint64
	// WaitFor blocks until the projection has handled seq or ctx ends.
	WaitFor(ctx context.Context, seq uint64) error
	// Events reads the engagement's events with the given ids (opened, with
	// their personal fields listed).
	Events(ctx context.Context, id string, ids ...string) ([]domain.Event, error)
}

// Service is the command path shared by every way of writing: load state from
// the projection, let the domain decide, append with the engagement's latest
// sequence as the expected one, and wait until the projection shows the write.
type Service struct {
	store Store
	proj  Projection
	log   *slog.Logger
	now   func() time.Time
	retry RetryPolicy
	// links serialises the writes that may add or change a link, so that
	// two cannot both pass checkSupersedes and close a cycle together.
	links sync.Mutex
	// gates queues the appends to each engagement.
	gates gates
	// wait bounds how long a write waits for its own projection.
	wait time.Duration
	// docs holds documents' bytes (UseDocuments); maxDocument is the
	// largest one taken.
	docs        DocumentStore
	maxDocument int64
	// keys seals personal fields before an append (UseKeyring); nil
	// stores them as the domain decided them.
	keys Sealer
	// people and stream serve Erase (UseKeyring).
	people Keyring
	stream Walker
}

// Sealer seals an event's personal fields in place before it is appended
// (eventstore.Keyring is one): correctedType is the corrected event's type
// for a correction; subjects, when not nil, are the person ids of the
// event's fields by name, known from the event it refers to (the assignment
// a release ends, the event a correction corrects).
type Sealer interface {
	SealEvent(ctx context.Context, ev *domain.Event, correctedType domain.EventType, subjects map[string]string) error
}

// New builds the command path on store and proj, with DefaultRetry.
func New(store Store, proj Projection, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, proj: proj, log: log, now: time.Now, retry: DefaultRetry, wait: 10 * time.Second,
		maxDocument: DefaultMaxDocumentSize}
}

// write is one command on its way through Execute's retries.
type write struct {
	cmd Command
	key string // scoped idempotency key, "" without one
	// newID is the id of the engagement a command without EngagementID
	// records; it stays the same across retries.
	newID string
	// caughtUp is set once the projection held everything the stream held,
	// so a missing engagement is really missing.
	caughtUp bool
	// lost counts the races lost to appends that were stored.
	lost int
	// retryUntil ends the retries (set at the first refusal); pauses counts
	// the pauses so far.
	retryUntil time.Time
	pauses     int
}

// Execute appends the event cmd describes. A retry with the same
// IdempotencyKey returns the first result and stores nothing new.
func (s *Service) Execute(ctx context.Context, cmd Command) (Result, error) {
	r, _, err := s.execute(ctx, cmd, false)
	return r, err
}

// execute is Execute, also reporting whether the result is an earlier
// append's, answered for a retried IdempotencyKey (nothing new stored).
// caughtUp says that the projection has been caught up with the stream
// since the command came (a batch does it once for all its commands).
func (s *Service) execute(ctx context.Context, cmd Command, caughtUp bool) (r Result, replayed bool, err error) {
	w, r, replayed, err := s.prepare(ctx, cmd, caughtUp)
	if replayed || err != nil {
		return r, replayed, err
	}
	if cmd.Type == domain.EngagementLinked || cmd.Type == domain.EngagementCorrected {
		s.links.Lock()
		defer s.links.Unlock()
	}
	if cmd.EngagementID != "" {
		g, err := s.gates.enter(ctx, cmd.EngagementID, s.retry.Within)
		if err != nil {
			return Result{}, false, err
		}
		defer s.gates.leave(cmd.EngagementID, g)
	}
	for {
		if r, ok := s.twin(&w); ok {
			return r, true, nil // a twin of this request won the race
		}
		r, done, dup, err := s.try(ctx, &w)
		if done || err != nil {
			return r, dup, err
		}
	}
}

// prepare refuses a type a plain command may not append, answers a
// retried IdempotencyKey with the first result (replayed), and otherwise
// returns the write cmd asks for.
func (s *Service) prepare(ctx context.Context, cmd Command, caughtUp bool) (w write, r Result, replayed bool, err error) {
	if spec, ok := domain.SpecOf(cmd.Type); ok && spec.Upload && !cmd.withBytes {
		return w, Result{}, false, &domain.ValidationError{Fields: []domain.FieldError{{Field: "type",
			Message: "is recorded by uploading the document (POST /v1/engagements/{id}/documents), not as a plain event"}}}
	}
	if spec, ok := domain.SpecOf(cmd.Type); ok && spec.Erasure && !cmd.erasing {
		return w, Result{}, false, &domain.ValidationError{Fields: []domain.FieldError{{Field: "type",
			Message: "is recorded by erasing a person (POST /v1/people/{id}/erase), not as a plain event"}}}
	}
	w = write{cmd: cmd, key: scopedKey(cmd), caughtUp: caughtUp}
	if w.key != "" {
		if caughtUp {
			if r, ok := s.proj.Idempotent(w.key); ok {
				return w, r, true, nil
			}
		} else if r, ok, err := s.seen(ctx, w.key); ok || err != nil {
			return w, r, ok, err
		}
		w.caughtUp = true // seen caught up
	}
	if cmd.EngagementID == "" {
		w.newID = uuid.Must(uuid.NewV7()).String()
	}
	return w, Result{}, false, nil
}

// try makes one attempt at w: load, decide, append, wait for the
// projection. done is false when the append lost a race and is to be made
// again.
// dup reports that JetStream found the idempotency key already used.
func (s *Service) try(ctx context.Context, w *write) (r Result, done, dup bool, err error) {
	ev, expected, seal, err := s.load(ctx, w)
	if err != nil {
		return Result{}, true, false, err
	}
	if err := s.seal(ctx, &ev, seal); err != nil {
		return Result{}, true, false, err
	}
	ev.IdempotencyKey = w.key
	seq, dup, err := s.store.Append(ctx, ev, expected)
	if errors.Is(err, domain.ErrConflict) {
		return Result{}, false, false, s.again(ctx, w, expected, err)
	}
	if err != nil {
		return Result{}, true, false, err
	}
	r, err = s.written(ctx, w.key, ev, seq, dup)
	return r, true, dup, err
}

// seal seals ev's personal fields when the service has a keyring. It runs
// after the decision, outside the projection's lock (this may write a new
// key): the domain checked the plain text, the stream stores the sealed
// form.
func (s *Service) seal(ctx context.Context, ev *domain.Event, seal sealing) error {
	if s.keys == nil {
		return nil
	}
	subjects, err := s.subjects(ctx, ev.EngagementID, seal.target)
	if err != nil {
		return err
	}
	return s.keys.SealEvent(ctx, ev, seal.correctedType, subjects)
}

// twin returns the result of an append made with w's key since w lost a
// race: a retry of the same request, sent while this one was under way.
func (s *Service) twin(w *write) (Result, bool) {
	if w.lost == 0 || w.key == "" {
		return Result{}, false
	}
	return s.proj.Idempotent(w.key)
}

// seen returns the first result of the append made with key, if any. The
// projection remembers keys for a day, JetStream only for the duplicate
// window: seen makes sure the projection holds every append stored so far
// before it trusts its "not seen". Only appends of this key in flight right
// now are left to JetStream.
func (s *Service) seen(ctx context.Context, key string) (Result, bool, error) {
	if r, ok := s.proj.Idempotent(key); ok {
		return r, true, nil
	}
	if err := s.catchUp(ctx); err != nil {
		return Result{}, false, err
	}
	r, ok := s.proj.Idempotent(key)
	return r, ok, nil
}

// load decides the event w asks for on the engagement's current state and
// returns it with the sequence its append must expect.
func (s *Service) load(ctx context.Context, w *write) (domain.Event, uint64, sealing, error) {
	if w.newID != "" {
		ev, err := s.decide(&domain.Engagement{}, w.newID, w.cmd)
		if err != nil {
			return ev, 0, sealing{}, err
		}
		return ev, 0, sealing{}, s.checkTarget(ev)
	}
	ev, expected, seal, found, err := s.decideOnCurrent(w.cmd)
	if !found && !w.caughtUp {
		// Recorded a moment ago through another instance, perhaps: look
		// again once this projection has what the stream has.
		if err := s.catchUp(ctx); err != nil {
			return domain.Event{}, 0, sealing{}, err
		}
		w.caughtUp = true
		ev, expected, seal, found, err = s.decideOnCurrent(w.cmd)
	}
	if !found {
		return domain.Event{}, 0, sealing{}, fmt.Errorf("engagement %s: %w", w.cmd.EngagementID, domain.ErrNotFound)
	}
	if err != nil {
		return ev, 0, sealing{}, err
	}
	return ev, expected, seal, s.checkTarget(ev)
}

// sealing is what sealing an event needs to know of the state it was
// decided on (see Sealer): the corrected event's type, and the event whose
// subjects ev's personal fields belong to ("" for none).
type sealing struct {
	correctedType domain.EventType
	target        string
}

// subjects are the person ids of the personal fields of event target of
// engagement id, by field name (a correction's "fields.name" as "name");
// nil without a target, or for one stored before sealing.
func (s *Service) subjects(ctx context.Context, id, target string) (map[string]string, error) {
	if target == "" {
		return nil, nil
	}
	events, err := s.proj.Events(ctx, id, target)
	if err != nil {
		return nil, fmt.Errorf("read the event %s refers to: %w", target, err)
	}
	var out map[string]string
	for _, ev := range events {
		for _, f := range ev.Personal {
			if out == nil {
				out = make(map[string]string)
			}
			out[strings.TrimPrefix(f.Field, "fields.")] = f.PersonID
		}
	}
	return out, nil
}

// sealingOf finds, in the state ev was decided on, the corrected event's
// type and the event whose subjects ev's fields belong to: the corrected
// one, or the assignment of the focal point a release names.
func sealingOf(state *domain.Engagement, ev domain.Event) sealing {
	var d struct {
		Corrects string `json:"corrects"`
		Party    string `json:"party"`
		Name     string `json:"name"`
	}
	var out sealing
	switch ev.Type {
	case domain.EngagementFocalPointReleased:
		if json.Unmarshal(ev.Data, &d) == nil {
			for _, p := range state.View().FocalPoints {
				if strings.EqualFold(p.Party, d.Party) && strings.EqualFold(p.Name, d.Name) {
					out.target = p.EventID
					break
				}
			}
		}
	case domain.EngagementCorrected:
		if json.Unmarshal(ev.Data, &d) == nil {
			out.correctedType, _ = state.EventTypeOf(d.Corrects)
			if len(domain.PersonalFields(out.correctedType)) > 0 {
				out.target = d.Corrects
			}
		}
	}
	return out
}

// decideOnCurrent lets the domain decide on the projection's state of
// cmd.EngagementID in place, under its read lock: copying the state per
// append (its maps grow with the engagement's history) cost more than the
// decision. found is false when the projection does not know the engagement.
func (s *Service) decideOnCurrent(cmd Command) (ev domain.Event, expected uint64, seal sealing, found bool, err error) {
	d := decisions.Get().(*decision)
	d.s, d.cmd = s, cmd
	found = s.proj.Read(cmd.EngagementID, d.fn)
	ev, expected, seal, err = d.ev, d.expected, d.seal, d.err
	*d = decision{fn: d.fn} // keep nothing of this append in the pool
	decisions.Put(d)
	return ev, expected, seal, found, err
}

// decision is what decideOnCurrent hands the projection's Read: a callback
// through an interface escapes, and a closure over the caller's variables
// would cost five allocations per append; pooled, with its method value
// bound once, it costs none.
type decision struct {
	s        *Service
	cmd      Command
	ev       domain.Event
	expected uint64
	seal     sealing
	err      error
	fn       func(state *domain.Engagement, last uint64) // on
}

var decisions = sync.Pool{New: func() any {
	d := new(decision)
	d.fn = d.on
	return d
}}

func (d *decision) on(state *domain.Engagement, last uint64) {
	if d.cmd.IfMatch > 0 && state.Version() != d.cmd.IfMatch {
		d.err = fmt.Errorf("engagement %s at version %d, not %d: %w",
			d.cmd.EngagementID, state.Version(), d.cmd.IfMatch, domain.ErrPreconditionFailed)
		return
	}
	d.ev, d.err = d.s.decide(state, d.cmd.EngagementID, d.cmd)
	d.expected = last
	if d.err == nil && d.s.keys != nil && (d.ev.Type == domain.EngagementFocalPointReleased || d.ev.Type == domain.EngagementCorrected) {
		d.seal = sealingOf(state, d.ev)
	}
}

// decide builds the event cmd asks for on top of state, the engagement id's
// current state, and lets the domain check and normalise it.
func (s *Service) decide(state *domain.Engagement, id string, cmd Command) (domain.Event, error) {
	now := s.now().UTC()
	ev := domain.Event{
		ID:            uuid.Must(uuid.NewV7()).String(),
		Type:          cmd.Type,
		EngagementID:  id,
		Kind:          state.Kind(),
		Version:       state.Version() + 1,
		OccurredAt:    cmd.OccurredAt,
		RecordedAt:    now,
		Actor:         cmd.Actor,
		ActorIssuer:   cmd.ActorIssuer,
		ActorSubject:  cmd.ActorSubject,
		CorrelationID: cmd.CorrelationID,
		CausationID:   cmd.CausationID,
		TimePrecision: cmd.TimePrecision,
		Data:          cmd.Data,
		PrevHash:      state.Hash(),
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = now
	}
	return state.Decide(ev)
}

// checkTarget makes sure a link points at an engagement that exists.
func (s *Service) checkTarget(ev domain.Event) error {
	if ev.Type != domain.EngagementLinked {
		return s.checkSupersedes(ev) // a correction may change a link
	}
	d, err := domain.DecodeData[domain.LinkedData](ev)
	if err != nil {
		return fmt.Errorf("decode link: %w", err)
	}
	if !s.proj.Read(d.TargetID, func(*domain.Engagement, uint64) {}) {
		return &domain.ValidationError{Fields: []domain.FieldError{{Field: "data.target_id", Message: "no engagement has this id"}}}
	}
	return s.checkSupersedes(ev)
}

// again decides, after the stream refused w's append with conflict, whether
// it is tried again (nil) or fails (the error to return), as s.retry says:
// within its time bound, at once after the first race w lost, else after a
// pause.
func (s *Service) again(ctx context.Context, w *write, expected uint64, conflict error) error {
	if w.cmd.IfMatch > 0 {
		return fmt.Errorf("%w: %w", domain.ErrPreconditionFailed, conflict)
	}
	if w.newID != "" {
		return conflict
	}
	now := time.Now()
	if w.retryUntil.IsZero() {
		w.retryUntil = now.Add(s.retry.Within)
	}
	if now.After(w.retryUntil) {
		return conflict
	}
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	if s.lastSeq(w.cmd.EngagementID) != expected {
		w.lost++ // another append was stored: try on top of it
		if w.lost == 1 {
			return nil
		}
	}
	// Lost again, or refused while another append to the engagement is
	// still in flight (a clustered stream refuses at once rather than
	// queue, and stores nothing): pause, so that the writers refused
	// together come back spread out.
	if err := sleep(ctx, s.retry.pause(w.pauses)); err != nil {
		return err
	}
	w.pauses++
	return nil
}

// written waits until the projection shows the append stored at seq and
// returns its result; a duplicate answers with the first append's result.
func (s *Service) written(ctx context.Context, key string, ev domain.Event, seq uint64, dup bool) (Result, error) {
	if err := s.waitFor(ctx, seq); err != nil {
		return Result{}, err
	}
	if dup {
		if r, ok := s.proj.Idempotent(key); ok {
			return r, nil
		}
	}
	return Result{EngagementID: ev.EngagementID, EventID: ev.ID, Type: ev.Type, Sequence: seq, Version: ev.Version}, nil
}

// catchUp waits until the projection has everything the stream holds now.
// Asking the stream is bounded by a short timeout: while a cluster elects a
// leader nobody answers, and the client is better told 503 soon.
func (s *Service) catchUp(ctx context.Context) error {
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	last, err := s.store.LastSequence(ictx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: the stream did not answer: %w", domain.ErrUnavailable, err)
		}
		return err
	}
	return s.waitFor(ctx, last)
}

// lastSeq is the sequence of the engagement's latest message as the
// projection knows it (0 if none).
func (s *Service) lastSeq(id string) uint64 {
	var last uint64
	s.proj.Read(id, func(_ *domain.Engagement, l uint64) { last = l })
	return last
}

// waitFor waits, within bounds, for the projection to reach seq. The write is
// already durable when this runs; a timeout is reported as unavailable so
// the client retries (with its Idempotency-Key) rather than assume failure.
func (s *Service) waitFor(ctx context.Context, seq uint64) error {
	if s.proj.Applied() >= seq {
		return nil // usual under load: no timer to set up
	}
	ctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	if err := s.proj.WaitFor(ctx, seq); err != nil {
		return fmt.Errorf("%w: projection did not reach sequence %d: %w", domain.ErrUnavailable, seq, err)
	}
	return nil
}
