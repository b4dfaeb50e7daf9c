package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// racedStore is the real store, except that just before the first round
// of a batch is appended another instance appends a note to each of race's
// engagements: the batch's appends to them then meet a newer sequence
// than their projection showed, as with two instances writing at once.
type racedStore struct {
	*eventstore.Store
	other *app.Service
	race  []string
	once  sync.Once
	err   error
}

func (s *racedStore) AppendAll(ctx context.Context, evs []domain.Event, expected []uint64) ([]uint64, []bool, []error) {
	s.once.Do(func() {
		for _, id := range s.race {
			if _, err := s.other.Execute(ctx, note(id, "from the other instance")); err != nil {
				s.err = err
			}
		}
	})
	return s.Store.AppendAll(ctx, evs, expected)
}

func note(id, text string) app.Command {
	return app.Command{EngagementID: id, Type: domain.EngagementNoted, Actor: "coordinator",
		Data: json.RawMessage(fmt.Sprintf(`{"note":%q}`, text))}
}

// A batch's command that loses its race to another instance is tried again
// on top of the other append, as Execute's would be; one with If-Match is
// refused as stale; the commands for other engagements are stored either
// way, and each engagement's commands stay in order.
func TestBatchCommandLosesARace(t *testing.T) {
	store := openTestStore(t, eventstore.Config{})
	other := app.New(store, startProjector(t, store), nil)
	var ids []string
	for range 4 {
		r, err := other.Execute(t.Context(), recordMOU)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.EngagementID)
	}
	raced := &racedStore{Store: store, other: other, race: ids[:2]}
	svc := app.New(raced, startProjector(t, store), nil)
	withIfMatch := note(ids[1], "expects version 1")
	withIfMatch.IfMatch = 1
	outs := svc.ExecuteBatch(t.Context(), []app.BatchCommand{
		{Command: note(ids[0], "raced, tried again")},  // 0: stored as version 3
		{Command: withIfMatch},                         // 1: 412
		{Command: note(ids[2], "not raced")},           // 2: version 2
		{Command: note(ids[0], "after the retry")},     // 3: version 4
		{Command: note(ids[1], "after the stale one")}, // 4: not tried
		{Command: note(ids[3], "not raced either")},    // 5: version 2
	})
	if raced.err != nil {
		t.Fatalf("the other instance's append: %v", raced.err)
	}
	want := []int{3, 0, 2, 4, 0, 2}
	for i, o := range outs {
		switch {
		case i == 1:
			if !errors.Is(o.Err, domain.ErrPreconditionFailed) {
				t.Errorf("command 1: %v, want ErrPreconditionFailed", o.Err)
			}
		case i == 4:
			var dep *app.DependencyError
			if !errors.As(o.Err, &dep) || dep.Index != 1 {
				t.Errorf("command 4: %v, want not tried for command 1", o.Err)
			}
		case o.Err != nil:
			t.Errorf("command %d: %v", i, o.Err)
		case o.Result.Version != want[i]:
			t.Errorf("command %d: version %d, want %d", i, o.Result.Version, want[i])
		}
	}
	if outs[0].Result.Sequence >= outs[3].Result.Sequence {
		t.Errorf("engagement 0's commands stored out of order: %d, %d", outs[0].Result.Sequence, outs[3].Result.Sequence)
	}
}
