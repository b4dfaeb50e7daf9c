// Package reminders records, as actor system, what the tracker's dates say
// once they come: an agreement's expiry coming near (agreement.expiring, at
// the configured offsets and on the notice deadline), its passing
// (agreement.expired), an action item's due day passing
// (engagement.action_overdue), a meeting coming near (meeting.upcoming).
//
// It is a capability of its own, not part of the command path: the
// reminders are written through app.Service like every other event (domain
// rules, hash chain, so NATS, SSE and webhooks carry them), but something
// has to notice that a day came. That is JetStream's: each reminder is a
// message schedule (nats-server 2.12 or later) in a stream of its own,
// ENGAGEMENTS_SCHEDULES (the event stream denies purge, and a cancelled
// schedule is purged). There is no cron and no leader election here:
//
//   - a follower (a durable consumer of the event stream, shared by every
//     instance) reschedules an engagement after each of its events: it purges
//     the engagement's schedules and publishes one per reminder still to come,
//     each on a subject of its own (engagement, deadline kind, reference,
//     offset) so that publishing again replaces it;
//   - the server fires a schedule onto a subject of the same stream, which
//     a second durable consumer hands to one instance; that instance reads
//     the engagement's current state and records the reminder only if it
//     still applies (a renewed agreement never gets expired), with an
//     idempotency key of the reminder and the domain's rule that each
//     deadline is reminded of once per days left, so that it is recorded
//     once however many instances try;
//   - at start, reminders already due and not recorded (the service was
//     down when they came) are recorded once (catch-up);
//   - the follower's first pass (no durable consumer yet) does not read the
//     stream: it schedules the engagements with deadlines as the projection
//     has them, paced, then makes its consumer from the next sequence on
//     (sweep).
package reminders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
	"github.com/nats-io/nats.go/jetstream"
)

// Names on NATS of this package's own.
const (
	// Stream holds the schedules and the messages they fire.
	Stream = "ENGAGEMENTS_SCHEDULES"

	subjectRoot  = "engagements-reminders"
	scheduleRoot = subjectRoot + ".schedule" // .<engagement>.<kind>.<ref>.<offset>
	dueRoot      = subjectRoot + ".due"      // .<engagement>
	// claimSubject holds the claim of the instance making the follower's
	// first pass (sweep), so that one instance at a time makes it.
	claimSubject = subjectRoot + ".sweep"
	// followerName is the durable consumer of the event stream that
	// reschedules; dueName the one of Stream that records what fired.
	followerName = "reminders"
	dueName      = "reminders-due"
)

// DefaultOffsets are the days before an expiry or a meeting a reminder is
// recorded: the --reminders default.
var DefaultOffsets = []int{90, 30, 7}

// DefaultSweepRate is the schedules a second the follower's first pass
// publishes. Each is a write, synced to disk under --sync always, beside
// the service's own: in make bench (30k agreements, 200 writes/s, a loaded
// 2-core machine) an unpaced pass took upcoming_p99 from 16 ms (reminders
// off) to 150 ms, 1,000/s to 120 ms, 200/s to 26 ms. At 200/s, 100k
// agreements (about 400k schedules) take about half an hour, those with
// the soonest deadlines first.
const DefaultSweepRate = 200

// dueTTL is how long a fired message is kept. Catch-up covers a service
// that stayed down longer.
const dueTTL = 7 * 24 * time.Hour

// Config tunes the reminders. The zero value is the production setting.
type Config struct {
	// Offsets are the days before a deadline reminders are due, largest
	// first (ParseOffsets); nil means DefaultOffsets.
	Offsets []int
	// Day is the length of a day (tests shorten it); 0 means 24 hours.
	// Origin is the instant today starts with a shortened day (0: the
	// start); with 24-hour days each day starts at midnight UTC.
	Day    time.Duration
	Origin time.Time
	// Replicas of the stream and the consumers; 0 means 1.
	Replicas int
	// SweepRate bounds the follower's first pass (see sweep): schedules
	// published a second; 0 means DefaultSweepRate.
	SweepRate int
	// Logger receives what is recorded (info) and skipped (debug).
	Logger *slog.Logger
}

