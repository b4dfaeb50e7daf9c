package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// Store is what the command path needs from the event store.
type Store interface {
	// Append stores ev if the engagement's latest message is still at
	// expected, returning its sequence; duplicate is true when ev's
	// idempotency key was used before and nothing new was stored.
	Append(ctx context.Context, ev domain.Event, expected uint64) (seq uint64, duplicate bool, err error)
	// LastSequence is the stream's last sequence.
	LastSequence(ctx context.Context) (uint64, error)
	// VerifyUntil walks the stream up to a sequence (0: all) and checks
	// every event and link.
	VerifyUntil(ctx context.Context, until uint64, progress func(done, total uint64)) (domain.Report, error)
	Walker
	Follower
}

// Command asks for one event to be appended.
type Command struct {
	// EngagementID is empty to record a new engagement.
	EngagementID string
	Type         domain.EventType
	// OccurredAt is when it happened; zero means now.
	OccurredAt time.Time
	Data       json.RawMessage
	Actor      string
	// IfMatch, when positive, is the version the caller last saw; the append
	// fails with ErrPreconditionFailed unless it is still current.
	IfMatch        int
	IdempotencyKey string
	CorrelationID  string
	CausationID    string
}

// Result is what an append produced.
type Result = projections.Result

// maxRetries bounds how often an append without If-Match is retried after
// losing a race to another writer. Each lost race means another append was
// stored and the retry starts from the caught-up state, so N concurrent
// writers need at most N attempts; the bound only stops a writer from
// starving forever under sustained contention (then 409).
const maxRetries = 100

// Service is the command path shared by every way of writing: load state from
// the projection, let the domain decide, append with the engagement's latest
// sequence as the expected one, and wait until the projection shows the write.
type Service struct {
	store Store
	proj  *projections.Projector
	log   *slog.Logger
	now   func() time.Time
	// wait bounds how long a write waits for its own projection.
	wait time.Duration
}

// NewService wires the command path.
func NewService(store Store, proj *projections.Projector, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, proj: proj, log: log, now: time.Now, wait: 10 * time.Second}
}

