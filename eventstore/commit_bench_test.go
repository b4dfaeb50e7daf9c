package eventstore_test

import (
	"encoding/json"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// benchWriters is how many goroutines append at once in the group commit
// benchmarks.
const benchWriters = 64

// benchNoted is an engagement.noted event about the size the API stores.
func benchNoted(id string) domain.Event {
	ev := newEvent(id)
	ev.Type, ev.Version = domain.EngagementNoted, 2
	ev.Data = json.RawMessage(`{"note":"` + strings.Repeat("n", 120) + `"}`)
	return ev
}

// runWriters runs b.N appends from benchWriters goroutines, each on its own
// engagement, and reports events/s.
func runWriters(b *testing.B, publish func(w int, seq uint64) (uint64, error)) {
	b.Helper()
	var next atomic.Int64
	b.SetParallelism(max(1, benchWriters/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(next.Add(1) - 1)
		var seq uint64
		for pb.Next() {
			s, err := publish(w, seq)
			if err != nil {
				b.Error(err)
				return
			}
			seq = s
		}
	})
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "events/s")
	}
}

// BenchmarkAppendSyncAlways appends through Store.Append under SyncAlways
// (group commit), each writer to its own engagement with the right
// expected sequence.
func BenchmarkAppendSyncAlways(b *testing.B) {
	s := openStore(b, eventstore.Config{DataDir: b.TempDir(), Sync: eventstore.SyncAlways})
	ids := make([]string, benchWriters*4)
	for i := range ids {
		ids[i] = newID()
	}
	runWriters(b, func(w int, expected uint64) (uint64, error) {
		seq, _, err := s.Append(b.Context(), benchNoted(ids[w]), expected)
		return seq, err
	})
}

// BenchmarkPublishRawSyncAlways publishes a payload of the same size with
// a plain JetStream publish per message, each waiting for its own fsync.
func BenchmarkPublishRawSyncAlways(b *testing.B) {
	s := openStore(b, eventstore.Config{DataDir: b.TempDir(), Sync: eventstore.SyncAlways, NATSListen: "127.0.0.1:-1"})
	_, js := connect(b, s)
	payload, err := eventstore.Encode(benchNoted(newID()))
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, benchWriters*4)
	for i := range ids {
		ids[i] = newID()
	}
	runWriters(b, func(w int, _ uint64) (uint64, error) {
		ack, err := js.Publish(b.Context(), "engagements-intake.agreement."+ids[w]+".noted", payload, jetstream.WithExpectStream("ENGAGEMENTS"))
		if err != nil {
			return 0, err
		}
		return ack.Sequence, nil
	})
}