// Store is what the reminders need of the event store; eventstore.Store
// is one.
type Store interface {
	// JetStream is the connection to keep the schedules stream on.
	JetStream() jetstream.JetStream
	// LastSequence is the event stream's last sequence.
	LastSequence(ctx context.Context) (uint64, error)
	// CreateDurable and Durable make and bind the follower's durable
	// consumer of the event stream.
	CreateDurable(ctx context.Context, name string, cfg eventstore.DurableConfig) error
	Durable(ctx context.Context, name string) (*eventstore.Durable, error)
}

// Projection is what the reminders read: the engagements' current state.
type Projection interface {
	Read(id string, fn func(e *domain.Engagement, lastSeq uint64)) bool
	List(ctx context.Context, f projections.Filter) ([]projections.Listed, bool, error)
	WaitFor(ctx context.Context, seq uint64) error
	// WithDeadlines lists the engagements with open deadlines (the
	// follower's first pass schedules those).
	WithDeadlines() []string
}

// Commands is the command path the reminders are recorded through.
type Commands interface {
	Execute(ctx context.Context, cmd app.Command) (app.Result, error)
}

// Reminders schedules and records the reminders until Close.
type Reminders struct {
	store  Store
	proj   Projection
	cmds   Commands
	cfg    Config
	clock  clock
	log    *slog.Logger
	stream jetstream.Stream
	mu     sync.Mutex // guards due, which heal replaces
	due    jetstream.Consumer
	// scheduled is the fingerprint of each engagement as this instance
	// last scheduled it (the follower's alone).
	scheduled map[string]uint64
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	// began is when Start started: catch-up records the reminders due by
	// then, a first pass (sweep) schedules those due later.
	began time.Time
}

// Start creates the schedules stream and the two durable consumers (or
// finds them, made by another instance) and starts following, firing and
// catching up. The projection must be running.
func Start(ctx context.Context, store Store, proj Projection, cmds Commands, cfg Config) (*Reminders, error) {
	if cfg.Offsets == nil {
		cfg.Offsets = DefaultOffsets
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	replicas := max(cfg.Replicas, 1)
	r := &Reminders{store: store, proj: proj, cmds: cmds, cfg: cfg, clock: newClock(cfg.Day, cfg.Origin),
		log: cfg.Logger, scheduled: make(map[string]uint64), began: time.Now()}
	js := store.JetStream()
	var err error
	r.stream, err = eventstore.Provision(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:              Stream,
			Description:       "Reminder schedules of engagement deadlines, and the messages they fire",
			Subjects:          []string{subjectRoot + ".>"},
			Storage:           jetstream.FileStorage,
			Replicas:          replicas,
			AllowMsgSchedules: true,
			AllowMsgTTL:       true,
			MaxMsgSize:        4096,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s (message schedules need nats-server 2.12 or later): %w", Stream, err)
	}
	if !r.stream.CachedInfo().Config.AllowMsgSchedules {
		return nil, fmt.Errorf("create stream %s: the NATS server does not schedule messages (nats-server 2.12 or later is needed)", Stream)
	}
	if err := r.consumers(ctx); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for _, run := range []func(context.Context){r.follow, r.fire, r.catchUp} {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			run(runCtx)
		}()
	}
	return r, nil
}

