package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DurableConfig describes a durable consumer of the stream.
type DurableConfig struct {
	// Description is shown by NATS tools.
	Description string
	// Selection picks the messages; empty fields match all.
	Selection domain.Selection
	// From is the first stream sequence delivered; 0 means the first.
	From uint64
	// AckWait is how long JetStream waits for a verdict on a message before
	// it hands the message out again.
	AckWait time.Duration
	// Replicas of the consumer's state; 0 means 1.
	Replicas int
}

// CreateDurable makes the durable consumer called name: a reader of the
// stream whose position JetStream keeps, shared by every process that binds
// it with Durable. It hands out one message at a time, the next only once
// the previous one is acknowledged, so the stream's order holds across
// processes.
func (s *Store) CreateDurable(ctx context.Context, name string, cfg DurableConfig) error {
	subjects, err := filterSubjects(cfg.Selection)
	if err != nil {
		return err
	}
	cc := jetstream.ConsumerConfig{
		Durable:        name,
		Description:    cfg.Description,
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		MaxAckPending:  1,
		AckWait:        cfg.AckWait,
		Replicas:       max(cfg.Replicas, 1),
	}
	if cfg.From > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, cfg.From
	}
	if _, err := s.stream.CreateConsumer(ctx, cc); err != nil {
		return fmt.Errorf("create durable %s: %w", name, Unavailable(err))
	}
	return nil
}

// DeleteDurable deletes the durable consumer called name; one that does not
// exist is no error.
func (s *Store) DeleteDurable(ctx context.Context, name string) error {
	if err := s.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete durable %s: %w", name, Unavailable(err))
	}
	return nil
}

// Durable binds the durable consumer called name, wrapping domain.ErrNotFound
// if there is none.
func (s *Store) Durable(ctx context.Context, name string) (*Durable, error) {
	cons, err := s.stream.Consumer(ctx, name)
	if err != nil {
		return nil, durableErr(name, err)
	}
	return &Durable{name: name, nc: s.nc, pull: NewPuller(cons, s.nc, s.log.With("durable", name)), log: s.log, keys: s.keys}, nil
}

// Durable is a bound durable consumer; see CreateDurable. One goroutine
// calls Next at a time.
type Durable struct {
	name string
	nc   *nats.Conn
	pull *Puller
	log  *slog.Logger
	keys *Keyring
}

// Stop ends the pull and hands back what was in flight; see Puller.Stop.
// Call it once done with the consumer.
func (d *Durable) Stop() { d.pull.Stop() }

// Next waits for the consumer's next message until ctx ends; see Puller
// for what happens to a message in flight then. An error wraps
// domain.ErrNotFound once the consumer is gone (being deleted), or ctx's
// error, or domain.ErrUnavailable.
func (d *Durable) Next(ctx context.Context) (*Delivery, error) {
	for {
		msg, err := d.pull.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, durableErr(d.name, err)
		}
		meta, err := msg.Metadata()
		if err != nil { // not a JetStream message; cannot happen on a consumer
			d.pull.log.Warn("durable consumer message without metadata", "err", err)
			_ = msg.Term()
			continue
		}
		m := domain.Message{Sequence: meta.Sequence.Stream, Payload: msg.Data()}
		m.Event, m.Err = decodeMsg(msg.Subject(), msg.Headers(), m.Payload, m.Sequence)
		if err := d.keys.openMessage(ctx, &m); err != nil {
			_ = HandBack(msg) // delivered again once the keys answer
			return nil, fmt.Errorf("durable %s: %w", d.name, Unavailable(err))
		}
		return &Delivery{Message: m, msg: msg, nc: d.nc}, nil
	}
}

// HandBack hands msg back to be handed out again at once, durably: a Nak
// with a delay. A plain Nak only queues the message for redelivery in the
// server's memory; the consumer's stored state still has it handed out at
// its first delivery, so a server restarted before the redelivery (the
// embedded one restarts with the process) hands it out again only after
// AckWait. A Nak with a delay rewrites that state (and replicates it), so
// the message is due at once however the server goes on.
func HandBack(msg jetstream.Msg) error { return msg.NakWithDelay(handBackDelay) }

// handBackDelay is the delay of HandBack's Nak: the shortest the server
// takes as one.
const handBackDelay = time.Millisecond

// pullHeartbeat is the Puller's pull heartbeat.
const pullHeartbeat = 5 * time.Second

// drainWait bounds how long a stopping Puller waits for the messages the
// server sent before it learnt of the stop, and a Nak or Ack for the
// server's confirmation.
const drainWait = 5 * time.Second

// Puller hands out a JetStream pull consumer's messages one at a time,
// and on a stop hands back what was in flight, so that no message waits
// for the consumer's AckWait after a graceful stop. One goroutine calls
// Next at a time.
type Puller struct {
	cons jetstream.Consumer
	nc   *nats.Conn
	log  *slog.Logger
	// it pulls the messages; made by the first Next, nil again after it
	// ends.
	it jetstream.MessagesContext
}

// NewPuller pulls from cons over nc (the connection cons was bound on).
func NewPuller(cons jetstream.Consumer, nc *nats.Conn, log *slog.Logger) *Puller {
	return &Puller{cons: cons, nc: nc, log: log}
}

