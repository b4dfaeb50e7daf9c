package domain

import (
	"encoding/json"
	"testing"
	"time"
)

// BenchmarkApply folds one engagement.amended event into an engagement
// (Decide's checks and the fold), what a rebuild does for every event.
func BenchmarkApply(b *testing.B) {
	at := time.Date(2019, 1, 15, 0, 0, 0, 0, time.UTC)
	rec := Event{ID: newID(), Type: EngagementRecorded, EngagementID: newID(), Kind: KindAgreement, Version: 1,
		OccurredAt: at, RecordedAt: at, Actor: "coordinator",
		Data: json.RawMessage(`{"kind":"agreement","title":"Memorandum of understanding","parties":["IOM","WHO"]}`)}
	var base Engagement
	if err := base.Apply(rec); err != nil {
		b.Fatal(err)
	}
	ev := Event{ID: newID(), Type: EngagementAmended, EngagementID: rec.EngagementID, Kind: KindAgreement, Version: 2,
		OccurredAt: at, RecordedAt: at, Actor: "coordinator", PrevHash: base.v.Hash,
		Data: json.RawMessage(`{"title":"IOM–WHO memorandum","tags":["health","migration"],` +
			`"description":"A framework for cooperation on migrant health."}`)}
	b.ReportAllocs()
	for b.Loop() {
		e := base // the fold leaves base's slices alone; only the packed refs may grow
		e.events = e.events[:len(e.events):len(e.events)]
		if err := e.Apply(ev); err != nil {
			b.Fatal(err)
		}
	}
}