// consumers creates the durable consumer of fired reminders, or finds it
// made by another instance (or by an earlier start).
func (r *Reminders) consumers(ctx context.Context) error {
	replicas := max(r.cfg.Replicas, 1)
	var errs []error
	// The follower's durable consumer is made by follow, after its first
	// pass (sweep).
	js := r.store.JetStream()
	cfg := jetstream.ConsumerConfig{
		Durable:       dueName,
		Description:   "Fired reminders, recorded by one instance each",
		FilterSubject: dueRoot + ".>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 64,
		Replicas:      replicas,
	}
	// Right after the stream is made, a loaded server has been seen to
	// answer "stream not found" for it (TestGeneratedClient, make test):
	// that passes within moments, so ask again for a few seconds.
	var due jetstream.Consumer
	var err error
	for wait := 50 * time.Millisecond; ; wait *= 2 {
		due, err = js.CreateOrUpdateConsumer(ctx, Stream, cfg)
		if !errors.Is(err, jetstream.ErrStreamNotFound) || wait > 3*time.Second || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("create consumer %s: %w", dueName, err))
	} else {
		r.mu.Lock()
		r.due = due
		r.mu.Unlock()
	}
	return errors.Join(errs...)
}

// heal makes the consumers again after one was found missing.
func (r *Reminders) heal(ctx context.Context) {
	if err := r.consumers(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("reminders: consumers missing and not recreated yet", "err", err)
	}
}

// Close stops following and firing and waits for what is under way.
func (r *Reminders) Close() {
	r.cancel()
	r.wg.Wait()
}

// pause waits d or until ctx ends, reporting whether to go on.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// follow takes the event stream's events one at a time (the durable
// consumer shared by every instance) and reschedules each one's engagement.
func (r *Reminders) follow(ctx context.Context) {
	for ctx.Err() == nil {
		d, err := r.store.Durable(ctx, followerName)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			// New (or deleted by hand): schedule what the projection
			// holds, then follow the stream from there; one instance
			// at a time, the others wait for its consumer. The claim is
			// taken once the projection has caught up: at a first start
			// over a large stream its rebuild outlasts the claim's TTL,
			// which then lapsed before the first renewal (the pass
			// failed with "wrong last sequence: 0" and began again).
			var c *claim
			if _, err = r.caughtUp(ctx); err == nil {
				c, err = r.claim(ctx)
			}
			if err == nil && c == nil {
				if !pause(ctx, time.Second) {
					return
				}
				continue
			}
			if err == nil {
				if err = r.sweep(ctx, c); err == nil {
					continue
				}
			}
		case err == nil:
			err = r.followFrom(ctx, d)
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("reminders: following the event stream interrupted; retrying", "err", err)
		if !pause(ctx, 2*time.Second) {
			return
		}
	}
}

func (r *Reminders) followFrom(ctx context.Context, d *eventstore.Durable) error {
	defer d.Stop() // hands back what was in flight, so that it does not wait for AckWait
	for {
		del, err := d.Next(ctx)
		if err != nil {
			return err
		}
		if err := r.followed(ctx, del); err != nil {
			if ctx.Err() != nil {
				_ = del.Nak() // stopping: another instance takes it at once
				return err
			}
			r.log.Warn("reminders: rescheduling failed; trying again", "engagement", del.Event.EngagementID, "err", err)
			_ = del.NakWithDelay(2 * time.Second)
			continue
		}
		if err := del.Ack(ctx); err != nil {
			return err
		}
	}
}

