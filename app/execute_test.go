package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
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

// Refusals that store nothing (another append in flight) are waited out
// within the retry policy's time bound: more of them than the attempts once
// allowed still end in a 201, not a 409.
func TestAppendWaitsOutAppendsInFlight(t *testing.T) {
	store := openTestStore(t, eventstore.Config{})
	proj := startProjector(t, store)
	flaky := &inFlightStore{Store: store}
	svc := app.New(flaky, proj, nil)
	created, err := svc.Execute(t.Context(), recordMOU)
	if err != nil {
		t.Fatal(err)
	}
	refusals := 110 // more than the 100 attempts the retries were once bounded by
	flaky.refusals.Store(int64(refusals))
	r, err := svc.Execute(t.Context(), app.Command{EngagementID: created.EngagementID, Type: domain.EngagementNoted,
		Actor: "coordinator", Data: json.RawMessage(`{"note":"after the queue"}`)})
	if err != nil {
		t.Fatalf("append after %d in-flight refusals: %v", refusals, err)
	}
	if r.Version != 2 {
		t.Errorf("version %d, want 2", r.Version)
	}
}

// An append on an instance whose projection has not yet seen the
// engagement (recorded a moment ago through another instance) is not a 404.
func TestAppendToAnEngagementRecordedThroughAnotherInstance(t *testing.T) {
	store := openTestStore(t, eventstore.Config{})
	created, err := app.New(store, startProjector(t, store), nil).Execute(t.Context(), recordMOU)
	if err != nil {
		t.Fatal(err)
	}
	// Instance B: its projection starts only once the append waits for it.
	ans := executeWhileLagging(t, store, app.Command{EngagementID: created.EngagementID,
		Type: domain.EngagementNoted, Actor: "coordinator", Data: json.RawMessage(`{"note":"through B"}`)})
	if ans.err != nil {
		t.Fatalf("append through the lagging instance: %v", ans.err)
	}
	if ans.r.Version != 2 {
		t.Errorf("version %d, want 2", ans.r.Version)
	}
}
