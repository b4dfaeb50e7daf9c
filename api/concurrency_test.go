package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// race sends n appends to one engagement from n goroutines that start
// together, and returns each answer (or the test fails on a transport error).
func race(t *testing.T, ts *testServer, id string, n int, header ...string) []response {
	t.Helper()
	out := make([]response, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := ts.do(http.MethodPost, "/v1/engagements/"+id+"/events", note(fmt.Sprintf("writer %d", i)), header...)
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
			out[i] = r
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// Two writers can never both win: of 32 appends that all claim version 1,
// exactly one is stored and the others are told their version is stale.
func TestConcurrentWritersWithIfMatch(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("Contended MOU"))

	statuses := map[int]int{}
	for _, r := range race(t, ts, id, 32, "If-Match", `"1"`) {
		statuses[r.status]++
		switch r.status {
		case http.StatusCreated:
			if a := decode[appended](t, r); a.Version != 2 || r.header.Get("ETag") != `"2"` {
				t.Errorf("winner appended %+v with ETag %s, want version 2", a, r.header.Get("ETag"))
			}
		case http.StatusPreconditionFailed:
			checkProblem(t, r, "")
		default:
			t.Errorf("unexpected answer %s", r)
		}
	}
	if statuses[http.StatusCreated] != 1 || statuses[http.StatusPreconditionFailed] != 31 {
		t.Errorf("statuses %v, want one 201 and 31 × 412", statuses)
	}
	if h := ts.history(t, id); len(h) != 2 {
		t.Errorf("history has %d events, want 2 (recorded + the one winner)", len(h))
	}
	if got := ts.lastSequence(t); got != 2 {
		t.Errorf("stream holds %d messages, want 2", got)
	}
}

// Writers without If-Match do not care which version they follow: each one
// is retried after losing a race until it is stored, and each gets its own
// version.
func TestConcurrentWritersWithoutIfMatch(t *testing.T) {
	const writers = 16
	ts := newTestServer(t)
	id := ts.create(t, agreement("Busy MOU"))

	seen := map[int]int{}
	for _, r := range race(t, ts, id, writers) {
		if r.status != http.StatusCreated {
			t.Errorf("writer answered %s, want 201", r)
			continue
		}
		a := decode[appended](t, r)
		seen[a.Version]++
		if got, want := r.header.Get("ETag"), etag(a.Version); got != want {
			t.Errorf("ETag %s for version %d", got, a.Version)
		}
	}
	for v := 2; v <= writers+1; v++ {
		if seen[v] != 1 {
			t.Errorf("version %d was given to %d writers, want exactly 1 (all: %v)", v, seen[v], seen)
		}
	}

	h := ts.history(t, id)
	if len(h) != writers+1 {
		t.Fatalf("history has %d events, want %d", len(h), writers+1)
	}
	notes := map[string]bool{}
	for i, ev := range h {
		if ev.Version != i+1 || i > 0 && ev.Sequence <= h[i-1].Sequence {
			t.Errorf("event %d: version %d, sequence %d", i, ev.Version, ev.Sequence)
		}
		if i > 0 {
			var d struct{ Note string }
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			notes[d.Note] = true
		}
	}
	if len(notes) != writers {
		t.Errorf("history holds %d distinct notes, want %d", len(notes), writers)
	}
	if e := ts.state(t, id); e.Version != writers+1 {
		t.Errorf("engagement at version %d, want %d", e.Version, writers+1)
	}
}

// Reads after a successful write see that write: every 201 is followed at
// once by a GET of the state and the history that already show it.
func TestReadYourWrites(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("Renewed MOU"))

	a := ts.appendEvent(t, id, signed)
	for i := range 20 {
		var body, renewedOn string
		switch i % 2 {
		case 0:
			renewedOn = fmt.Sprintf("2021-%02d-%02d", i/2+1, i+1)
			body = fmt.Sprintf(`{"type":"agreement.renewed","data":{"renewed_on":%q,"expires_on":"2190-01-01"}}`, renewedOn)
		case 1:
			body = note(fmt.Sprintf("note %d", i))
		}
		r := ts.post(t, "/v1/engagements/"+id+"/events", body)
		if r.status != http.StatusCreated {
			t.Fatalf("write %d: %s", i, r)
		}
		a = decode[appended](t, r)
		if a.Version != i+3 {
			t.Fatalf("write %d got version %d, want %d", i, a.Version, i+3)
		}

		got := ts.get(t, "/v1/engagements/"+id)
		e := decode[engagement](t, got)
		if e.Version != a.Version || got.header.Get("ETag") != etag(a.Version) {
			t.Fatalf("after write %d (version %d) GET shows version %d, ETag %s", i, a.Version, e.Version, got.header.Get("ETag"))
		}
		if e.Status != "active" || e.SignedOn != "2020-01-15" || e.ExpiresOn != "2190-01-01" {
			t.Fatalf("after write %d: %+v", i, e)
		}
		if renewedOn != "" && e.RenewedOn != renewedOn {
			t.Fatalf("after renewal %d renewed_on is %q, want %q", i, e.RenewedOn, renewedOn)
		}
		h := ts.history(t, id)
		if last := h[len(h)-1]; len(h) != a.Version || last.ID != a.ID || last.Sequence != a.Sequence {
			t.Fatalf("after write %d the history ends with %+v (%d events), want %+v", i, last, len(h), a)
		}
	}
}
