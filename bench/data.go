package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// dataset is the generated stream: what the read, restart and memory
// measurements run on.
type dataset struct {
	Events      int
	IDs         []string // the engagements, in the order they were recorded
	MeanPayload float64
	Elapsed     time.Duration
}

// generate publishes events validly chained events over engagements
// engagements into store, round-robin: each engagement's engagement.recorded
// agreement first, its agreement.signed second (expiring between 100 days
// ago and 900 days ahead, so that every agreement has a deadline for
// upcoming_p99), then engagement.noted events, every one with the
// version, prev_hash and hash headers eventstore.Append would give it (the
// projection refuses an event that breaks its engagement's chain). Publishes
// are asynchronous; it returns once all are acknowledged. The CloudEvents
// are about the size of the API's benchmark appends (~430 bytes).
func generate(ctx context.Context, store *eventstore.Store, events, engagements int, progress func(done int)) (dataset, error) {
	js := store.JetStream()
	type head struct {
		id   string
		hash string
	}
	heads := make([]head, engagements)
	ds := dataset{Events: events, IDs: make([]string, engagements)}
	for i := range heads {
		heads[i].id = newID()
		ds.IDs[i] = heads[i].id
	}
	start := time.Now()
	occurred := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var bytes int64
	for i := range events {
		h := &heads[i%engagements]
		ev := generatedEvent(i, engagements, h.id, occurred, today)
		subject, err := eventstore.Subject(ev.Kind, ev.EngagementID, ev.Type)
		if err != nil {
			return ds, err
		}
		payload, err := eventstore.Encode(ev)
		if err != nil {
			return ds, err
		}
		bytes += int64(len(payload))
		msg := nats.NewMsg(eventstore.IntakeSubject(subject)) // stored under subject
		msg.Data = payload
		if h.hash != "" {
			msg.Header.Set(eventstore.HeaderPrevHash, h.hash)
		}
		h.hash = eventstore.ChainHash(h.hash, subject, payload)
		msg.Header.Set(eventstore.HeaderHash, h.hash)
		if _, err := js.PublishMsgAsync(msg, jetstream.WithExpectStream(eventstore.StreamName),
			jetstream.WithStallWait(time.Minute)); err != nil {
			return ds, fmt.Errorf("publish event %d: %w", i, err)
		}
		if (i+1)%100_000 == 0 && progress != nil {
			progress(i + 1)
		}
		if ctx.Err() != nil {
			return ds, ctx.Err()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		return ds, fmt.Errorf("%d async publishes not acknowledged within 2 minutes", js.PublishAsyncPending())
	case <-ctx.Done():
		return ds, ctx.Err()
	}
	ds.Elapsed = time.Since(start)
	ds.MeanPayload = float64(bytes) / float64(events)
	last, err := store.LastSequence(ctx)
	if err != nil {
		return ds, err
	}
	if last != uint64(events) {
		return ds, fmt.Errorf("the stream holds %d messages after generating %d (failed async publishes?)", last, events)
	}
	return ds, nil
}

// generatedEvent is the i-th event of a generated stream over engagements
// engagements (its engagement's id is id): engagement.recorded for version
// 1, agreement.signed for version 2, engagement.noted after that. The
// PostgreSQL peer stores the same events (bench/postgres.go).
func generatedEvent(i, engagements int, id string, occurred, today time.Time) domain.Event {
	version := i/engagements + 1
	ev := domain.Event{ID: newID(), Type: domain.EngagementNoted, EngagementID: id, Kind: domain.KindAgreement,
		Version: version, OccurredAt: occurred.Add(time.Duration(i) * time.Minute), RecordedAt: time.Now().UTC(),
		Actor: "bench"}
	switch version {
	case 1:
		ev.Type = domain.EngagementRecorded
		ev.Data = json.RawMessage(fmt.Sprintf(
			`{"kind":"agreement","title":"Memorandum of understanding %d","parties":["IOM","WHO"]}`, i))
	case 2:
		ev.Type = domain.AgreementSigned
		expires := today.AddDate(0, 0, (i*7919)%1000-100).Format(domain.DateLayout)
		ev.Data = json.RawMessage(fmt.Sprintf(`{"signed_on":%q,"expires_on":%q,"notice_days":30}`,
			ev.OccurredAt.Format(domain.DateLayout), expires))
	default:
		ev.Data = json.RawMessage(fmt.Sprintf(`{"note":"Note %d: follow-up agreed."}`, i))
	}
	return ev
}