// followed reschedules the engagement of one delivered event, unless a
// later event of it will.
func (r *Reminders) followed(ctx context.Context, del *eventstore.Delivery) error {
	if del.Err != nil {
		return nil // the projection logs what it cannot fold
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.proj.WaitFor(wctx, del.Sequence); err != nil {
		return err
	}
	var v domain.View
	var last uint64
	// The view shares the engagement's slices, which Apply only appends
	// to, and its Reminders map, which Apply replaces: it may be read
	// after the lock.
	if !r.proj.Read(del.Event.EngagementID, func(e *domain.Engagement, l uint64) { v, last = e.View(), l }) ||
		last > del.Sequence {
		return nil // a later event of the engagement reschedules it
	}
	fp := fingerprint(&v)
	if prev, ok := r.scheduled[v.ID]; ok && prev == fp || !ok && v.Version == 1 && len(v.Deadlines()) == 0 {
		// What the schedules depend on did not change since this
		// instance made them (a note, say), or the engagement is new
		// and has none.
		r.scheduled[v.ID] = fp
		return nil
	}
	if err := r.reschedule(ctx, &v); err != nil {
		return err
	}
	r.scheduled[v.ID] = fp
	return nil
}

// fingerprint hashes what an engagement's schedules depend on: its status,
// its open deadlines and the reminders recorded of them.
func fingerprint(v *domain.View) uint64 {
	h := fnv.New64a()
	fmt.Fprint(h, v.Status)
	for _, d := range v.Deadlines() {
		fmt.Fprint(h, "|", d.Kind, "|", d.Ref, "|", d.On)
		if n, ok := v.Reminded(d.Kind, d.Ref, d.On); ok {
			fmt.Fprint(h, "=", n)
		}
	}
	return h.Sum64()
}

// reschedule replaces v's schedules by those of its reminders still to
// come (or due now, which fire at once). The wanted ones are published
// first (each replaces its subject's last), then the others purged, so
// that a stop half-way leaves a schedule too many, never one too few: a
// schedule too many fires and records nothing.
func (r *Reminders) reschedule(ctx context.Context, v *domain.View) error {
	if err := domain.CheckID(v.ID); err != nil {
		return nil // not an id: never put into a subject
	}
	keep := make(map[string]bool)
	err := r.schedule(v, time.Now(), time.Time{}, func(subject string, payload []byte, opts ...jetstream.PublishOpt) error {
		if _, err := r.store.JetStream().Publish(ctx, subject, payload, opts...); err != nil {
			return fmt.Errorf("schedule %s: %w", subject, err)
		}
		keep[subject] = true
		return nil
	})
	if err != nil {
		return err
	}
	info, err := r.stream.Info(ctx, jetstream.WithSubjectFilter(scheduleRoot+"."+v.ID+".>"))
	if err != nil {
		return fmt.Errorf("schedules of %s: %w", v.ID, err)
	}
	for subject := range info.State.Subjects {
		if keep[subject] {
			continue
		}
		if err := r.stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			return fmt.Errorf("cancel schedule %s: %w", subject, err)
		}
		r.log.Debug("reminder cancelled", "engagement", v.ID, "schedule", subject)
	}
	return nil
}

// schedule hands publish the schedule of each of v's reminders still to
// come (or due now) at now, but those due by notAfter (zero: none); v.ID
// is a checked id.
func (r *Reminders) schedule(v *domain.View, now, notAfter time.Time, publish func(subject string, payload []byte, opts ...jetstream.PublishOpt) error) error {
	for _, p := range points(v, r.cfg.Offsets) {
		if !wanted(v, p, r.cfg.Offsets, r.clock, now) {
			continue
		}
		due, _ := p.due(r.clock)
		if !notAfter.IsZero() && !due.After(notAfter) {
			continue // catch-up records it (sweep)
		}
		payload, err := p.marshal()
		if err != nil {
			return err
		}
		if err := publish(p.scheduleSubject(), payload, jetstream.WithScheduleAt(due),
			jetstream.WithScheduleTarget(dueRoot+"."+p.Engagement), jetstream.WithScheduleTTL(dueTTL)); err != nil {
			return err
		}
		r.log.Debug("reminder scheduled", "engagement", p.Engagement, "kind", p.Kind, "on", p.On, "offset", p.Offset, "at", due)
	}
	return nil
}

// caughtUp waits until the projection has applied the stream up to its
// last sequence, which it returns. At a first start over a large stream
// that takes as long as the projection's rebuild: no bound but ctx.
func (r *Reminders) caughtUp(ctx context.Context) (uint64, error) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	last, err := r.store.LastSequence(lctx)
	cancel()
	if err != nil {
		return 0, err
	}
	return last, r.proj.WaitFor(ctx, last)
}

