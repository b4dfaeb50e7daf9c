package eventstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Append publishes ev to its engagement's intake subject (IntakeSubject),
// which the stream stores under the engagement's subject. expected is the stream
// sequence of the engagement's latest event (0 for a new engagement);
// JetStream refuses the append if another event was stored for the
// engagement since, and Append returns domain.ErrConflict.
//
// When ev.IdempotencyKey was already used within DuplicateWindow, nothing new
// is stored and duplicate is true, with the sequence of the first append.
// JetStream checks expected before the key, so a retry must read the
// engagement's sequence afresh: with the stale one it gets ErrConflict.
// Success means JetStream acknowledged the append under its sync policy.
//
// Under SyncAlways concurrent appends are committed together (see
// committer); each still gets the answer it would get on its own.
//
// While the store refuses writes (WritesRefused) Append fails at once with
// a *RefusedError, which is domain.ErrUnavailable; under SyncAlways an
// append waiting for its batch when a refusal begins fails with it too. None
// waits longer than publishTimeout for its acknowledgement.
func (s *Store) Append(ctx context.Context, ev domain.Event, expected uint64) (seq uint64, duplicate bool, err error) {
	if r := s.guard.refused(); r != nil {
		s.guard.failures.Add(1)
		return 0, false, fmt.Errorf("append %s to %s: %w", ev.Type, ev.EngagementID, r)
	}
	msg, err := s.appendMsg(ev, expected)
	if err != nil {
		return 0, false, err
	}
	var ack *jetstream.PubAck
	if s.committer != nil {
		ack, err = s.committer.append(ctx, msg, ev.EngagementID, ev.IdempotencyKey)
	} else {
		ack, err = s.publish(ctx, msg)
	}
	r := s.appended(ctx, ev, ack, err)
	return r.seq, r.duplicate, r.err
}

// AppendAll appends each of evs as Append does, expected[i] being evs[i]'s
// expected sequence, and returns each one's sequence, duplicate flag and
// error, in the order of evs. The appends are independent: each is
// checked, stored or refused on its own; they must name distinct
// engagements. Under SyncAlways they are handed to the group commit
// together, so a batch of commands for many engagements costs one wait
// instead of a goroutine and a wait per append.
func (s *Store) AppendAll(ctx context.Context, evs []domain.Event, expected []uint64) (seqs []uint64, duplicates []bool, errs []error) {
	seqs, duplicates, errs = make([]uint64, len(evs)), make([]bool, len(evs)), make([]error, len(evs))
	set := func(i int, o appendOutcome) { seqs[i], duplicates[i], errs[i] = o.seq, o.duplicate, o.err }
	if r := s.guard.refused(); r != nil {
		for i, ev := range evs {
			s.guard.failures.Add(1)
			errs[i] = fmt.Errorf("append %s to %s: %w", ev.Type, ev.EngagementID, r)
		}
		return seqs, duplicates, errs
	}
	msgs := make([]*nats.Msg, len(evs))
	for i, ev := range evs {
		if msgs[i], errs[i] = s.appendMsg(ev, expected[i]); errs[i] != nil {
			msgs[i] = nil
		}
	}
	if s.committer != nil {
		for i, res := range s.committer.appendAll(ctx, msgs, evs) {
			if msgs[i] != nil {
				set(i, s.appended(ctx, evs[i], res.ack, res.err))
			}
		}
		return seqs, duplicates, errs
	}
	var wg sync.WaitGroup
	for i, msg := range msgs {
		if msg == nil {
			continue
		}
		wg.Go(func() {
			ack, err := s.publish(ctx, msg)
			set(i, s.appended(ctx, evs[i], ack, err))
		})
	}
	wg.Wait()
	return seqs, duplicates, errs
}

// appendOutcome is what one append came to: Append's results.
type appendOutcome struct {
	seq       uint64
	duplicate bool
	err       error
}

// appended is the outcome of ev's append from the acknowledgement or the
// error its publish got.
func (s *Store) appended(ctx context.Context, ev domain.Event, ack *jetstream.PubAck, err error) appendOutcome {
	if err != nil {
		if isWrongLastSequence(err) {
			return appendOutcome{err: fmt.Errorf("append %s to %s: %w", ev.Type, ev.EngagementID, domain.ErrConflict)}
		}
		s.failed(ctx, err)
		return appendOutcome{err: fmt.Errorf("append %s to %s: %w", ev.Type, ev.EngagementID, Unavailable(err))}
	}
	return appendOutcome{seq: ack.Sequence, duplicate: ack.Duplicate}
}

// publish publishes one message and waits for its acknowledgement.
func (s *Store) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	return publishBounded(ctx, s.js, msg)
}

// publishBounded publishes msg and waits at most publishTimeout for its
// acknowledgement. Without a deadline on ctx the jetstream client applies
// its own default, publishTimeout, at no cost here.
func publishBounded(ctx context.Context, js jetstream.JetStream, msg *nats.Msg) (*jetstream.PubAck, error) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) > publishTimeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	return js.PublishMsg(ctx, msg)
}

// appendMsg builds the message that appends ev, with the headers that make
// JetStream check the stream, the engagement's expected last sequence and
// the idempotency key.
func (s *Store) appendMsg(ev domain.Event, expected uint64) (*nats.Msg, error) {
	subject, err := Subject(ev.Kind, ev.EngagementID, ev.Type)
	if err != nil {
		return nil, err
	}
	payload, err := encode(ev, s.schemas)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	// Published on the intake subject; the stream stores it under subject,
	// which the chain hash below covers.
	msg := nats.NewMsg(IntakeSubject(subject))
	msg.Data = payload
	// The chain: ev.PrevHash is the engagement's head as the caller read it
	// together with expected, so JetStream's check guards both.
	if ev.PrevHash != "" {
		msg.Header.Set(HeaderPrevHash, ev.PrevHash)
	}
	msg.Header.Set(HeaderHash, ChainHash(ev.PrevHash, subject, payload))
	msg.Header.Set(jetstream.ExpectedStreamHeader, StreamName)
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expected, 10))
	msg.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, engagementFilter(ev.EngagementID))
	if ev.IdempotencyKey != "" {
		msg.Header.Set(jetstream.MsgIDHeader, ev.IdempotencyKey)
	}
	return msg, nil
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

// Unavailable marks transport failures (no connection, no responders,
// timeouts) and JetStream's own 503s (no quorum, no leader) as
// domain.ErrUnavailable, an outage the client may retry; other JetStream API
// errors and cancellations stay as they are. It is the one rule for every
// adapter on the store's connection (webhooks, tokens).
func Unavailable(err error) error {
	if errors.Is(err, domain.ErrUnavailable) {
		return err
	}
	if _, ok := refusalReason(err); ok {
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code == http.StatusServiceUnavailable {
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	if errors.As(err, &apiErr) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
}
