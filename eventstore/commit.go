package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Group commit. Under SyncAlways JetStream fsyncs before it acknowledges,
// and one fsync per append bounds how many appends a second the stream
// takes. The committer gathers the appends that are waiting and writes them
// as one JetStream atomic batch, which the server stages and then syncs as
// a whole instead of once per append; the stored messages keep the batch's
// Nats-Batch-* headers. Each message of the batch keeps its own expected-last-sequence check and
// idempotency key; when the server refuses the batch (one stale sequence,
// one repeated key), nothing of it is stored and every append of it is
// published again on its own, so each caller gets the answer its append
// would have had alone.
const (
	// maxBatch bounds the appends in one batch (JetStream allows 1000).
	maxBatch = 1000
	// maxInflight bounds the gathered groups in flight at once. The server
	// stores batches one after another, so a second in flight only splits
	// the waiting writers into smaller batches (measured: 64 writers, one
	// in flight made batches of ~32 and ~1.5-3x the rate of two; again with
	// the batches staged on tmpfs, through the API: one 2,193–3,678/s, two
	// 1,430–2,853/s, three 1,266–2,533/s); the next group is gathered while
	// one is stored.
	maxInflight = 1
	// minBatchOnDisk is the fewest appends worth a batch when the server
	// stages it on disk: it creates, syncs and removes a staging store for
	// each batch, which costs about what a dozen single appends do.
	minBatchOnDisk = 16
	// minBatchInMemory is the fewest when it stages it on tmpfs
	// (staging.go): the batch then costs about one sync, as one single
	// append does, and each single append a sync of its own.
	minBatchInMemory = 2
	// maxLinger bounds how long a batch waits to fill under load.
	maxLinger = time.Millisecond
	// commitTimeout bounds the wait for a batch's acknowledgement, as the
	// jetstream client's default bounds a single publish.
	commitTimeout = 5 * time.Second
)

// Headers of JetStream's atomic batch publish (ADR-50); nats.go has no
// client for it.
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)

// errClosing answers the appends still waiting to be gathered when the
// store closes.
var errClosing = fmt.Errorf("store closing: %w", nats.ErrConnectionClosed)

// committer gathers concurrent appends into atomic batches. One goroutine
// (run) owns the queue and the locks; each group is published by a
// goroutine of its own, which reports back on finished, so run keeps
// gathering meanwhile.
type committer struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	guard    *guard
	log      *slog.Logger
	idPrefix string
	ids      atomic.Uint64
	// minBatch is the fewest appends published as a batch (minBatchOnDisk
	// or minBatchInMemory).
	minBatch int

	reqs     chan *commitReq // unbuffered: a request sent is a request run has
	many     chan []*commitReq
	finished chan commitGroup
	quit     chan struct{}
	stopOnce sync.Once
	stopped  chan struct{}
}

// commitReq is one waiting append.
type commitReq struct {
	ctx context.Context
	msg *nats.Msg
	// locks name the engagement and the idempotency key: two appends that
	// share one are never in the same batch or in flight together.
	locks []string
	// alone marks an append that met another of the same engagement or key;
	// it likely conflicts, so it is published by itself and fails no batch.
	alone bool
	res   chan commitResult // buffered: answering never blocks
	// index is the append's place in what appendAll was given.
	index int
}

type commitResult struct {
	ack *jetstream.PubAck
	err error
}

// commitGroup is what one publishing goroutine handled.
type commitGroup struct {
	reqs     []*commitReq
	gathered bool // counts against maxInflight
	batch    bool // one atomic batch, else each published on its own
}

// batchAck is the acknowledgement of an atomic batch's commit: the stream
// sequence of its last message, and the batch's id and size.
type batchAck struct {
	Stream string              `json:"stream"`
	Seq    uint64              `json:"seq"`
	Batch  string              `json:"batch"`
	Count  int                 `json:"count"`
	Error  *jetstream.APIError `json:"error"`
}

