package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// A correction changes the current state; the history keeps both the
// original event, unchanged, and the correction.
func TestCorrectionFixesTitleKeepsHistory(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("Helth MOU"))
	recorded := ts.history(t, id)[0]

	a := ts.appendEvent(t, id, fmt.Sprintf(
		`{"type":"engagement.corrected","data":{"corrects":%q,"reason":"typo in the title","title":"Health MOU"}}`, recorded.ID))
	if a.Type != "engagement.corrected" || a.Version != 2 {
		t.Fatalf("correction appended %+v", a)
	}

	if e := ts.state(t, id); e.Title != "Health MOU" || e.Version != 2 {
		t.Errorf("after the correction: title %q, version %d; want Health MOU at version 2", e.Title, e.Version)
	}
	if p := decode[page](t, ts.get(t, "/v1/engagements?q=health")); len(p.Items) != 1 || p.Items[0].ID != id {
		t.Errorf("search for the corrected title found %v", ids(p.Items))
	}

	h := ts.history(t, id)
	if len(h) != 2 {
		t.Fatalf("history has %d events, want 2", len(h))
	}
	if h[0].ID != recorded.ID || h[0].Type != "engagement.recorded" || string(h[0].Data) != string(recorded.Data) {
		t.Errorf("the recorded event changed: %+v, was %+v", h[0], recorded)
	}
	var original struct{ Title string }
	if err := json.Unmarshal(h[0].Data, &original); err != nil || original.Title != "Helth MOU" {
		t.Errorf("recorded event's title %q (%v), want the original Helth MOU", original.Title, err)
	}
	var correction struct {
		Corrects, Reason string
		Fields           struct{ Title string }
	}
	if err := json.Unmarshal(h[1].Data, &correction); err != nil {
		t.Fatal(err)
	}
	if h[1].Type != "engagement.corrected" || correction.Corrects != recorded.ID || correction.Fields.Title != "Health MOU" ||
		correction.Reason != "typo in the title" {
		t.Errorf("correction in the history: %s %s", h[1].Type, h[1].Data)
	}

	// Correcting an event the engagement does not have is refused.
	r := ts.post(t, "/v1/engagements/"+id+"/events", fmt.Sprintf(
		`{"type":"engagement.corrected","data":{"corrects":%q,"reason":"x","title":"Y"}}`, newID()))
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("correcting a foreign event: %s", r)
	}
	checkProblem(t, r, "data.corrects")
}

// A client that already has the current version gets 304 and no body.
func TestGetIfNoneMatch(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("Cached MOU"))
	first := ts.get(t, "/v1/engagements/"+id)
	tag := first.header.Get("ETag")
	if tag != `"1"` {
		t.Fatalf(`ETag %s, want "1"`, tag)
	}

	r := ts.get(t, "/v1/engagements/"+id, "If-None-Match", tag)
	if r.status != http.StatusNotModified || len(r.body) != 0 || r.header.Get("ETag") != tag {
		t.Errorf("If-None-Match %s: %s with ETag %s, want 304, no body, same ETag", tag, r, r.header.Get("ETag"))
	}

	ts.appendEvent(t, id, note("changed"))
	r = ts.get(t, "/v1/engagements/"+id, "If-None-Match", tag)
	if r.status != http.StatusOK || r.header.Get("ETag") != `"2"` || decode[engagement](t, r).Version != 2 {
		t.Errorf("If-None-Match with the old ETag after a change: %s, ETag %s; want 200 at version 2", r, r.header.Get("ETag"))
	}
}

func TestHealthAndReadiness(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("MOU"))
	ts.appendEvent(t, id, signed)

	if r := ts.get(t, "/healthz"); r.status != http.StatusOK {
		t.Errorf("healthz: %s", r)
	}
	r := ts.get(t, "/readyz")
	if r.status != http.StatusOK {
		t.Fatalf("readyz: %s", r)
	}
	ready := decode[struct {
		Status  string `json:"status"`
		Applied uint64 `json:"applied"`
		Stream  uint64 `json:"stream"`
	}](t, r)
	if last := ts.lastSequence(t); ready.Status != "ready" || ready.Stream != last || ready.Applied != last || last != 2 {
		t.Errorf("readyz %s; stream holds %d", r.body, last)
	}
}

// When NATS is gone, writes and readiness answer 503 with Retry-After, not a
// bare 500; liveness stays 200.
func TestStoreUnavailable(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("MOU"))
	if err := ts.store.Close(); err != nil {
		t.Fatalf("close store: %v", err)
	}

	for _, c := range []struct{ name, method, path, body string }{
		{"create", "POST", "/v1/engagements", agreement("Another MOU")},
		{"append", "POST", "/v1/engagements/" + id + "/events", note("x")},
		{"readyz", "GET", "/readyz", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ts.request(t, c.method, c.path, c.body)
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("status %s, want 503", r)
			}
			if r.header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			checkProblem(t, r, "")
		})
	}
	if r := ts.get(t, "/healthz"); r.status != http.StatusOK {
		t.Errorf("healthz: %s", r)
	}
}
