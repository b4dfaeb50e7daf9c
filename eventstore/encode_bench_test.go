package eventstore_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// BenchmarkEncode encodes a typical appended event as its CloudEvent.
func BenchmarkEncode(b *testing.B) {
	ev := domain.Event{
		ID: uuid.Must(uuid.NewV7()).String(), Type: domain.EngagementNoted, EngagementID: uuid.Must(uuid.NewV7()).String(),
		Kind: domain.KindAgreement, Version: 2, OccurredAt: time.Now(), RecordedAt: time.Now(), Actor: "anonymous",
		Data: []byte(`{"note":"Discussed at the annual review."}`),
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := eventstore.Encode(ev); err != nil {
			b.Fatal(err)
		}
	}
}
