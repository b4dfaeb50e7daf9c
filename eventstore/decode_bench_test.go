package eventstore_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// BenchmarkDecode decodes one stored engagement.recorded CloudEvent, the
// first step of every event a rebuild or a subscriber reads.
func BenchmarkDecode(b *testing.B) {
	ev := domain.Event{ID: newID(), Type: domain.EngagementRecorded, EngagementID: newID(), Kind: domain.KindAgreement,
		Version: 1, OccurredAt: time.Date(2019, 1, 15, 0, 0, 0, 0, time.UTC), RecordedAt: time.Now().UTC(), Actor: "coordinator",
		Data: json.RawMessage(`{"kind":"agreement","title":"Memorandum of understanding","parties":["IOM","WHO"],` +
			`"tags":["health","migration"],"description":"A framework for cooperation on migrant health."}`)}
	subject, err := eventstore.Subject(ev.Kind, ev.EngagementID, ev.Type)
	if err != nil {
		b.Fatal(err)
	}
	payload, err := eventstore.Encode(ev)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := eventstore.Decode(subject, payload, 1); err != nil {
			b.Fatal(err)
		}
	}
}
