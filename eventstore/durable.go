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
	return &Durable{name: name, cons: cons, log: s.log, keys: s.keys}, nil
}

// Durable is a bound durable consumer; see CreateDurable.
type Durable struct {
	name string
	cons jetstream.Consumer
	log  *slog.Logger
	keys *Keyring
}

// Next waits for the consumer's next message until ctx ends. It fetches one
// message only, so none sits unacknowledged in a buffer when the caller
// stops. An error wraps domain.ErrNotFound once the consumer is gone
// (being deleted), or ctx's error, or domain.ErrUnavailable.
func (d *Durable) Next(ctx context.Context) (*Delivery, error) {
	for {
		msg, err := d.cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
				continue
			}
			return nil, durableErr(d.name, err)
		}
		meta, err := msg.Metadata()
		if err != nil { // not a JetStream message; cannot happen on a consumer
			d.log.Warn("durable consumer message without metadata", "durable", d.name, "err", err)
			_ = msg.Term()
			continue
		}
		m := domain.Message{Sequence: meta.Sequence.Stream, Payload: msg.Data()}
		m.Event, m.Err = decodeMsg(msg.Subject(), msg.Headers(), m.Payload, m.Sequence)
		if err := d.keys.openMessage(ctx, &m); err != nil {
			_ = msg.Nak() // delivered again once the keys answer
			return nil, fmt.Errorf("durable %s: %w", d.name, Unavailable(err))
		}
		return &Delivery{Message: m, msg: msg}, nil
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
}

// InProgress tells JetStream the message is still being handled, which
// restarts its AckWait.
func (d *Delivery) InProgress() error { return d.msg.InProgress() }

// Ack acknowledges the message and waits for JetStream to confirm, so it is
// not handed out again after a restart.
func (d *Delivery) Ack(ctx context.Context) error { return d.msg.DoubleAck(ctx) }

// Nak hands the message back, to be handed out again at once.
func (d *Delivery) Nak() error { return d.msg.Nak() }

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
