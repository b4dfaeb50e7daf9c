package app_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// A supersedes link is checked against a chain of at most MaxSupersedes
// engagements: to one that supersedes more, it is refused (422 on
// data.target_id) rather than followed without end.
func TestSupersedesChainIsBounded(t *testing.T) {
	store := openTestStore(t, eventstore.Config{})
	svc := app.New(store, startProjector(t, store), nil)
	ctx := t.Context()

	ids := make([]string, app.MaxSupersedes+2)
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(ids); i += 8 {
				r, err := svc.Execute(ctx, recordMOU)
				ids[i] = r.EngagementID
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	link := func(from, to string) error {
		_, err := svc.Execute(ctx, app.Command{EngagementID: from, Type: domain.EngagementLinked, Actor: "coordinator",
			Data: json.RawMessage(fmt.Sprintf(`{"target_id":%q,"relation":"supersedes"}`, to))})
		return err
	}
	// ids[i] supersedes ids[i-1], down to ids[0].
	for i := 1; i < len(ids)-1; i++ {
		if err := link(ids[i], ids[i-1]); err != nil {
			t.Fatalf("link %d: %v", i, err)
		}
	}
	last := ids[len(ids)-1]
	// ids[MaxSupersedes-1] supersedes MaxSupersedes-1 engagements: with
	// itself, MaxSupersedes to check.
	if err := link(last, ids[app.MaxSupersedes-1]); err != nil {
		t.Errorf("a link to a chain of %d engagements: %v", app.MaxSupersedes, err)
	}
	err := link(last, ids[app.MaxSupersedes])
	var v *domain.ValidationError
	if !errors.As(err, &v) || len(v.Fields) != 1 || v.Fields[0].Field != "data.target_id" {
		t.Errorf("a link to a chain of %d engagements: %v, want a validation error on data.target_id", app.MaxSupersedes+1, err)
	}
}

// Two links that would close a cycle together, sent at the same time, do
// not both pass: one is stored and the other refused.
func TestSupersedesLinksRacingCloseNoCycle(t *testing.T) {
	store := openTestStore(t, eventstore.Config{})
	svc := app.New(store, startProjector(t, store), nil)
	ctx := t.Context()
	for round := range 20 {
		var pair [2]string
		for i := range pair {
			r, err := svc.Execute(ctx, recordMOU)
			if err != nil {
				t.Fatal(err)
			}
			pair[i] = r.EngagementID
		}
		var errs [2]error
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range pair {
			wg.Go(func() {
				<-start
				_, errs[i] = svc.Execute(ctx, app.Command{EngagementID: pair[i], Type: domain.EngagementLinked,
					Actor: "coordinator", Data: json.RawMessage(fmt.Sprintf(`{"target_id":%q,"relation":"supersedes"}`, pair[1-i]))})
			})
		}
		close(start)
		wg.Wait()
		var v *domain.ValidationError
		if (errs[0] == nil) == (errs[1] == nil) || !errors.As(errors.Join(errs[0], errs[1]), &v) {
			t.Fatalf("round %d: A supersedes B: %v; B supersedes A: %v; want one stored and one refused", round, errs[0], errs[1])
		}
	}
}
