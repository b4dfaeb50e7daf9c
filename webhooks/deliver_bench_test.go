package webhooks_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/webhooks"
)

// BenchmarkDelivery is one subscription's delivery rate: b.N stored events
// backfilled to a receiver that answers 204 at once (one event in flight,
// so each costs a fetch, a POST and an acknowledgement).
func BenchmarkDelivery(b *testing.B) {
	store, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	m, err := webhooks.Open(context.Background(), store, quick)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	var got atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if got.Add(1) == n {
			close(done)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	for range b.N {
		record(b, store, "bench")
	}
	secret, _ := newSecret(b)
	b.ResetTimer()
	if _, err := m.Create(context.Background(), "bench", webhooks.Request{URL: rcv.URL,
		Types: []string{"engagement.*"}, Secret: secret, FromSequence: 1}); err != nil {
		b.Fatal(err)
	}
	<-done
}
