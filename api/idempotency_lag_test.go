package api_test

import (
	"testing"
	"time"

	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
)

// A retry that reaches an instance whose projection lags behind the stream,
// after JetStream has forgotten the key, still gets the first answer: the
// command path catches the projection up before it trusts a "not seen".
func TestIdempotencyKeyOnALaggingInstanceAfterTheDuplicateWindow(t *testing.T) {
	const window = 300 * time.Millisecond
	store := openTestStore(t, eventstore.Config{DuplicateWindow: window})
	cmd := recordMOU
	cmd.IdempotencyKey = "create-once"
	first, err := api.NewService(store, startProjector(t, store), nil).Execute(t.Context(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * window) // JetStream no longer knows the key

	b := projections.New(nil) // instance B: its projection has not started yet
	type answer struct {
		r   api.Result
		err error
	}
	got := make(chan answer, 1)
	go func() {
		r, err := api.NewService(store, b, nil).Execute(t.Context(), cmd)
		got <- answer{r, err}
	}()
	time.Sleep(100 * time.Millisecond)
	runProjector(t, b, store)
	ans := <-got
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	if ans.r.EngagementID != first.EngagementID || ans.r.Sequence != first.Sequence {
		t.Errorf("retry on the lagging instance answered %+v, first answer was %+v", ans.r, first)
	}
	if last, err := store.LastSequence(t.Context()); err != nil || last != first.Sequence {
		t.Errorf("stream holds %d messages (%v), want only the first append's %d", last, err, first.Sequence)
	}
}
