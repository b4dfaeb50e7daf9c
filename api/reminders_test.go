package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestClientsCannotRecordReminders: the reminders are the service's own
// record; a client sending one, even as X-Actor: system, gets 422 naming
// the type, and nothing is stored.
func TestClientsCannotRecordReminders(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("Reminded MOU"))
	ts.appendEvent(t, id, `{"type":"agreement.signed","data":{"signed_on":"2020-01-15","expires_on":"2030-01-15"}}`)
	tests := []struct{ name, body string }{
		{"expiring", `{"type":"agreement.expiring","data":{"expires_on":"2030-01-15","days_left":30,"deadline":"expiry"}}`},
		{"expired", `{"type":"agreement.expired","data":{"expires_on":"2030-01-15"}}`},
		{"action overdue", `{"type":"engagement.action_overdue","data":{"action_id":"a1","due_on":"2030-01-15"}}`},
		{"meeting upcoming", `{"type":"meeting.upcoming","data":{"starts_on":"2030-01-15","days_left":7}}`},
	}
	for _, tt := range tests {
		for _, actor := range []string{"", "system"} {
			t.Run(tt.name+" as "+actor, func(t *testing.T) {
				before := ts.lastSequence(t)
				var header []string
				if actor != "" {
					header = []string{"X-Actor", actor}
				}
				r := ts.post(t, "/v1/engagements/"+id+"/events", tt.body, header...)
				if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), `"field":"type"`) {
					t.Fatalf("got %s, want 422 naming the type", r)
				}
				if after := ts.lastSequence(t); after != before {
					t.Errorf("stream went from %d to %d", before, after)
				}
			})
		}
	}
}
