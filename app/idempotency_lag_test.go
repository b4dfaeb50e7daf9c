package app_test

import (
	"testing"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/eventstore"
)

// A retry that reaches an instance whose projection lags behind the stream,
// after JetStream has forgotten the key, still gets the first answer: the
// command path catches the projection up before it trusts a "not seen".
func TestIdempotencyKeyOnALaggingInstanceAfterTheDuplicateWindow(t *testing.T) {
	const window = 300 * time.Millisecond
	store := openTestStore(t, eventstore.Config{DuplicateWindow: window})
	cmd := recordMOU
	cmd.IdempotencyKey = "create-once"
	first, err := app.New(store, startProjector(t, store), nil).Execute(t.Context(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	// Not synchronisation: JetStream forgets a key only as time passes, and
	// tells nobody when it has.
	time.Sleep(5 * window)

	ans := executeWhileLagging(t, store, cmd) // instance B: its projection starts late
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