// startCommitter starts the committer's goroutine; stop ends it.
func startCommitter(nc *nats.Conn, js jetstream.JetStream, g *guard, log *slog.Logger, minBatch int) (*committer, error) {
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	c := &committer{
		nc:       nc,
		js:       js,
		guard:    g,
		log:      log,
		idPrefix: token[:12] + "-", // stored with each message: short
		minBatch: minBatch,
		reqs:     make(chan *commitReq),
		many:     make(chan []*commitReq),
		finished: make(chan commitGroup),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	go c.run()
	return c, nil
}

// stop answers the appends not yet gathered, waits for the batches in
// flight and ends run. Appends made afterwards take the direct path.
func (c *committer) stop() {
	c.stopOnce.Do(func() { close(c.quit) })
	<-c.stopped
}

// append queues msg and waits for its acknowledgement, or for ctx to end.
func (c *committer) append(ctx context.Context, msg *nats.Msg, engagement, key string) (*jetstream.PubAck, error) {
	r := &commitReq{ctx: ctx, msg: msg, locks: []string{"e:" + engagement}, res: make(chan commitResult, 1)}
	if key != "" {
		r.locks = append(r.locks, "k:"+key)
	}
	select {
	case c.reqs <- r:
	case <-c.quit:
		return c.js.PublishMsg(ctx, msg)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	trip := c.guard.context()
	select {
	case res := <-r.res:
		return res.ack, res.err
	case <-ctx.Done():
		// What was sent may still be stored, as with a direct publish.
		return nil, ctx.Err()
	case <-trip.Done():
		// The store began refusing writes: answer now rather than at
		// the publish's timeout (what was sent may still be stored).
		return nil, context.Cause(trip)
	}
}

// appendAll queues the messages of msgs that are not nil together, each
// for the engagement and key of evs[i], and waits for each one's
// acknowledgement, or for ctx to end. Their engagements are distinct.
func (c *committer) appendAll(ctx context.Context, msgs []*nats.Msg, evs []domain.Event) []commitResult {
	out := make([]commitResult, len(msgs))
	rs := make([]*commitReq, 0, len(msgs))
	for i, msg := range msgs {
		if msg == nil {
			continue
		}
		r := &commitReq{ctx: ctx, msg: msg, locks: make([]string, 1, 2), res: make(chan commitResult, 1), index: i}
		r.locks[0] = "e:" + evs[i].EngagementID
		if key := evs[i].IdempotencyKey; key != "" {
			r.locks = append(r.locks, "k:"+key)
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return out
	}
	select {
	case c.many <- rs:
	case <-c.quit:
		var wg sync.WaitGroup
		for _, r := range rs {
			wg.Go(func() {
				ack, err := c.js.PublishMsg(ctx, r.msg)
				out[r.index] = commitResult{ack: ack, err: err}
			})
		}
		wg.Wait()
		return out
	case <-ctx.Done():
		for _, r := range rs {
			out[r.index] = commitResult{err: ctx.Err()}
		}
		return out
	}
	trip := c.guard.context()
	for _, r := range rs {
		select {
		case res := <-r.res:
			out[r.index] = res
		case <-ctx.Done():
			// What was sent may still be stored, as with a direct publish.
			out[r.index] = commitResult{err: ctx.Err()}
		case <-trip.Done():
			out[r.index] = commitResult{err: context.Cause(trip)}
		}
	}
	return out
}

func (c *committer) run() {
	defer close(c.stopped)
	var (
		pending []*commitReq
		busy    = make(map[string]bool) // locks held by groups in flight
		// gathered counts the gathered groups in flight, outstanding all.
		gathered, outstanding int
		reqs, quit            = c.reqs, c.quit
		many                  = c.many
		// After a batch the load is high: a group too small for a batch
		// waits up to maxLinger for more before it goes as singles.
		loaded, waited bool
		linger         = time.NewTimer(time.Hour)
		lingering      <-chan time.Time
		// checked counts the pending appends prune has seen since the
		// locks last changed: only the ones after it need a look (with
		// batches of up to maxBatch, looking at every waiting append on
		// each arrival cost as much as the rest of the loop).
		checked int
	)
	linger.Stop()
	defer linger.Stop()
	start := func(g commitGroup) {
		for _, r := range g.reqs {
			lock(r, busy)
		}
		checked = 0
		outstanding++
		if g.gathered {
			gathered++
			loaded, waited = g.batch, false
			linger.Stop()
			lingering = nil
		}
		go c.commit(g)
	}
	for {
		if reqs != nil {
			pending = c.prune(c.drain(pending), checked, busy, start)
			checked = len(pending)
			if gathered < maxInflight {
				group := pick(pending, busy)
				switch {
				case len(group) == 0:
				case len(group) >= c.minBatch:
					start(commitGroup{reqs: group, gathered: true, batch: true})
					pending = without(pending, group)
				case loaded && gathered > 0:
					// The batch in flight brings its writers back.
				case loaded && !waited:
					if lingering == nil {
						linger.Reset(maxLinger)
						lingering = linger.C
					}
				default:
					start(commitGroup{reqs: group, gathered: true})
					pending = without(pending, group)
				}
			}
		} else if outstanding == 0 {
			return
		}
		select {
		case <-lingering:
			lingering, waited = nil, true
		case r := <-reqs:
			pending = append(pending, r)
		case rs := <-many:
			pending = append(pending, rs...)
		case g := <-c.finished:
			outstanding--
			if g.gathered {
				gathered--
			}
			for _, r := range g.reqs {
				for _, l := range r.locks {
					delete(busy, l)
				}
			}
			checked = 0
		case <-quit:
			reqs, quit, many = nil, nil, nil
			for _, r := range pending {
				r.res <- commitResult{err: errClosing}
			}
			pending = nil
		}
	}
}

// drain takes the appends whose callers are waiting to hand them over.
func (c *committer) drain(pending []*commitReq) []*commitReq {
	for len(pending) < 4*maxBatch {
		select {
		case r := <-c.reqs:
			pending = append(pending, r)
		default:
			return pending
		}
	}
	return pending
}

// prune answers the appends whose callers have gone, starts each append
// marked alone whose locks are free, and marks alone each one that shares a
// lock with an append in flight. It returns what still waits. The first
// from appends were pruned already, with the same locks in flight.
func (c *committer) prune(pending []*commitReq, from int, busy map[string]bool, start func(commitGroup)) []*commitReq {
	rest := pending[:from]
	for _, r := range pending[from:] {
		switch {
		case r.ctx.Err() != nil:
			r.res <- commitResult{err: r.ctx.Err()}
		case locked(r, busy):
			r.alone = true
			rest = append(rest, r)
		case r.alone:
			start(commitGroup{reqs: []*commitReq{r}})
		default:
			rest = append(rest, r)
		}
	}
	clear(pending[len(rest):])
	return rest
}

// pick chooses, in order of arrival, up to maxBatch waiting appends that
// share no lock with each other or with an append in flight; one that
// shares a lock with an earlier one is marked alone.
func pick(pending []*commitReq, busy map[string]bool) []*commitReq {
	var group []*commitReq
	taken := make(map[string]bool)
	for _, r := range pending {
		if len(group) == maxBatch {
			break
		}
		if r.alone || locked(r, busy) {
			continue
		}
		if locked(r, taken) {
			r.alone = true
			continue
		}
		lock(r, taken)
		group = append(group, r)
	}
	return group
}

// without is pending less group, whose members are in pending in order.
func without(pending, group []*commitReq) []*commitReq {
	rest, i := pending[:0], 0
	for _, r := range pending {
		if i < len(group) && r == group[i] {
			i++
			continue
		}
		rest = append(rest, r)
	}
	clear(pending[len(rest):])
	return rest
}

func locked(r *commitReq, locks map[string]bool) bool {
	for _, l := range r.locks {
		if locks[l] {
			return true
		}
	}
	return false
}

func lock(r *commitReq, locks map[string]bool) {
	for _, l := range r.locks {
		locks[l] = true
	}
}

// commit publishes g, reports back to run and then answers each of g's
// appends. run hears first, so that it has released g's locks before a
// caller can send its next append to the same engagement: a caller that
// appends to one engagement again and again (a batch of commands does)
// could otherwise find its own finished append still holding the lock and
// be published alone, with a sync of its own.
func (c *committer) commit(g commitGroup) {
	res := c.publish(g)
	c.finished <- g
	for i, r := range g.reqs {
		r.res <- res[i]
	}
}

// publish publishes g and returns the answer to each of its appends.
func (c *committer) publish(g commitGroup) []commitResult {
	res := make([]commitResult, len(g.reqs))
	all := func(err error) []commitResult {
		for i := range res {
			res[i] = commitResult{err: err}
		}
		return res
	}
	if r := c.guard.refused(); r != nil {
		// The store refuses writes: answer at once, send nothing.
		return all(r)
	}
	if !g.batch {
		c.publishEach(g.reqs, res)
		return res
	}
	acks, err := c.publishBatch(g.reqs)
	var apiErr *jetstream.APIError
	_, refusing := refusalReason(err)
	switch {
	case err == nil:
		for i := range g.reqs {
			res[i] = commitResult{ack: acks[i]}
		}
		return res
	case refusing:
		// Nothing of it is stored, and alone each would be refused too.
		return all(err)
	case errors.As(err, &apiErr) || errors.Is(err, nats.ErrNoResponders):
		// The server refused the batch, or nothing took it: none of it
		// is stored, and each append on its own gets its own answer.
		c.log.Debug("batch not stored; publishing its appends one by one", "appends", len(g.reqs), "err", err)
		for _, r := range g.reqs {
			unbatch(r.msg)
		}
		c.publishEach(g.reqs, res)
		return res
	default:
		// Lost on the way, unanswered or cut short by a refusal of writes:
		// whether the batch is stored is unknown, as for a single publish
		// that times out.
		return all(err)
	}
}

// unbatch takes the batch headers publishBatch set off msg.
func unbatch(msg *nats.Msg) {
	delete(msg.Header, headerBatchID)
	delete(msg.Header, headerBatchSeq)
	delete(msg.Header, headerBatchCommit)
}

// publishEach publishes the appends one by one (concurrently: they share
// no engagement and no key), each under its caller's context, and puts
// each one's answer in res.
func (c *committer) publishEach(reqs []*commitReq, res []commitResult) {
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			ack, err := publishBounded(r.ctx, c.js, r.msg)
			res[i] = commitResult{ack: ack, err: err}
		})
	}
	wg.Wait()
}

