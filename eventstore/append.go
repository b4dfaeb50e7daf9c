package eventstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
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
	if err != nil {
		if isWrongLastSequence(err) {
			return 0, false, fmt.Errorf("append %s to %s: %w", ev.Type, ev.EngagementID, domain.ErrConflict)
		}
		s.failed(ctx, err)
		return 0, false, fmt.Errorf("append %s to %s: %w", ev.Type, ev.EngagementID, Unavailable(err))
	}
	return ack.Sequence, ack.Duplicate, nil
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
