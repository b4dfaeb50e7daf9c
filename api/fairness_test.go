package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// Sustained contention starves no writer: 64 writers each sending 10
// appends without If-Match to one engagement, one after another, all get a
// 201 (none a 409), each append is stored once and the versions run from 1
// to 641 with none missing.
func TestSustainedWritersWithoutIfMatch(t *testing.T) {
	const writers, appends = 64, 10
	ts := newTestServer(t)
	id := ts.create(t, agreement("Contended MOU"))

	var mu sync.Mutex
	statuses := map[int]int{}
	answered := map[int]string{} // note by version
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range appends {
				n := fmt.Sprintf("writer %d append %d", w, i)
				r, err := ts.do(http.MethodPost, "/v1/engagements/"+id+"/events", note(n))
				if err != nil {
					t.Errorf("%s: %v", n, err)
					return
				}
				var a appended
				if r.status == http.StatusCreated {
					if err := json.Unmarshal(r.body, &a); err != nil {
						t.Errorf("%s: %v: %s", n, err, r)
					}
				}
				mu.Lock()
				statuses[r.status]++
				if prev, ok := answered[a.Version]; ok && a.Version > 0 {
					t.Errorf("version %d answered to %q and %q", a.Version, prev, n)
				}
				answered[a.Version] = n
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if statuses[http.StatusCreated] != writers*appends {
		t.Errorf("answers %v, want %d × 201", statuses, writers*appends)
	}

	h := ts.history(t, id)
	if len(h) != 1+writers*appends {
		t.Errorf("history holds %d events, want %d", len(h), 1+writers*appends)
	}
	stored := map[string]int{}
	for i, ev := range h {
		if ev.Version != i+1 {
			t.Fatalf("event %d at version %d, want %d", i, ev.Version, i+1)
		}
		if i == 0 {
			continue
		}
		var d struct{ Note string }
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		stored[d.Note]++
		if answered[ev.Version] != d.Note {
			t.Errorf("version %d holds %q, answered to %q", ev.Version, d.Note, answered[ev.Version])
		}
	}
	for w := range writers {
		for i := range appends {
			if n := fmt.Sprintf("writer %d append %d", w, i); stored[n] != 1 {
				t.Errorf("%q stored %d times, want once", n, stored[n])
			}
		}
	}
}
