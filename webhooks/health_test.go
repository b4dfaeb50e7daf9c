package webhooks_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/webhooks"
)

// waitHealth polls (bounded) until subscription id's health satisfies ok.
func waitHealth(t *testing.T, m *webhooks.Manager, id string, ok func(webhooks.Health) bool) webhooks.Health {
	t.Helper()
	for i := 0; ; i++ {
		h, err := m.Health(context.Background(), id)
		if err != nil {
			t.Fatalf("health: %v", err)
		}
		if ok(h) {
			return h
		}
		if i == 1000 {
			t.Fatalf("health never got there: %+v", h)
		}
		waitABit()
	}
}

// An admin (or anyone with access to the stream) deletes the webhook's
// consumer while an event is being delivered: the consumer is made again,
// starting after the last event delivered, and every event arrives, in
// order, none skipped. The event in flight at the deletion is delivered
// once here (its progress is recorded before the acknowledgement that the
// deleted consumer can no longer take); a duplicate would only be allowed
// for that one event.
func TestDeletedConsumerHealsWithoutLosingEvents(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	const held = 5 // the request held while the consumer is deleted
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	rcv := newReceiver(t, func(n int) int {
		if n == held {
			close(arrived)
			<-release
		}
		return http.StatusOK
	})
	secret, _ := newSecret(t)
	sub := subscribe(t, m, rcv.URL, secret, 0)

	var want []appended
	for i := range 10 {
		want = append(want, record(t, store, "before "+string(rune('a'+i))))
	}
	<-arrived
	// As a stranger would: through the NATS API, not the manager.
	ctx := context.Background()
	stream, err := store.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteConsumer(ctx, "webhook-"+sub.ID); err != nil {
		t.Fatalf("delete the consumer: %v", err)
	}
	for i := range 10 {
		want = append(want, record(t, store, "after "+string(rune('a'+i))))
	}
	unblock()

	var got []string
	for len(got) < len(want) {
		id := rcv.next(t).id(t)
		if len(got) > 0 && got[len(got)-1] == id && len(got) == held {
			continue // the event in flight at the deletion, again: allowed
		}
		got = append(got, id)
	}
	for i, w := range want {
		if got[i] != w.id {
			t.Fatalf("delivery %d is %s, want %s (sequence %d): lost, skipped or out of order\ngot  %v", i+1, got[i], w.id, w.seq, got)
		}
	}
	if s := m.Stats(); s.Recreated != 1 {
		t.Errorf("recreated %d consumers, want 1", s.Recreated)
	}
	last := want[len(want)-1].seq
	h := waitHealth(t, m, sub.ID, func(h webhooks.Health) bool { return h.AcknowledgedSequence == last })
	if h.ConsumersRecreated != 1 || h.LastDeliveredSequence != last || h.Pending == nil {
		t.Errorf("health %+v, want 1 recreation, %d delivered", h, last)
	}
	waitSettled(t, store, sub.ID, last)
	select {
	case d := <-rcv.got:
		t.Errorf("an extra delivery after the last event: %s", d.id(t))
	default:
	}
}

// The consumer disappears while no manager runs: the next one recreates it
// from the recorded progress.
func TestConsumerLostWhileStoppedHealsOnStart(t *testing.T) {
	store := newStore(t)
	rcv := newReceiver(t, always(http.StatusOK))
	secret, _ := newSecret(t)
	m1 := open(t, store, quick)
	sub := subscribe(t, m1, rcv.URL, secret, 0)
	first := record(t, store, "first")
	if got := rcv.next(t).id(t); got != first.id {
		t.Fatalf("got %s, want %s", got, first.id)
	}
	waitHealth(t, m1, sub.ID, func(h webhooks.Health) bool { return h.AcknowledgedSequence == first.seq })
	m1.Close()

	if err := store.DeleteDurable(context.Background(), "webhook-"+sub.ID); err != nil {
		t.Fatal(err)
	}
	missed := []appended{record(t, store, "a"), record(t, store, "b")}
	m2 := open(t, store, quick)
	for _, w := range missed {
		if got := rcv.next(t).id(t); got != w.id {
			t.Fatalf("after the restart got %s, want %s", got, w.id)
		}
	}
	if s := m2.Stats(); s.Recreated != 1 {
		t.Errorf("recreated %d, want 1", s.Recreated)
	}
}