// claimTTL is how long a first pass's claim lasts unless renewed: an
// instance that stops (or crashes) half-way leaves it to another, or to its
// next start, that long after.
const claimTTL = 30 * time.Second

// claim is an instance's claim of the follower's first pass: a message on
// claimSubject, published only when there is none (expected last sequence
// 0) and renewed the same way (expected: its own), with a TTL. While it
// holds, no other instance sweeps, so that schedules have one writer at a
// time: a slower second sweep could otherwise replace a schedule the first
// instance's follower had just made from a newer state.
type claim struct {
	r       *Reminders
	seq     uint64
	renewed time.Time
}

// claim takes the first pass's claim; nil (no error) when another
// instance holds it.
func (r *Reminders) claim(ctx context.Context) (*claim, error) {
	ack, err := r.store.JetStream().Publish(ctx, claimSubject, nil, jetstream.WithMsgTTL(claimTTL),
		jetstream.WithExpectLastSequencePerSubject(0))
	if isWrongLast(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim the reminders' first pass: %w", err)
	}
	return &claim{r: r, seq: ack.Sequence, renewed: time.Now()}, nil
}

// renew extends the claim once a third of its TTL has passed; an error
// if it was lost (expired, and taken by another instance).
func (c *claim) renew(ctx context.Context) error {
	if time.Since(c.renewed) < claimTTL/3 {
		return nil
	}
	ack, err := c.r.store.JetStream().Publish(ctx, claimSubject, nil, jetstream.WithMsgTTL(claimTTL),
		jetstream.WithExpectLastSequencePerSubject(c.seq))
	if err != nil {
		return fmt.Errorf("renew the claim of the reminders' first pass: %w", err)
	}
	c.seq, c.renewed = ack.Sequence, time.Now()
	return nil
}

// release gives the claim up (the first pass is done, or failed).
func (c *claim) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Up to its own message only: should it have expired and been taken
	// by another instance, that one's claim stays.
	if err := c.r.stream.Purge(ctx, jetstream.WithPurgeSubject(claimSubject), jetstream.WithPurgeSequence(c.seq+1)); err != nil {
		c.r.log.Debug("reminders: releasing the first pass's claim failed (it expires)", "err", err)
	}
}

// isWrongLast reports whether err is JetStream's refusal of a publish
// whose expected last subject sequence did not hold.
func isWrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// sweepBatch is how many engagements' schedules the first pass publishes
// before it waits for their acknowledgements.
const sweepBatch = 100

