package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

func TestSubscriptionFromTime(t *testing.T) {
	ws := newWebhookServer(t)
	crm := ws.mint(t, "crm-sync", domain.RoleSubscriber)
	record := func(title string) uint64 {
		r := ws.post(t, "/v1/engagements", fmt.Sprintf(`{"kind":"initiative","title":%q,"parties":["IOM"]}`, title), bearer(ws.admin)...)
		if r.status != http.StatusCreated {
			t.Fatal(r)
		}
		return decode[struct{ Sequence uint64 }](t, r).Sequence
	}
	record("before")
	at := afterNow()
	after1, after2 := record("after 1"), record("after 2")
	recv := newHookReceiver(t, http.StatusOK)
	secret := whsec(t)
	body := func(extra string) string {
		return fmt.Sprintf(`{"url":%q,"types":["engagement.*"],"secret":%q%s}`, recv.URL, secret, extra)
	}

	r := ws.post(t, "/v1/subscriptions", body(`,"from_time":"`+at.UTC().Format(time.RFC3339Nano)+`"`), bearer(crm)...)
	if r.status != http.StatusCreated {
		t.Fatalf("subscribe from a time: %s", r)
	}
	sub := decode[struct {
		FromSequence uint64    `json:"from_sequence"`
		FromTime     time.Time `json:"from_time"`
	}](t, r)
	if sub.FromSequence != after1 || !sub.FromTime.Equal(at) {
		t.Errorf("from_sequence %d, from_time %v; want %d, %v", sub.FromSequence, sub.FromTime, after1, at)
	}
	for _, want := range []uint64{after1, after2} {
		var ce struct{ Subject string }
		d := recv.next(t)
		if err := json.Unmarshal(d.body, &ce); err != nil {
			t.Fatal(err)
		}
		got := ws.get(t, "/v1/engagements/"+ce.Subject+"/history", bearer(ws.admin)...)
		if seq := decode[struct{ Events []struct{ Sequence uint64 } }](t, got).Events[0].Sequence; seq != want {
			t.Errorf("delivered the event at sequence %d, want %d", seq, want)
		}
	}

	for _, tt := range []struct {
		name   string
		extra  string
		status int
	}{
		{"from_time not a time → 422", `,"from_time":"yesterday"`, 422},
		{"from_time before 1900 → 422", `,"from_time":"1899-12-31"`, 422},
		{"from_time as a number → 400", `,"from_time":20260101`, 400},
		{"from_time with from_sequence → 422", `,"from_time":"2026-01-01","from_sequence":1`, 422},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ws.post(t, "/v1/subscriptions", body(tt.extra), bearer(crm)...)
			if r.status != tt.status || mediaType(r.header) != "application/problem+json" {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if !strings.Contains(string(r.body), `"field":"from_time"`) {
				t.Errorf("problem does not name from_time: %s", r.body)
			}
		})
	}
}
