package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The size of the stream BenchmarkRebuild replays.
const (
	benchEvents      = 100_000
	benchEngagements = 1_000
)

// BenchmarkRebuild replays a stream of benchEvents valid, chained events over
// benchEngagements engagements: through Read into fresh projections (what
// `engagements rebuild` and a restart do), and as a floor, with a plain
// ordered consumer that reads the messages without decoding them. Run with
// -benchtime=1x; each reports events/s.
func BenchmarkRebuild(b *testing.B) {
	ctx := context.Background()
	s, err := eventstore.Open(ctx, eventstore.Config{DataDir: b.TempDir(), NATSListen: "127.0.0.1:-1",
		Sync: eventstore.SyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	fillChained(b, js, benchEvents, benchEngagements)
	if last, err := s.LastSequence(ctx); err != nil || last != benchEvents {
		b.Fatalf("stream holds %d messages (%v), want %d", last, err, benchEvents)
	}

	b.Run("projections", func(b *testing.B) {
		runs := 0
		for b.Loop() {
			p := projections.New(nil)
			for m, err := range s.Read(ctx, 0, domain.Filter{}) {
				if err != nil {
					b.Fatal(err)
				}
				p.Handle(m.Sequence, m.Event, m.Err)
			}
			if st := p.Stats(); st.Events != benchEvents || st.Rejected != 0 || st.Undecodable != 0 || p.Count() != benchEngagements {
				b.Fatalf("rebuild folded %+v over %d engagements, want %d valid events over %d", st, p.Count(),
					benchEvents, benchEngagements)
			}
			runs++
		}
		b.ReportMetric(float64(runs*benchEvents)/b.Elapsed().Seconds(), "events/s")
	})

	b.Run("raw ordered consumer", func(b *testing.B) {
		stream, err := js.Stream(ctx, eventstore.StreamName)
		if err != nil {
			b.Fatal(err)
		}
		runs := 0
		for b.Loop() {
			cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
			if err != nil {
				b.Fatal(err)
			}
			it, err := cons.Messages(jetstream.PullMaxMessages(1024))
			if err != nil {
				b.Fatal(err)
			}
			size := 0
			for n := 0; n < benchEvents; n++ {
				msg, err := it.Next()
				if err != nil {
					it.Stop()
					b.Fatalf("after %d messages: %v", n, err)
				}
				size += len(msg.Data())
			}
			it.Stop()
			if size == 0 {
				b.Fatal("read no payload")
			}
			runs++
		}
		b.ReportMetric(float64(runs*benchEvents)/b.Elapsed().Seconds(), "events/s")
	})
}

// fillChained publishes n events over engagements engagements, round-robin,
// each with the version, prev_hash and hash headers that Append would give
// it: an engagement.recorded agreement, then engagement.noted events.
func fillChained(b *testing.B, js jetstream.JetStream, n, engagements int) {
	b.Helper()
	type head struct {
		id   string
		hash string
	}
	heads := make([]head, engagements)
	for i := range heads {
		heads[i].id = newID()
	}
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		h := &heads[i%engagements]
		version := i/engagements + 1
		ev := domain.Event{ID: newID(), Type: domain.EngagementNoted, EngagementID: h.id, Kind: domain.KindAgreement,
			Version: version, OccurredAt: start.Add(time.Duration(i) * time.Minute), RecordedAt: time.Now().UTC(),
			Actor: "bench", Data: json.RawMessage(fmt.Sprintf(`{"note":"note %d"}`, i))}
		if version == 1 {
			ev.Type = domain.EngagementRecorded
			ev.Data = json.RawMessage(fmt.Sprintf(`{"kind":"agreement","title":"MOU %d","parties":["IOM","WHO"]}`, i))
		}
		subject, err := eventstore.Subject(ev.Kind, ev.EngagementID, ev.Type)
		if err != nil {
			b.Fatal(err)
		}
		payload, err := eventstore.Encode(ev)
		if err != nil {
			b.Fatal(err)
		}
		msg := nats.NewMsg(eventstore.IntakeSubject(subject))
		msg.Data = payload
		if h.hash != "" {
			msg.Header.Set(eventstore.HeaderPrevHash, h.hash)
		}
		h.hash = eventstore.ChainHash(h.hash, subject, payload)
		msg.Header.Set(eventstore.HeaderHash, h.hash)
		if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatalf("publish %d: %v", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("async publishes not acknowledged within a minute")
	}
}