// sweep is the follower's first pass, when it has no durable consumer yet
// (the first start, or after an operator deleted it). Rather than read the
// whole event stream (a delivery and an acknowledgement per event, a heavy
// load over a large stream), it schedules every engagement with deadlines
// as the projection has it at the stream's last sequence, soonest deadline
// first and paced (Config.SweepRate schedules a second), then makes the
// durable consumer from the next sequence on, so that every later event
// reschedules its engagement.
//
// The consumer is made only once the pass is complete: a stop half-way
// leaves no consumer, and the next start sweeps again. Schedules published
// twice (two instances sweeping at once, or again after such a stop)
// replace each other, one subject each; the sweep purges nothing, so a
// schedule left over from before a deleted consumer may fire, and then
// records nothing (the firing re-checks the engagement's current state).
// What is recorded stays once: the idempotency keys and the domain's rules
// decide that, not the schedules.
func (r *Reminders) sweep(ctx context.Context, c *claim) error {
	defer c.release()
	began := time.Now()
	last, err := r.caughtUp(ctx)
	if err != nil {
		return err
	}
	rate := r.cfg.SweepRate
	if rate <= 0 {
		rate = DefaultSweepRate
	}
	limit := newPacer(rate)
	js := r.store.JetStream()
	var futures []jetstream.PubAckFuture
	wait := func() error {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("schedule %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		futures = futures[:0]
		return nil
	}
	ids := r.proj.WithDeadlines()
	scheduled := 0
	for i, id := range ids {
		if domain.CheckID(id) != nil {
			continue
		}
		var v domain.View
		if !r.proj.Read(id, func(e *domain.Engagement, _ uint64) { v = e.View() }) {
			continue
		}
		// What was due by the start, catch-up records: scheduling it too
		// would fire it at once, for the same work a second time.
		err := r.schedule(&v, time.Now(), r.began, func(subject string, payload []byte, opts ...jetstream.PublishOpt) error {
			if err := limit.wait(ctx); err != nil {
				return err
			}
			f, err := js.PublishAsync(subject, payload, opts...)
			if err != nil {
				return fmt.Errorf("schedule %s: %w", subject, err)
			}
			futures = append(futures, f)
			return nil
		})
		if err != nil {
			return err
		}
		r.scheduled[v.ID] = fingerprint(&v)
		scheduled++
		if (i+1)%sweepBatch == 0 {
			if err := wait(); err != nil {
				return err
			}
			if err := c.renew(ctx); err != nil {
				return err
			}
		}
	}
	if err := wait(); err != nil {
		return err
	}
	if err := c.renew(ctx); err != nil {
		return err
	}
	err = r.store.CreateDurable(ctx, followerName, eventstore.DurableConfig{
		Description: "Reschedules an engagement's reminders after each of its events",
		From:        last + 1, AckWait: time.Minute, Replicas: max(r.cfg.Replicas, 1)})
	if err != nil {
		if _, berr := r.store.Durable(ctx, followerName); berr == nil {
			err = nil // another instance swept too, and made it first
		}
	}
	if err != nil {
		return err
	}
	r.log.Info("reminders: first pass scheduled the engagements with deadlines", "engagements", scheduled,
		"up_to_sequence", last, "took", time.Since(began))
	return nil
}

// fire records the reminders the server fires, one at a time; several
// instances share the consumer.
func (r *Reminders) fire(ctx context.Context) {
	var (
		pulling jetstream.Consumer
		pull    *eventstore.Puller
	)
	defer func() {
		if pull != nil {
			pull.Stop() // hands back what was in flight
		}
	}()
	for ctx.Err() == nil {
		r.mu.Lock()
		due := r.due
		r.mu.Unlock()
		if pull != nil && due != pulling {
			pull.Stop()
			pull = nil
		}
		if pull == nil {
			// A Puller hands back what it holds when ctx ends, so that
			// a stop does not leave a fired reminder to AckWait.
			pulling, pull = due, eventstore.NewPuller(due, r.store.JetStream().Conn(), r.log)
		}
		msg, err := pull.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, jetstream.ErrNoMessages) {
				if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
					r.heal(ctx)
				}
				r.log.Warn("reminders: fetching fired reminders failed; retrying", "err", err)
				if !pause(ctx, 2*time.Second) {
					return
				}
			}
			continue
		}
		var p point
		if err := json.Unmarshal(msg.Data(), &p); err != nil || p.valid() != nil {
			r.log.Warn("reminders: a fired message is not a reminder; dropped", "subject", msg.Subject())
			_ = msg.Term()
			continue
		}
		later, err := r.record(ctx, p)
		switch {
		case err != nil && ctx.Err() != nil:
			_ = eventstore.HandBack(msg) // stopping: another instance takes it at once (pull.Stop flushes)
			return
		case err != nil:
			r.log.Warn("reminders: recording failed; trying again", "engagement", p.Engagement, "kind", p.Kind, "err", err)
			_ = msg.NakWithDelay(5 * time.Second)
		case later > 0:
			_ = msg.NakWithDelay(later)
		default:
			// Acknowledged even when stopping meanwhile: a fired message
			// left unacknowledged waits for AckWait to be handed out again.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := msg.DoubleAck(actx); err != nil {
				r.log.Warn("reminders: acknowledging a fired reminder failed", "err", err)
			}
			cancel()
		}
	}
}

