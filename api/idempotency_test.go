package api_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"
)

// A request retried with the same Idempotency-Key gets the first answer and
// stores nothing new.
func TestIdempotencyKey(t *testing.T) {
	ts := newTestServer(t)

	t.Run("create", func(t *testing.T) {
		first := ts.post(t, "/v1/engagements", agreement("Retried MOU"), "Idempotency-Key", "create-1")
		if first.status != http.StatusCreated {
			t.Fatalf("first create: %s", first)
		}
		before := ts.lastSequence(t)

		again := ts.post(t, "/v1/engagements", agreement("Retried MOU"), "Idempotency-Key", "create-1")
		if again.status != http.StatusCreated {
			t.Fatalf("retried create: %s", again)
		}
		a, b := decode[engagement](t, first), decode[engagement](t, again)
		if a.ID != b.ID || b.Version != 1 {
			t.Errorf("retry answered %s version %d, first answer was %s", b.ID, b.Version, a.ID)
		}
		for _, h := range []string{"Location", "ETag"} {
			if first.header.Get(h) != again.header.Get(h) {
				t.Errorf("%s %q on retry, %q first", h, again.header.Get(h), first.header.Get(h))
			}
		}
		if after := ts.lastSequence(t); after != before {
			t.Errorf("stream went from %d to %d messages on the retry", before, after)
		}
		if p := decode[page](t, ts.get(t, "/v1/engagements?q=Retried")); len(p.Items) != 1 {
			t.Errorf("%d engagements titled Retried MOU, want 1", len(p.Items))
		}

		// Without the key, the same body is a new engagement.
		if id := ts.create(t, agreement("Retried MOU")); id == a.ID {
			t.Errorf("a create without Idempotency-Key reused %s", id)
		}
	})

	t.Run("append", func(t *testing.T) {
		id := ts.create(t, agreement("MOU with a retried note"))
		first := ts.appendEvent(t, id, note("reviewed"), "Idempotency-Key", "note-1")
		before := ts.lastSequence(t)
		h1 := ts.history(t, id)

		again := ts.post(t, "/v1/engagements/"+id+"/events", note("reviewed"), "Idempotency-Key", "note-1")
		if again.status != http.StatusCreated {
			t.Fatalf("retried append: %s", again)
		}
		if got := decode[appended](t, again); got != first {
			t.Errorf("retry answered %+v, first answer was %+v", got, first)
		}
		if got := again.header.Get("ETag"); got != etag(first.Version) {
			t.Errorf("ETag %s on retry, want %s", got, etag(first.Version))
		}
		if after := ts.lastSequence(t); after != before {
			t.Errorf("stream went from %d to %d messages on the retry", before, after)
		}
		if h2 := ts.history(t, id); len(h2) != len(h1) || len(h2) != 2 {
			t.Errorf("history has %d events after the retry, %d before, want 2", len(h2), len(h1))
		}

		// A retry after other writes still gets the first answer.
		ts.appendEvent(t, id, note("later"))
		if got := ts.appendEvent(t, id, note("reviewed"), "Idempotency-Key", "note-1"); got != first {
			t.Errorf("late retry answered %+v, first answer was %+v", got, first)
		}
		if h := ts.history(t, id); len(h) != 3 {
			t.Errorf("history has %d events, want 3", len(h))
		}

		// The key is scoped to the engagement: another one may use it too.
		other := ts.create(t, agreement("Another MOU"))
		if got := ts.appendEvent(t, other, note("reviewed"), "Idempotency-Key", "note-1"); got.ID == first.ID || got.Version != 2 {
			t.Errorf("the same key on another engagement answered %+v", got)
		}
	})
}

// Retries that arrive together, before the first one is answered, still
// store the event once and all get the same answer.
func TestIdempotencyKeyConcurrentRetries(t *testing.T) {
	const retries = 8
	ts := newTestServer(t)
	id := ts.create(t, agreement("MOU"))
	before := ts.lastSequence(t)

	for _, c := range []struct{ name, path, body string }{
		{"create", "/v1/engagements", agreement("Retried MOU")},
		{"append", "/v1/engagements/" + id + "/events", note("reviewed")},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers := make([]response, retries)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range retries {
				wg.Go(func() {
					<-start
					r, err := ts.do(http.MethodPost, c.path, c.body, "Idempotency-Key", "retry-"+c.name)
					if err != nil {
						t.Errorf("retry %d: %v", i, err)
					}
					answers[i] = r
				})
			}
			close(start)
			wg.Wait()
			for i, r := range answers {
				if r.status != http.StatusCreated {
					t.Fatalf("retry %d: %s", i, r)
				}
				if got, want := keys(t, r.body), keys(t, answers[0].body); !slices.Equal(got, want) {
					t.Fatalf("retry %d answered %s, retry 0 %s", i, r.body, answers[0].body)
				}
			}
			firstID := decode[struct{ ID string }](t, answers[0]).ID
			for i, r := range answers {
				if got := decode[struct{ ID string }](t, r).ID; got != firstID {
					t.Errorf("retry %d answered id %s, retry 0 %s", i, got, firstID)
				}
			}
			if after := ts.lastSequence(t); after != before+1 {
				t.Errorf("stream went from %d to %d messages, want one more", before, after)
			}
			before++
		})
	}
	if h := ts.history(t, id); len(h) != 2 {
		t.Errorf("history has %d events, want 2", len(h))
	}
}