// Next waits for the consumer's next message until ctx ends. It pulls
// one message at a time (PullMaxMessages(1)). When ctx ends it drains the
// pull rather than abandoning it: every message the server handed out
// meanwhile (in flight, or arriving just as ctx ended) is handed back with
// a Nak, confirmed by a flush, so that another instance, or this one after
// a restart, gets it at once. Only a crash (or a drain cut short after
// drainWait) leaves a message to AckWait. After an error other than ctx's
// the next call pulls afresh.
func (p *Puller) Next(ctx context.Context) (jetstream.Msg, error) {
	if err := ctx.Err(); err != nil {
		p.Stop()
		return nil, err
	}
	if p.it == nil {
		// Heartbeats every 5 s, as a Fetch of 30 s has them: a consumer
		// deleted meanwhile (whose pulls nothing answers) is noticed
		// within 10 s.
		it, err := p.cons.Messages(jetstream.PullMaxMessages(1), jetstream.PullHeartbeat(pullHeartbeat))
		if err != nil {
			return nil, err
		}
		p.it = it
	}
	it := p.it
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	msg, err := it.Next()
	if ctx.Err() != nil {
		p.it = nil
		n := 0
		if err == nil && HandBack(msg) == nil {
			n++
		}
		it.Drain()
		p.handBack(it, n)
		return nil, ctx.Err()
	}
	if err != nil {
		it.Stop()
		p.it = nil
		return nil, err
	}
	return msg, nil
}

// Stop ends the pull: the server stops handing out messages to this
// Puller, and what it handed out meanwhile (a message pulled ahead, or
// one handed back by a Nak and handed straight out again to the pull still
// waiting) is handed back. Call it when done with the consumer, after the
// verdict on the last message taken; a later Next pulls afresh.
func (p *Puller) Stop() {
	if p.it == nil {
		return
	}
	it := p.it
	p.it = nil
	it.Drain()
	p.handBack(it, 0)
}

// handBack finishes the drain of it once Next's ctx ended (n messages
// handed back already): the messages the server sent before it learnt of
// the stop are handed back, and the server's receipt of the Naks waited
// for.
func (p *Puller) handBack(it jetstream.MessagesContext, n int) {
	deadline := time.AfterFunc(drainWait, it.Stop)
	defer deadline.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			break // drained (ErrMsgIteratorClosed), or cut short by the deadline
		}
		if HandBack(msg) == nil {
			n++
		}
	}
	if p.nc != nil {
		// The server has the Naks (and a caller's verdicts sent before
		// Stop) once it answers the flush.
		_ = p.nc.FlushTimeout(drainWait)
	}
	if n > 0 {
		p.log.Debug("pull consumer stopped; handed back what was in flight", "messages", n)
	}
}

func durableErr(name string, err error) error {
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
		return fmt.Errorf("durable %s: %w: %w", name, domain.ErrNotFound, err)
	}
	return fmt.Errorf("durable %s: %w", name, Unavailable(err))
}

// Delivery is one message handed out by a Durable: decoded and hash-checked
// (Err says why not), waiting for its verdict.
type Delivery struct {
	domain.Message
	msg jetstream.Msg
	nc  *nats.Conn
}

// InProgress tells JetStream the message is still being handled, which
// restarts its AckWait.
func (d *Delivery) InProgress() error { return d.msg.InProgress() }

// Ack acknowledges the message and waits for JetStream to confirm, so it is
// not handed out again after a restart. An ended ctx does not stop the
// acknowledgement (a stopping process settles what it handled): it waits
// a few seconds at most.
func (d *Delivery) Ack(ctx context.Context) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainWait)
	defer cancel()
	return d.msg.DoubleAck(actx)
}

// Nak hands the message back (HandBack), to be handed out again at once,
// and waits (a few seconds at most) until the server has it: a process
// about to stop calls it, and the message then does not wait for AckWait,
// not even when the stop restarts the embedded server.
func (d *Delivery) Nak() error {
	if err := HandBack(d.msg); err != nil {
		return err
	}
	if d.nc == nil {
		return nil
	}
	return d.nc.FlushTimeout(drainWait)
}

// NakWithDelay hands the message back, to be handed out again after delay.
func (d *Delivery) NakWithDelay(delay time.Duration) error { return d.msg.NakWithDelay(delay) }

// DurableInfo is where a durable consumer stands.
type DurableInfo struct {
	// Acknowledged is the stream sequence up to which every message the
	// consumer selects is acknowledged (its ack floor).
	Acknowledged uint64
	// Pending is how many selected messages are not acknowledged yet:
	// waiting to be handed out, or handed out and in flight.
	Pending uint64
}

// DurableInfo returns where the durable consumer called name stands,
// wrapping domain.ErrNotFound if there is none.
func (s *Store) DurableInfo(ctx context.Context, name string) (DurableInfo, error) {
	cons, err := s.stream.Consumer(ctx, name)
	if err != nil {
		return DurableInfo{}, durableErr(name, err)
	}
	info := cons.CachedInfo()
	return DurableInfo{Acknowledged: info.AckFloor.Stream, Pending: info.NumPending + uint64(max(info.NumAckPending, 0))}, nil
}
