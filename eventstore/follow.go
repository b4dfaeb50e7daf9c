package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go/jetstream"
)

// selectionSubjects builds filter subjects from allow-listed parts only.
func selectionSubjects(sel domain.Selection) ([]string, error) {
	id := "*"
	if sel.EngagementID != "" {
		if err := domain.CheckID(sel.EngagementID); err != nil {
			return nil, err
		}
		id = sel.EngagementID
	}
	kind := "*"
	if sel.Kind != "" {
		if !sel.Kind.Valid() {
			return nil, fmt.Errorf("filter: unknown kind %q", sel.Kind)
		}
		kind = string(sel.Kind)
	}
	if len(sel.Types) == 0 {
		return []string{subjectRoot + "." + kind + "." + id + ".*"}, nil
	}
	out := make([]string, 0, len(sel.Types))
	for _, t := range sel.Types {
		if _, err := domain.ParseEventType(string(t)); err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		out = append(out, subjectRoot+"."+kind+"."+id+"."+t.Verb())
	}
	return out, nil
}

// Follow delivers the stored CloudEvent documents (the message payloads,
// byte for byte, with the decoded event) that sel matches, after sequence
// after, then new ones as they are appended, with no gap and no duplicate
// (one ordered consumer does both), until ctx ends or fn returns an error,
// which Follow returns. Messages that do not decode or fail their hash check
// are not passed on (verify reports them).
func (s *Store) Follow(ctx context.Context, after uint64, sel domain.Selection, fn func(ev domain.Event, payload []byte) error) error {
	subjects, err := selectionSubjects(sel)
	if err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
	if after > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = after + 1
	}
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", unavailable(err))
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256), jetstream.PullHeartbeat(liveHeartbeat))
	if err != nil {
		return fmt.Errorf("consume: %w", unavailable(err))
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("next message: %w", unavailable(err))
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		ev, err := decodeMsg(msg.Subject(), msg.Headers(), msg.Data(), meta.Sequence.Stream)
		if err != nil {
			s.log.Warn("not following a message that fails its checks", "sequence", meta.Sequence.Stream, "err", err)
			continue
		}
		if err := fn(ev, msg.Data()); err != nil {
			return err
		}
	}
}