func TestHealthFollowsDeliveries(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	rcv := newReceiver(t, func(n int) int {
		if n <= quick.MaxAttempts {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	secret, _ := newSecret(t)
	sub := subscribe(t, m, rcv.URL, secret, 0)

	h, err := m.Health(context.Background(), sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if h.LastDeliveredSequence != 0 || h.LastSuccessAt != nil || h.LastError != "" || h.Pending == nil || *h.Pending != 0 {
		t.Errorf("a new subscription's health %+v", h)
	}

	failed := record(t, store, "fails")
	h = waitHealth(t, m, sub.ID, func(h webhooks.Health) bool { return h.AcknowledgedSequence == failed.seq })
	if h.LastError != "HTTP 503" || h.LastErrorSequence != failed.seq || h.LastErrorAt == nil ||
		h.LastDeliveredSequence != 0 || h.LastSuccessAt != nil {
		t.Errorf("after a failure: %+v", h)
	}

	ok := record(t, store, "delivered")
	h = waitHealth(t, m, sub.ID, func(h webhooks.Health) bool { return h.LastDeliveredSequence == ok.seq })
	if h.LastSuccessAt == nil || h.LastSuccessAt.Before(*h.LastErrorAt) || h.AcknowledgedSequence != ok.seq ||
		h.LastError != "HTTP 503" {
		t.Errorf("after a success: %+v (the last error stays, older than the success)", h)
	}
	waitSettled(t, store, sub.ID, ok.seq)
	if h, err := m.Health(context.Background(), sub.ID); err != nil || h.Pending == nil || *h.Pending != 0 {
		t.Errorf("pending after everything settled: %+v, %v", h, err)
	}
	if _, err := m.Health(context.Background(), "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("health of an unknown subscription: %v", err)
	}
}

func TestRedeliverSendsARecordedFailure(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	var mu sync.Mutex
	status := http.StatusInternalServerError
	rcv := newReceiver(t, func(int) int { mu.Lock(); defer mu.Unlock(); return status })
	secret, key := newSecret(t)
	sub := subscribe(t, m, rcv.URL, secret, 0)
	ev := record(t, store, "MOU")
	waitFailures(t, m, sub.ID, 1)
	for range quick.MaxAttempts {
		rcv.next(t)
	}
	ctx := context.Background()

	// Still failing: the outcome says so and the failure stays.
	out, err := m.Redeliver(ctx, sub.ID, ev.seq)
	if err != nil || out.Delivered || out.Status != http.StatusInternalServerError || out.Error == "" || out.EventID != ev.id {
		t.Errorf("redeliver to a failing endpoint = %+v, %v", out, err)
	}
	rcv.next(t)
	if f, _ := m.Failures(ctx, sub.ID); len(f) != 1 {
		t.Errorf("failures after an unsuccessful redelivery: %v", f)
	}

	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	out, err = m.Redeliver(ctx, sub.ID, ev.seq)
	if err != nil || !out.Delivered || out.Status != http.StatusOK || out.Sequence != ev.seq {
		t.Fatalf("redeliver = %+v, %v", out, err)
	}
	d := rcv.next(t)
	id, ts := d.header.Get("webhook-id"), d.header.Get("webhook-timestamp")
	if id != ev.id || string(d.body) != string(ev.payload) ||
		d.header.Get("webhook-signature") != webhooks.Signature(key, id, ts, d.body) {
		t.Errorf("redelivery is not the signed stored event: %v %s", d.header, d.body)
	}
	if f, err := m.Failures(ctx, sub.ID); err != nil || len(f) != 0 {
		t.Errorf("failures after a redelivery: %v, %v; want it removed", f, err)
	}
	for _, tt := range []struct {
		name string
		id   string
		seq  uint64
	}{
		{"the same failure again", sub.ID, ev.seq},
		{"a sequence that never failed", sub.ID, ev.seq + 1},
		{"an unknown subscription", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", ev.seq},
	} {
		if _, err := m.Redeliver(ctx, tt.id, tt.seq); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("%s: %v, want not found", tt.name, err)
		}
	}
}

// A paused subscription delivers nothing, also after a restart, and on
// resume delivers what was stored meanwhile, in order.
func TestPauseHoldsDeliveryUntilResume(t *testing.T) {
	store := newStore(t)
	paused := newReceiver(t, always(http.StatusOK))
	canary := newReceiver(t, always(http.StatusOK))
	secret, _ := newSecret(t)
	m1 := open(t, store, quick)
	sub := subscribe(t, m1, paused.URL, secret, 0)
	canarySub := subscribe(t, m1, canary.URL, secret, 0)
	first := record(t, store, "first")
	for _, r := range []*receiver{paused, canary} {
		if got := r.next(t).id(t); got != first.id {
			t.Fatalf("got %s, want %s", got, first.id)
		}
	}
	waitSettled(t, store, sub.ID, first.seq)

	ctx := context.Background()
	got, err := m1.Pause(ctx, sub.ID)
	if err != nil || got.State != webhooks.StatePaused {
		t.Fatalf("pause = %+v, %v", got, err)
	}
	if again, err := m1.Pause(ctx, sub.ID); err != nil || again.State != webhooks.StatePaused {
		t.Errorf("pause twice = %+v, %v", again, err)
	}
	var held []appended
	// A canary subscription gets each event: by then the paused one had
	// every chance to deliver it too.
	noDelivery := func(m *webhooks.Manager, title string) {
		t.Helper()
		ev := record(t, store, title)
		held = append(held, ev)
		if got := canary.next(t).id(t); got != ev.id {
			t.Fatalf("canary got %s, want %s", got, ev.id)
		}
		select {
		case d := <-paused.got:
			t.Fatalf("a paused subscription delivered %s", d.id(t))
		default:
		}
		if s, err := m.Get(sub.ID); err != nil || s.State != webhooks.StatePaused {
			t.Errorf("get while paused = %+v, %v", s, err)
		}
	}
	noDelivery(m1, "a")
	noDelivery(m1, "b")
	// Closing mid-acknowledgement would hand the canary's event back.
	waitSettled(t, store, canarySub.ID, held[len(held)-1].seq)
	m1.Close()

	m2 := open(t, store, quick)
	noDelivery(m2, "c")
	if h, err := m2.Health(ctx, sub.ID); err != nil || h.Pending == nil || *h.Pending != uint64(len(held)) {
		t.Errorf("health while paused: %+v, %v; want %d pending", h, err, len(held))
	}
	if got, err := m2.Resume(ctx, sub.ID); err != nil || got.State != webhooks.StateActive {
		t.Fatalf("resume = %+v, %v", got, err)
	}
	var ids []string
	for range held {
		ids = append(ids, paused.next(t).id(t))
	}
	for i, w := range held {
		if ids[i] != w.id {
			t.Fatalf("after resume got %v, want the held events in order", ids)
		}
	}
	after := record(t, store, "after")
	if got := paused.next(t).id(t); got != after.id {
		t.Errorf("after resume, then %s, want %s", got, after.id)
	}
	if slices.ContainsFunc(m2.List(""), func(s webhooks.Subscription) bool { return s.State != webhooks.StateActive }) {
		t.Errorf("listed %+v, want every subscription active", m2.List(""))
	}
	if _, err := m2.Pause(ctx, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("pause an unknown subscription: %v", err)
	}
}

// A pause on one instance stops delivery on the others too.
func TestPauseReachesEveryInstance(t *testing.T) {
	store := newStore(t)
	a := open(t, store, quick)
	b := open(t, store, quick)
	rcv := newReceiver(t, always(http.StatusOK))
	canary := newReceiver(t, always(http.StatusOK))
	secret, _ := newSecret(t)
	sub := subscribe(t, a, rcv.URL, secret, 0)
	subscribe(t, a, canary.URL, secret, 0)
	if _, err := a.Pause(context.Background(), sub.ID); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if s, err := b.Get(sub.ID); err == nil && s.State == webhooks.StatePaused {
			break
		}
		if i == 1000 {
			t.Fatal("the other instance never saw the pause")
		}
		waitABit()
	}
	for _, title := range []string{"a", "b", "c"} {
		ev := record(t, store, title)
		if got := canary.next(t).id(t); got != ev.id {
			t.Fatalf("canary got %s", got)
		}
	}
	select {
	case d := <-rcv.got:
		t.Errorf("a paused subscription delivered %s on some instance", d.id(t))
	default:
	}
}

// Deleted while idle (waiting for the next event), the consumer is made
// again and the next event arrives.
func TestConsumerDeletedWhileIdleHeals(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	rcv := newReceiver(t, always(http.StatusOK))
	secret, _ := newSecret(t)
	sub := subscribe(t, m, rcv.URL, secret, 0)
	first := record(t, store, "first")
	rcv.next(t)
	waitSettled(t, store, sub.ID, first.seq)
	if err := store.DeleteDurable(context.Background(), "webhook-"+sub.ID); err != nil {
		t.Fatal(err)
	}
	next := record(t, store, "next")
	if got := rcv.next(t).id(t); got != next.id {
		t.Fatalf("got %s, want %s", got, next.id)
	}
	if s := m.Stats(); s.Recreated != 1 {
		t.Errorf("recreated %d, want 1", s.Recreated)
	}
}

// A subscription deleted while another instance delivers it leaves no
// consumer behind: a missing consumer of a subscription being deleted is
// not made again.
func TestDeleteWithTwoInstancesLeavesNoConsumer(t *testing.T) {
	store := newStore(t)
	a := open(t, store, quick)
	b := open(t, store, quick)
	rcv := newReceiver(t, always(http.StatusOK))
	secret, _ := newSecret(t)
	ctx := context.Background()
	stream, err := store.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		sub := subscribe(t, a, rcv.URL, secret, 0)
		for i := 0; ; i++ {
			if _, err := b.Get(sub.ID); err == nil {
				break
			}
			if i == 1000 {
				t.Fatal("the other instance does not see the subscription")
			}
			waitABit()
		}
		if err := a.Delete(ctx, sub.ID); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			if _, err := b.Get(sub.ID); errors.Is(err, domain.ErrNotFound) {
				break
			}
			if i == 1000 {
				t.Fatal("the other instance still has the deleted subscription")
			}
			waitABit()
		}
		if _, err := stream.Consumer(ctx, "webhook-"+sub.ID); err == nil {
			t.Errorf("subscription %s deleted, its consumer is still there", sub.ID)
		}
	}
	if s := b.Stats(); s.Recreated != 0 {
		t.Errorf("the other instance recreated %d consumers of deleted subscriptions", s.Recreated)
	}
}

// A paused subscription can be deleted; a deleted one cannot be resumed.
func TestDeletePausedSubscription(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	secret, _ := newSecret(t)
	sub := subscribe(t, m, "http://127.0.0.1:9/hook", secret, 0)
	ctx := context.Background()
	if _, err := m.Pause(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, sub.ID); err != nil {
		t.Fatalf("delete a paused subscription: %v", err)
	}
	if _, err := store.DurableInfo(ctx, "webhook-"+sub.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("its consumer: %v, want gone", err)
	}
	if _, err := m.Resume(ctx, sub.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("resume a deleted subscription: %v", err)
	}
	if _, err := m.Health(ctx, sub.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("health of a deleted subscription: %v", err)
	}
}