// publishBatch publishes reqs as one atomic batch and returns each one's
// acknowledgement. The server stores a batch's messages contiguously and
// acknowledges the last, so the others' sequences follow from its.
func (c *committer) publishBatch(reqs []*commitReq) ([]*jetstream.PubAck, error) {
	id := c.idPrefix + strconv.FormatUint(c.ids.Add(1), 36)
	n := len(reqs)
	var commit *nats.Msg
	for i, r := range reqs {
		// The batch headers go on the append's own message (a copy of
		// each message and its headers was a tenth of what an append
		// allocated); unbatch takes them off again before it is
		// published on its own. The keys are in canonical form.
		m := r.msg
		m.Header[headerBatchID] = []string{id}
		m.Header[headerBatchSeq] = []string{strconv.Itoa(i + 1)}
		if i == n-1 {
			m.Header[headerBatchCommit] = []string{"1"}
			commit = m
			break
		}
		// Only the commit asks for an answer: a message refused on the
		// way abandons the batch, and the commit then reports that.
		if err := c.nc.PublishMsg(m); err != nil {
			return nil, fmt.Errorf("batch %s: %w", id, err)
		}
	}
	// The wait ends early when a refusal of writes begins meanwhile.
	ctx, cancel := context.WithTimeout(c.guard.context(), commitTimeout)
	defer cancel()
	resp, err := c.nc.RequestMsgWithContext(ctx, commit)
	if err != nil {
		if r := refusedBy(ctx); r != nil {
			err = r
		}
		return nil, fmt.Errorf("batch %s: %w", id, err)
	}
	var ack batchAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return nil, fmt.Errorf("batch %s: %w", id, jetstream.ErrInvalidJSAck)
	}
	if ack.Error != nil {
		return nil, fmt.Errorf("batch %s: %w", id, ack.Error)
	}
	if ack.Batch != id || ack.Count != n || ack.Seq < uint64(n) {
		return nil, fmt.Errorf("batch %s of %d acknowledged as %q of %d at %d: %w",
			id, n, ack.Batch, ack.Count, ack.Seq, jetstream.ErrInvalidJSAck)
	}
	acks := make([]*jetstream.PubAck, n)
	for i := range acks {
		acks[i] = &jetstream.PubAck{Stream: ack.Stream, Sequence: ack.Seq - uint64(n-1-i)}
	}
	return acks, nil
}
