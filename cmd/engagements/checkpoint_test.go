package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

func TestRestartLoadsTheCheckpointAndAppliesOnlyNewEvents(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, true)
	var before list
	getJSON(t, m.URL()+"/v1/engagements?limit=100", &before)
	applied := m.Projector.Applied()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.CheckpointFile()); err != nil {
		t.Fatalf("no checkpoint after a clean stop: %v", err)
	}

	// The projector holds the whole history as soon as the checkpoint is
	// loaded: it folded nothing itself.
	m = startMain(t, dir, false)
	if m.saved != applied {
		t.Errorf("start-up loaded a checkpoint at %d, want %d", m.saved, applied)
	}
	if got := m.Projector.Stats(); got.Applied != applied {
		t.Errorf("restored applied sequence %d, want %d", got.Applied, applied)
	}
	var after list
	getJSON(t, m.URL()+"/v1/engagements?limit=100", &after)
	if len(after.Items) != len(before.Items) || len(after.Items) != 16 {
		t.Fatalf("after restart: %d engagements, want %d", len(after.Items), len(before.Items))
	}
	for i := range before.Items {
		b, a := before.Items[i], after.Items[i]
		if b.ID != a.ID || b.Title != a.Title || b.Status != a.Status || len(b.Links) != len(a.Links) {
			t.Errorf("engagement %d differs: %+v vs %+v", i, b, a)
		}
	}
	id := after.Items[0].ID
	if code, body := postJSON(t, m.URL()+"/v1/engagements/"+id+"/events", `{"type":"engagement.noted","data":{"note":"after restart"}}`); code != http.StatusCreated {
		t.Fatalf("append after restart: %d %v", code, body)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// A damaged checkpoint is ignored: the projections are rebuilt.
	if err := os.WriteFile(m.CheckpointFile(), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	m = startMain(t, dir, false)
	last, err := m.Store.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Projector.WaitFor(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	var h history
	getJSON(t, m.URL()+"/v1/engagements/"+id+"/history", &h)
	if n := len(h.Events); n == 0 || h.Events[n-1].Data["note"] != "after restart" {
		t.Errorf("rebuilt history lacks the event written after the checkpoint: %+v", h.Events)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// Another stream's checkpoint (the same demo, other event ids) is
	// loaded while the store opens, then refused: the projections come
	// from this stream.
	other := startMain(t, t.TempDir(), true)
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	foreign, err := os.ReadFile(other.CheckpointFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.CheckpointFile(), foreign, 0o600); err != nil {
		t.Fatal(err)
	}
	m = startMain(t, dir, false)
	defer m.Close()
	if m.saved != 0 {
		t.Errorf("another stream's checkpoint was used (at %d)", m.saved)
	}
	if err := m.Projector.WaitFor(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Projector.Get(context.Background(), id, domain.Window{}); err != nil {
		t.Errorf("engagement %s missing after refusing a foreign checkpoint", id)
	}
	foreignItems, _, _ := other.Projector.List(context.Background(), projections.Filter{Limit: 1})
	if len(foreignItems) == 0 {
		t.Fatal("the other stream has no engagements")
	}
	if _, err := m.Projector.Get(context.Background(), foreignItems[0].ID(), domain.Window{}); !errors.Is(err, domain.ErrNotFound) {
		t.Error("the foreign checkpoint's engagements leaked into the projections")
	}
}

// TestProjectionsSavedByTheirRule: besides at shutdown, serve saves the
// projections once --projection-save-events events were applied since the
// last save, or --projection-save-every after it when any were.
func TestProjectionsSavedByTheirRule(t *testing.T) {
	for _, tt := range []struct {
		name   string
		events uint64
		every  time.Duration
	}{
		{"by events", 5, time.Hour},
		{"by time", 1 << 40, time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: dir, Demo: true, Sync: "always", Replicas: 1,
				SaveEvents: tt.events, SaveEvery: tt.every}}
			if err := m.Run(context.Background()); err != nil {
				_ = m.Close()
				t.Fatalf("start: %v", err)
			}
			defer m.Close()
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, err := os.Stat(m.CheckpointFile())
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no checkpoint while serving: %v", err)
				}
				time.Sleep(20 * time.Millisecond) // polls the file, a real condition
			}
			q := projections.New(nil)
			seq, err := q.LoadCheckpoint(context.Background(), m.CheckpointFile(), storeReady(m))
			if err != nil {
				t.Fatal(err)
			}
			if seq == 0 || q.Count() == 0 {
				t.Errorf("the checkpoint saved while serving is at %d with %d engagements", seq, q.Count())
			}
		})
	}
}

// storeReady hands LoadCheckpoint the running store to check against.
func storeReady(m *Main) <-chan projections.EventReader {
	c := make(chan projections.EventReader, 1)
	c <- m.Store
	return c
}