// Execute appends the event cmd describes. A retry with the same
// IdempotencyKey returns the first result and stores nothing new.
func (s *Service) Execute(ctx context.Context, cmd Command) (Result, error) {
	msgID := ""
	if cmd.IdempotencyKey != "" {
		scope := cmd.EngagementID
		if scope == "" {
			scope = "new"
		}
		// Keys are the client's: scoped to who sent them and to what they
		// write, so two clients' keys never answer for each other.
		msgID = cmd.Actor + ":" + scope + ":" + cmd.IdempotencyKey
		if r, ok := s.proj.Idempotent(msgID); ok {
			return r, nil
		}
		// The projection remembers keys for a day, JetStream only for the
		// duplicate window: make sure the projection holds every append
		// stored so far before trusting its "not seen". Only appends of
		// this key in flight right now are left to JetStream.
		if err := s.catchUp(ctx); err != nil {
			return Result{}, err
		}
		if r, ok := s.proj.Idempotent(msgID); ok {
			return r, nil
		}
	}
	newID := ""
	if cmd.EngagementID == "" {
		newID = uuid.Must(uuid.NewV7()).String()
	}
	caughtUp := msgID != ""
	var inFlightUntil time.Time // how long to wait for other appends in flight
	waits := 0
	for attempt := 0; ; attempt++ {
		if attempt > 0 && msgID != "" {
			if r, ok := s.proj.Idempotent(msgID); ok {
				return r, nil // a twin of this request won the race
			}
		}
		var (
			ev       domain.Event
			expected uint64
			err      error
		)
		if newID != "" {
			ev, err = s.decide(&domain.Engagement{}, newID, cmd)
		} else {
			// The domain decides on the projection's state in place, under
			// its read lock: copying the state per append (its maps grow with
			// the engagement's history) cost more than the decision.
			found := s.proj.Read(cmd.EngagementID, func(state *domain.Engagement, last uint64) {
				if cmd.IfMatch > 0 && state.Version != cmd.IfMatch {
					err = fmt.Errorf("engagement %s at version %d, not %d: %w",
						cmd.EngagementID, state.Version, cmd.IfMatch, domain.ErrPreconditionFailed)
					return
				}
				ev, err = s.decide(state, cmd.EngagementID, cmd)
				expected = last
			})
			if !found && !caughtUp {
				// Recorded a moment ago through another instance, perhaps:
				// look again once this projection has what the stream has.
				if err := s.catchUp(ctx); err != nil {
					return Result{}, err
				}
				caughtUp = true
				attempt--
				continue
			}
			if !found {
				return Result{}, fmt.Errorf("engagement %s: %w", cmd.EngagementID, domain.ErrNotFound)
			}
		}
		if err != nil {
			return Result{}, err
		}
		if err := s.checkTarget(ev); err != nil {
			return Result{}, err
		}
		ev.IdempotencyKey = msgID
		seq, dup, err := s.store.Append(ctx, ev, expected)
		if errors.Is(err, domain.ErrConflict) {
			if cmd.IfMatch > 0 {
				return Result{}, fmt.Errorf("%w: %w", domain.ErrPreconditionFailed, err)
			}
			if newID != "" || attempt+1 >= maxRetries {
				return Result{}, err
			}
			if err := s.catchUp(ctx); err != nil {
				return Result{}, err
			}
			if s.lastSeq(cmd.EngagementID) == expected {
				// Nothing new was stored for the engagement: the stream
				// refused because another append to it is still in flight (a
				// clustered stream refuses at once rather than queue). Wait
				// for it without spending an attempt, within bounds.
				if inFlightUntil.IsZero() {
					inFlightUntil = time.Now().Add(s.wait)
				}
				if time.Now().After(inFlightUntil) {
					return Result{}, err
				}
				if err := sleep(ctx, inFlightBackoff(waits)); err != nil {
					return Result{}, err
				}
				waits++
				attempt--
			}
			continue
		}
		if err != nil {
			return Result{}, err
		}
		if err := s.waitFor(ctx, seq); err != nil {
			return Result{}, err
		}
		if dup {
			if r, ok := s.proj.Idempotent(msgID); ok {
				return r, nil
			}
		}
		return Result{EngagementID: ev.EngagementID, EventID: ev.ID, Type: ev.Type, Sequence: seq, Version: ev.Version}, nil
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
		Kind:          state.Kind,
		Version:       state.Version + 1,
		OccurredAt:    cmd.OccurredAt,
		RecordedAt:    now,
		Actor:         cmd.Actor,
		CorrelationID: cmd.CorrelationID,
		CausationID:   cmd.CausationID,
		Data:          cmd.Data,
		PrevHash:      state.Hash,
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = now
	}
	return state.Decide(ev)
}

// checkTarget makes sure a link points at an engagement that exists.
func (s *Service) checkTarget(ev domain.Event) error {
	if ev.Type != domain.EngagementLinked {
		return nil
	}
	var d struct {
		TargetID string `json:"target_id"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return fmt.Errorf("decode link: %w", err)
	}
	if _, ok := s.proj.Get(d.TargetID); !ok {
		return &domain.ValidationError{Fields: []domain.FieldError{{Field: "data.target_id", Message: "no engagement has this id"}}}
	}
	return nil
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

// inFlightBackoff is how long to wait before trying again after an append
// in flight to the same engagement: 1 ms doubling to 32 ms, with jitter.
func inFlightBackoff(n int) time.Duration {
	d := time.Millisecond << min(n, 5)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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

// Get returns the engagement's state, or ErrNotFound.
func (s *Service) Get(id string) (*domain.Engagement, error) {
	e, ok := s.proj.Get(id)
	if !ok {
		return nil, fmt.Errorf("engagement %s: %w", id, domain.ErrNotFound)
	}
	return e, nil
}
