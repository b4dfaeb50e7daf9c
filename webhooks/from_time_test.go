package webhooks_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/webhooks"
)

// afterNow returns now, once the clock has moved past it (a spin of about a
// microsecond, not a sleep): what is stored next is stored after it.
func afterNow() time.Time {
	t := time.Now()
	for !time.Now().After(t) {
	}
	return t
}

func TestSubscriptionFromTimeGetsTheEventsStoredSince(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	record(t, store, "old 1")
	record(t, store, "old 2")
	at := afterNow()
	new1, new2 := record(t, store, "new 1"), record(t, store, "new 2")
	r := newReceiver(t, always(http.StatusOK))
	secret, _ := newSecret(t)
	sub, err := m.Create(context.Background(), "crm-sync", webhooks.Request{
		URL: r.URL, Types: []string{"engagement.*"}, Secret: secret, FromTime: at})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if sub.FromSequence != new1.seq || sub.FromTime == nil || !sub.FromTime.Equal(at) {
		t.Errorf("from_sequence %d, from_time %v; want %d, %v", sub.FromSequence, sub.FromTime, new1.seq, at)
	}
	live := record(t, store, "live")
	for _, want := range []appended{new1, new2, live} {
		if got := r.next(t).id(t); got != want.id {
			t.Errorf("delivered %s, want %s", got, want.id)
		}
	}

	// A time after the last event: the next one stored.
	later, err := m.Create(context.Background(), "crm-sync", webhooks.Request{
		URL: r.URL, Types: []string{"engagement.*"}, Secret: secret, FromTime: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if later.FromSequence != live.seq+1 {
		t.Errorf("from a future time: from_sequence %d, want the next one %d", later.FromSequence, live.seq+1)
	}

	// Both starts at once are refused, naming from_time.
	_, err = m.Create(context.Background(), "crm-sync", webhooks.Request{
		URL: r.URL, Types: []string{"engagement.*"}, Secret: secret, FromTime: at, FromSequence: 1})
	var verr *domain.ValidationError
	if !errors.As(err, &verr) || len(verr.Fields) != 1 || verr.Fields[0].Field != "from_time" {
		t.Errorf("from_time with from_sequence: %v, want a validation error on from_time", err)
	}
}
