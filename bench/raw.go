package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// appendNote is the note every benchmark append carries, through the API
// and raw alike, so the stored CloudEvents are the same size.
const appendNote = "Discussed at the annual review."

// appendBody is the API request of one benchmark append.
var appendBody = `{"type":"engagement.noted","data":{"note":"` + appendNote + `"}}`

// apiActor is the actor of the API's appends: the name of the admin token
// the harness uses. The raw payloads carry it too, for the same size.
const apiActor = "admin"

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// noteEvent is an engagement.noted event as the API would store it for the
// benchmark append.
func noteEvent(engagement string, version int) domain.Event {
	now := time.Now().UTC()
	return domain.Event{ID: newID(), Type: domain.EngagementNoted, EngagementID: engagement, Kind: domain.KindAgreement,
		Version: version, OccurredAt: now, RecordedAt: now, Actor: apiActor,
		Data: json.RawMessage(fmt.Sprintf(`{"note":%q}`, appendNote))}
}

// publishResult is what a raw publish run did.
type publishResult struct {
	Published int64
	Failed    int64
	FirstErr  error
	Elapsed   time.Duration
	Payload   int // bytes of each CloudEvent
}

// Rate is acknowledged publishes per second.
func (r publishResult) Rate() float64 { return float64(r.Published) / r.Elapsed.Seconds() }

// rawPublish opens a fresh stream in dir with the given sync policy and lets
// clients goroutines publish for d, each on its own engagement's subject,
// each waiting for its ack before the next publish (as one HTTP client waits
// for its answer). They share the store's own in-process connection, the
// one the service's appends use. With expect, each publish carries what
// eventstore.Append sends: the expected stream, the engagement's expected
// last subject sequence (the previous ack's) and the hash-chain headers;
// without, it is a plain PublishMsg of the payload.
func rawPublish(ctx context.Context, dir string, policy eventstore.Sync, clients int, d time.Duration, expect bool) (publishResult, error) {
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: dir, Sync: policy})
	if err != nil {
		return publishResult{}, err
	}
	defer store.Close()
	js := store.JetStream()

	var res publishResult
	var published, failed atomic.Int64
	var errOnce sync.Once
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	for range clients {
		id := newID()
		sample, err := eventstore.Encode(noteEvent(id, 2))
		if err != nil {
			return res, err
		}
		res.Payload = len(sample)
		wg.Go(func() {
			var last uint64 // the engagement's last subject sequence
			var head string // its hash-chain head
			for version := 1; time.Now().Before(deadline) && ctx.Err() == nil; version++ {
				ev := noteEvent(id, version)
				subject, err := eventstore.Subject(ev.Kind, ev.EngagementID, ev.Type)
				if err == nil {
					var payload []byte
					if payload, err = eventstore.Encode(ev); err == nil {
						msg := nats.NewMsg(eventstore.IntakeSubject(subject))
						msg.Data = payload
						var opts []jetstream.PublishOpt
						if expect {
							if head != "" {
								msg.Header.Set(eventstore.HeaderPrevHash, head)
							}
							head = eventstore.ChainHash(head, subject, payload)
							msg.Header.Set(eventstore.HeaderHash, head)
							opts = append(opts, jetstream.WithExpectStream(eventstore.StreamName),
								jetstream.WithExpectLastSequenceForSubject(last, engagementFilter(id)))
						}
						var ack *jetstream.PubAck
						if ack, err = js.PublishMsg(ctx, msg, opts...); err == nil {
							last = ack.Sequence
						}
					}
				}
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { res.FirstErr = err })
					return // a raw publisher that fails stops: its expected sequence is lost
				}
				published.Add(1)
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Published, res.Failed = published.Load(), failed.Load()
	return res, nil
}

// engagementFilter matches every subject of one engagement, whatever its
// kind: the filter eventstore.Append passes with the expected sequence
// (eventstore keeps its own unexported; the subject layout is the
// contract's, engagements.<kind>.<id>.<verb>).
func engagementFilter(id string) string { return "engagements.*." + id + ".*" }

// readRaw reads the first n messages of the stream with nats.go's ordered
// consumer (pull batches of 1024, as eventstore's reader), without decoding:
// the floor a rebuild is compared with. It returns the payload bytes read.
func readRaw(ctx context.Context, store *eventstore.Store, n int) (time.Duration, int64, error) {
	start := time.Now()
	stream, err := store.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		return 0, 0, err
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return 0, 0, err
	}
	defer it.Stop()
	var size int64
	for i := range n {
		msg, err := it.Next()
		if err != nil {
			return 0, 0, fmt.Errorf("ordered consumer, after %d messages: %w", i, err)
		}
		size += int64(len(msg.Data()))
	}
	return time.Since(start), size, nil
}

// rebuildInProcess replays the whole stream into fresh projections through
// Projector.Fold: what `engagements rebuild` (cmd/engagements.Rebuild) and a
// first start without checkpoint do, minus the HTTP server.
func rebuildInProcess(ctx context.Context, store *eventstore.Store) (time.Duration, projections.Stats, int, error) {
	p := projections.New(nil)
	start := time.Now()
	err := p.Fold(ctx, store, nil)
	return time.Since(start), p.Stats(), p.Count(), err
}