// record records p's reminder if it applies to the engagement as it is
// now. later is how long to wait when p is not due yet.
func (r *Reminders) record(ctx context.Context, p point) (later time.Duration, err error) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	last, err := r.store.LastSequence(wctx)
	if err != nil {
		return 0, err
	}
	if err := r.proj.WaitFor(wctx, last); err != nil {
		return 0, err
	}
	now := time.Now()
	var (
		rem    reminder
		why    string
		notYet bool
	)
	found := r.proj.Read(p.Engagement, func(e *domain.Engagement, _ uint64) {
		v := e.View()
		rem, why, notYet = decide(&v, p, r.cfg.Offsets, r.clock.today(now))
	})
	switch {
	case !found:
		return 0, nil
	case notYet:
		due, _ := p.due(r.clock)
		return max(due.Sub(now), 100*time.Millisecond), nil
	case rem.typ == "":
		r.log.Debug("reminder no longer applies", "engagement", p.Engagement, "kind", p.Kind, "on", p.On, "offset", p.Offset, "why", why)
		return 0, nil
	}
	data, err := json.Marshal(rem.data)
	if err != nil {
		return 0, err
	}
	res, err := r.cmds.Execute(ctx, app.Command{EngagementID: p.Engagement, Type: rem.typ, Data: data,
		Actor: domain.SystemActor, IdempotencyKey: p.idempotencyKey()})
	if refused(err) {
		// Another instance recorded it a moment ago, or the engagement
		// changed in between: the domain has the last word.
		r.log.Debug("reminder refused", "engagement", p.Engagement, "type", rem.typ, "err", err)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	r.log.Info("reminder recorded", "engagement", p.Engagement, "type", rem.typ, "on", p.On, "event", res.EventID)
	return 0, nil
}

// refused reports whether err is the domain's refusal (final), not a
// failure to try again.
func refused(err error) bool {
	var v *domain.ValidationError
	var m *domain.MalformedError
	return errors.Is(err, domain.ErrInvalidTransition) || errors.As(err, &v) || errors.As(err, &m) ||
		errors.Is(err, domain.ErrNotFound)
}

// catchUpRate is the reminders a second catch-up records: each is a write
// through the command path. A first start over 100k agreements found some
// 20k due (make bench's data), recorded back to back beside the service's
// own writes; these are late already, and a few minutes more spare the
// service.
const catchUpRate = 50

// catchUp records, once at start, the reminders already due that no
// schedule will fire: the service (and its NATS) were down when they came,
// or their fired message expired.
func (r *Reminders) catchUp(ctx context.Context) {
	for ctx.Err() == nil {
		if err := r.catchUpOnce(ctx); err == nil || ctx.Err() != nil {
			return
		} else {
			r.log.Warn("reminders: catching up failed; retrying", "err", err)
		}
		if !pause(ctx, 5*time.Second) {
			return
		}
	}
}

func (r *Reminders) catchUpOnce(ctx context.Context) error {
	if _, err := r.caughtUp(ctx); err != nil {
		return err
	}
	limit := newPacer(catchUpRate)
	n := 0
	for after := ""; ; {
		page, more, err := r.proj.List(ctx, projections.Filter{After: after, Limit: 500, Now: time.Now()})
		if err != nil {
			return err
		}
		for _, it := range page {
			v := it.Engagement.View()
			after = v.ID
			now := time.Now()
			for _, p := range points(&v, r.cfg.Offsets) {
				// Due by the start: what came due since has a schedule
				// (one the follower made, or its first pass).
				if due, err := p.due(r.clock); err != nil || due.After(r.began) {
					continue
				}
				if rem, _, _ := decide(&v, p, r.cfg.Offsets, r.clock.today(now)); rem.typ == "" {
					continue
				}
				if err := limit.wait(ctx); err != nil {
					return err
				}
				if _, err := r.record(ctx, p); err != nil {
					return err
				}
				n++
			}
		}
		if !more {
			break
		}
	}
	r.log.Info("reminders caught up", "due", n)
	return nil
}
