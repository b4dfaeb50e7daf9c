package domain

import "testing"

// EventVersion is an event's 1-based position in the engagement: its
// version, as the projection's sequences hold them in the same order.
func TestEventVersion(t *testing.T) {
	e, recorded := record(t, KindAgreement)
	ids := []string{recorded[0].ID}
	for range 3 {
		ev := newEvent(t, e, EngagementNoted, obj{"note": "again"})
		mustApply(t, e, ev)
		ids = append(ids, ev.ID)
	}
	for i, id := range ids {
		if v, ok := e.EventVersion(id); !ok || v != i+1 {
			t.Errorf("EventVersion(event %d) = %d, %v; want %d", i+1, v, ok, i+1)
		}
	}
	for _, id := range []string{"", "not a uuid", "0193a000-0000-7000-8000-000000000000"} {
		if v, ok := e.EventVersion(id); ok {
			t.Errorf("EventVersion(%q) = %d, want none", id, v)
		}
	}
}
