package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

// TestDemoDataDecodesStrictly: every demo event, as Decide stores it, decodes
// strictly into its type's data struct, so readers of the demo stream never
// meet data the struct does not describe.
func TestDemoDataDecodesStrictly(t *testing.T) {
	const today = "2026-01-02"
	recorded := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	seen := make(map[domain.EventType]bool)
	for i, eng := range demoData(today) {
		e := &domain.Engagement{}
		id := fmt.Sprintf("0193a5b2-7c3d-7e4f-8a9b-%012x", i)
		events := append([]demoEvent{{typ: domain.EngagementRecorded, on: eng.on, data: eng.data}}, eng.events...)
		for j, de := range events {
			if de.link != "" {
				de.data["target_id"] = "0193a5b2-7c3d-7e4f-8a9b-ffffffffffff"
			}
			data, err := json.Marshal(de.data)
			if err != nil {
				t.Fatal(err)
			}
			occurred, precision, err := recorded, domain.PrecisionNone, error(nil)
			if de.on != "" {
				occurred, precision, err = domain.ParsePartialDate(de.on)
			}
			if err != nil {
				t.Fatalf("%s: %v", eng.key, err)
			}
			ev := domain.Event{ID: fmt.Sprintf("0193a5b2-7c3d-7e4f-%04x-%012x", j, i), Type: de.typ, EngagementID: id,
				Kind: e.Kind(), Version: e.Version() + 1, Sequence: uint64(j + 1), OccurredAt: occurred, TimePrecision: precision,
				RecordedAt: recorded.Add(time.Duration(j) * time.Second), Actor: "demo", Data: data, PrevHash: e.Hash()}
			decided, err := e.Decide(ev)
			if err != nil {
				t.Fatalf("%s: %s refused: %v", eng.key, de.typ, err)
			}
			s, _ := domain.SpecOf(de.typ)
			if _, err := s.Decode(decided.Data); err != nil {
				t.Errorf("%s: %s data %s does not decode strictly: %v", eng.key, de.typ, decided.Data, err)
			}
			if err := e.Apply(decided); err != nil {
				t.Fatalf("%s: apply %s: %v", eng.key, de.typ, err)
			}
			seen[de.typ] = true
		}
	}
	if len(seen) < 5 {
		t.Errorf("the demo data has only %d event types: %v", len(seen), seen)
	}
}
