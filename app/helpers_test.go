package app_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
)

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

// lagging is a projector that has not started yet, as on an instance that
// came up a moment ago; waiting is closed when the command path first
// waits for it to catch up.
type lagging struct {
	*projections.Projector
	waiting chan struct{}
	once    sync.Once
}

func newLagging() *lagging {
	return &lagging{Projector: projections.New(nil), waiting: make(chan struct{})}
}

func (p *lagging) WaitFor(ctx context.Context, seq uint64) error {
	p.once.Do(func() { close(p.waiting) })
	return p.Projector.WaitFor(ctx, seq)
}

// answer is what Execute returned.
type answer struct {
	r   app.Result
	err error
}

// executeWhileLagging runs cmd through a command path on a lagging
// projection and starts that projection only once the command path waits
// for it, so the command has certainly met the projection behind.
func executeWhileLagging(t *testing.T, store *eventstore.Store, cmd app.Command) answer {
	t.Helper()
	p := newLagging()
	got := make(chan answer, 1)
	go func() {
		r, err := app.New(store, p, nil).Execute(t.Context(), cmd)
		got <- answer{r, err}
	}()
	select {
	case <-p.waiting:
	case ans := <-got:
		t.Fatalf("the command path answered %+v, %v without waiting for the lagging projection", ans.r, ans.err)
	}
	runProjector(t, p.Projector, store)
	return <-got
}

var recordMOU = app.Command{Type: domain.EngagementRecorded, Actor: "coordinator",
	Data: json.RawMessage(`{"kind":"agreement","title":"IOM–WHO MOU","parties":["IOM","WHO"]}`)}
