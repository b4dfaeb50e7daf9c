package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"go.uber.org/goleak"
)

// burstAnswer is what one request of the burst got back.
type burstAnswer struct {
	key    string // Idempotency-Key
	create bool   // POST /v1/engagements (else an appended note)
	status int    // 0: transport error
	id     string // engagement id (create) or event id (note) of a 201
	// sent and answered bound the request, to tell those in flight at Close.
	sent, answered time.Time
}

// TestCloseDuringWriteBurst is SIGTERM in the middle of a write burst: Close
// (what serve runs on SIGTERM) must finish or cleanly refuse every in-flight
// request, and a 201 must only ever answer an event that is stored, once.
func TestCloseDuringWriteBurst(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	dir := t.TempDir()
	m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: dir, Sync: "always", Replicas: 1}}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	c := newOpsClient(t, m)
	w := &opsWriter{c: c, acked: map[string]bool{}}
	var ids []string
	for i := range 8 {
		ids = append(ids, w.record(t, fmt.Sprintf("Burst target %d", i)))
	}

	const writers = 16
	var (
		mu      sync.Mutex
		answers []burstAnswer
		created atomic.Int64
		wg      sync.WaitGroup
	)
	send := func(create bool, path, body, key string) (burstAnswer, bool) {
		a := burstAnswer{key: key, create: create, sent: time.Now()}
		r, err := c.do(http.MethodPost, path, body, "Idempotency-Key", key)
		a.answered = time.Now()
		if err == nil {
			a.status = r.status
			if r.status == http.StatusCreated {
				var v struct{ ID string }
				if err := json.Unmarshal(r.body, &v); err != nil || v.ID == "" {
					t.Errorf("201 for %s without an id: %s", key, r)
				}
				a.id = v.ID
				created.Add(1)
			}
		}
		mu.Lock()
		answers = append(answers, a)
		mu.Unlock()
		// A transport error or a 503 means the server is going away.
		return a, err == nil && r.status == http.StatusCreated
	}
	for n := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d-%d", n, i)
				create := n%4 == 0 && i%3 == 0 // some writers also record engagements
				path, body := "/v1/engagements/"+ids[(n+i)%len(ids)]+"/events",
					fmt.Sprintf(`{"type":"engagement.noted","data":{"note":%q}}`, key)
				if create {
					path, body = "/v1/engagements", fmt.Sprintf(`{"kind":"initiative","title":%q,"parties":["IOM"]}`, key)
				}
				first, ok := send(create, path, body, key)
				if ok && i%5 == 0 {
					// A client retrying with the same key gets the same answer.
					again, ok2 := send(create, path, body, key)
					if ok2 && again.id != first.id {
						t.Errorf("retry of %s: id %s, first answer %s", key, again.id, first.id)
					}
					ok = ok2
				}
				if !ok {
					return
				}
			}
		})
	}

	// Shut down mid-burst, once writes are flowing.
	for deadline := time.Now().Add(30 * time.Second); created.Load() < 100 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
		t.Logf("Close returned after %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait()
	c.http.CloseIdleConnections()

	statuses, inFlight := map[int]int{}, map[int]int{}
	for _, a := range answers {
		statuses[a.status]++
		if a.sent.Before(start) && a.answered.After(start) {
			inFlight[a.status]++
		}
		switch a.status {
		case http.StatusCreated, http.StatusServiceUnavailable, 0:
		default:
			t.Errorf("%s: status %d, want 201, 503 or a connection error", a.key, a.status)
		}
	}
	t.Logf("burst answers by status (0: connection error): %v; of those in flight when Close began: %v",
		statuses, inFlight)
	if statuses[http.StatusCreated] < 100 {
		t.Fatalf("only %d writes acknowledged before Close", statuses[http.StatusCreated])
	}

	// Reopen the data directory: every acknowledged write is stored once.
	store, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: dir, ReadOnly: true})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	stored := map[string]int{}   // event id → times stored
	recorded := map[string]int{} // engagement id → engagement.recorded events
	byKey := map[string]int{}    // Idempotency-Key (note or title) → events
	for m, rerr := range store.Read(context.Background(), 0, domain.Filter{}) {
		if rerr != nil {
			err = rerr
			break
		}
		ev := m.Event
		if m.Err != nil {
			t.Errorf("stored message %d: %v", m.Sequence, m.Err)
			continue
		}
		stored[ev.ID]++
		if ev.Type == domain.EngagementRecorded {
			recorded[ev.EngagementID]++
		}
		var d struct{ Note, Title string }
		if err := json.Unmarshal(ev.Data, &d); err == nil {
			byKey[d.Note+d.Title]++
		}
	}
	if cerr := store.Close(); cerr != nil {
		t.Errorf("close the reopened store: %v", cerr)
	}
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	for id := range w.acked {
		if stored[id] != 1 {
			t.Errorf("event %s acknowledged before the burst is stored %d times", id, stored[id])
		}
	}
	for _, a := range answers {
		// Refused or cut off, a write may have been stored; never twice.
		if byKey[a.key] > 1 {
			t.Errorf("%s: stored %d times", a.key, byKey[a.key])
		}
		if a.status != http.StatusCreated {
			continue
		}
		if byKey[a.key] != 1 {
			t.Errorf("%s: acknowledged, stored %d times", a.key, byKey[a.key])
		}
		if a.create && recorded[a.id] != 1 {
			t.Errorf("%s: engagement %s acknowledged, recorded %d times", a.key, a.id, recorded[a.id])
		}
		if !a.create && stored[a.id] != 1 {
			t.Errorf("%s: event %s acknowledged, stored %d times", a.key, a.id, stored[a.id])
		}
	}
	for id, n := range stored {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
	if err := goleak.Find(ignore); err != nil {
		t.Errorf("goroutines left after Close: %v", err)
	}
}
