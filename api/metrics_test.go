package api_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestMetricsAndMinSequence(t *testing.T) {
	ts := newTestServer(t)
	r := ts.post(t, "/v1/engagements", `{"kind":"meeting","title":"HLM","parties":["IOM"]}`)
	if r.status != http.StatusCreated {
		t.Fatal(r)
	}
	id := decode[struct {
		ID       string
		Sequence uint64
	}](t, r)
	ts.get(t, "/v1/engagements/"+id.ID)
	ts.get(t, "/v1/engagements/not-a-uuid")

	m := ts.get(t, "/metrics")
	if m.status != http.StatusOK {
		t.Fatal(m)
	}
	body := string(m.body)
	for _, want := range []string{
		`engagements_http_requests_total{method="POST",route="/v1/engagements",status="201"} 1`,
		`engagements_http_requests_total{method="GET",route="/v1/engagements/:id",status="200"} 1`,
		`engagements_http_requests_total{method="GET",route="/v1/engagements/:id",status="400"} 1`,
		`engagements_http_request_duration_seconds_bucket{method="GET",route="/v1/engagements/:id"`,
		`engagements_append_duration_seconds_count{outcome="appended"} 1`,
		"engagements_projection_lag 0",
		"engagements_events_applied_total 1",
		"engagements_events_rejected_total 0",
		"engagements_events_undecodable_total 0",
		"engagements_nats_connected 1",
		"engagements_event_streams 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Cross-instance read-your-writes: a sequence already applied reads at once,
	// one not yet applied (here: never) answers 503 with Retry-After.
	if r := ts.get(t, "/v1/engagements/"+id.ID+"?min_sequence=1"); r.status != http.StatusOK {
		t.Errorf("min_sequence reached: %s", r)
	}
	if r := ts.get(t, "/v1/engagements/"+id.ID, "Min-Sequence", "1"); r.status != http.StatusOK {
		t.Errorf("Min-Sequence header reached: %s", r)
	}
	if r := ts.get(t, "/v1/engagements/"+id.ID+"?min_sequence=99"); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("min_sequence not reached: %s", r)
	}
	if r := ts.get(t, "/v1/engagements/"+id.ID+"?min_sequence=x"); r.status != http.StatusBadRequest {
		t.Errorf("bad min_sequence: %s", r)
	}
}
