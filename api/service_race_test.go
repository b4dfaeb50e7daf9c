package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
)

// inFlightStore is the real store, except that its first refusals answer
// as a clustered stream does while another append to the same engagement
// is still in flight: a conflict, with nothing new stored.
type inFlightStore struct {
	*eventstore.Store
	refusals atomic.Int64
}

func (s *inFlightStore) Append(ctx context.Context, ev domain.Event, expected uint64) (uint64, bool, error) {
	if s.refusals.Add(-1) >= 0 {
		return 0, false, fmt.Errorf("append %s: %w", ev.Type, domain.ErrConflict)
	}
	return s.Store.Append(ctx, ev, expected)
}

// runProjector makes p follow store until the test ends.
func runProjector(t *testing.T, p *projections.Projector, store *eventstore.Store) {
	t.Helper()
	p.UseReader(store)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Run(ctx, store) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// startProjector runs a new projector on store until the test ends.
func startProjector(t *testing.T, store *eventstore.Store) *projections.Projector {
	t.Helper()
	p := projections.New(nil)
	runProjector(t, p, store)
	return p
}

// openTestStore opens a store (sync interval) in a temporary directory
// until the test ends.
func openTestStore(t *testing.T, cfg eventstore.Config) *eventstore.Store {
	t.Helper()
	cfg.DataDir, cfg.Sync = t.TempDir(), eventstore.SyncInterval
	store, err := eventstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

var recordMOU = api.Command{Type: domain.EngagementRecorded, Actor: "coordinator",
	Data: json.RawMessage(`{"kind":"agreement","title":"IOM–WHO MOU","parties":["IOM","WHO"]}`)}

// Refusals that store nothing (another append in flight) are waited out,
// not counted as lost races: more of them than the retry bound still end
// in a 201, not a 409.
func TestAppendWaitsOutAppendsInFlight(t *testing.T) {
	store := openTestStore(t, eventstore.Config{})
	proj := startProjector(t, store)
	flaky := &inFlightStore{Store: store}
	svc := api.NewService(flaky, proj, nil)
	created, err := svc.Execute(t.Context(), recordMOU)
	if err != nil {
		t.Fatal(err)
	}
	flaky.refusals.Store(110) // more than the 100 attempts a lost race may take
	r, err := svc.Execute(t.Context(), api.Command{EngagementID: created.EngagementID, Type: domain.EngagementNoted,
		Actor: "coordinator", Data: json.RawMessage(`{"note":"after the queue"}`)})
	if err != nil {
		t.Fatalf("append after %d in-flight refusals: %v", 110, err)
	}
	if r.Version != 2 {
		t.Errorf("version %d, want 2", r.Version)
	}
}

// An append on an instance whose projection has not yet seen the
// engagement (recorded a moment ago through another instance) is not a 404.
func TestAppendToAnEngagementRecordedThroughAnotherInstance(t *testing.T) {
	store := openTestStore(t, eventstore.Config{})
	created, err := api.NewService(store, startProjector(t, store), nil).Execute(t.Context(), recordMOU)
	if err != nil {
		t.Fatal(err)
	}
	lagging := projections.New(nil) // instance B: its projection starts late
	type answer struct {
		r   api.Result
		err error
	}
	got := make(chan answer, 1)
	go func() {
		r, err := api.NewService(store, lagging, nil).Execute(t.Context(), api.Command{EngagementID: created.EngagementID,
			Type: domain.EngagementNoted, Actor: "coordinator", Data: json.RawMessage(`{"note":"through B"}`)})
		got <- answer{r, err}
	}()
	time.Sleep(50 * time.Millisecond)
	runProjector(t, lagging, store)
	ans := <-got
	if ans.err != nil {
		t.Fatalf("append through the lagging instance: %v", ans.err)
	}
	if ans.r.Version != 2 {
		t.Errorf("version %d, want 2", ans.r.Version)
	}
}
