package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ceID is the CloudEvent id of a stored payload.
func ceID(t *testing.T, data []byte) string {
	t.Helper()
	var ce struct{ ID string }
	if err := json.Unmarshal(data, &ce); err != nil || ce.ID == "" {
		t.Fatalf("not a CloudEvent: %q (%v)", data, err)
	}
	return ce.ID
}

// 64 writers append through the API to 4 engagements without If-Match
// (they contend), and a raw client keeps trying appends JetStream refuses.
// A core NATS subscriber of engagements.> receives exactly the stored
// events, each once, in stream order, with the stored subject and bytes; a
// JetStream consumer and the SSE stream see the same.
func TestCoreSubscriberSeesWhatWasStored(t *testing.T) {
	ts := newTestServerWith(t, eventstore.Config{NATSListen: "127.0.0.1:-1"})
	nc, err := nats.Connect(ts.store.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync("engagements.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{"engagements.>"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sse, resp := openStream(t, ctx, ts, "?after=0")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SSE: %d", resp.StatusCode)
	}

	ids := make([]string, 4)
	for i := range ids {
		ids[i] = ts.create(t, agreement(fmt.Sprintf("MOU %d", i)))
	}
	const writers, rounds = 64, 3
	var wg sync.WaitGroup
	start := make(chan struct{})
	var mu sync.Mutex
	statuses := map[int]int{}
	for w := range writers {
		wg.Go(func() {
			<-start
			for n := range rounds {
				r, err := ts.do(http.MethodPost, "/v1/engagements/"+ids[w%len(ids)]+"/events", note(fmt.Sprintf("writer %d round %d", w, n)))
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
			}
		})
	}
	// Appends around the API that JetStream refuses (stale expected
	// sequence): before the intake subjects, core subscribers got them all.
	refused := 0
	wg.Go(func() {
		<-start
		for i := range 200 {
			subject, err := eventstore.Subject("agreement", ids[i%len(ids)], "engagement.noted")
			if err != nil {
				t.Error(err)
				return
			}
			msg := nats.NewMsg(eventstore.IntakeSubject(subject))
			msg.Data = []byte(`{"forged":true}`)
			_, err = js.PublishMsg(t.Context(), msg, jetstream.WithExpectLastSequenceForSubject(0, "engagements.*."+ids[i%len(ids)]+".*"))
			if err == nil {
				t.Errorf("a forged append with a stale expected sequence was stored")
				return
			}
			refused++
		}
	})
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if statuses[http.StatusCreated] == 0 {
		t.Fatalf("no append stored: %v", statuses)
	}
	for s := range statuses {
		if s != http.StatusCreated && s != http.StatusConflict {
			t.Errorf("statuses %v: want only 201 and 409", statuses)
		}
	}
	// The barrier: stored after every other append was answered.
	ts.create(t, agreement("last"))
	last := ts.lastSequence(t)
	t.Logf("statuses %v, %d refused raw appends, %d stored", statuses, refused, last)

	stored := make([]*jetstream.RawStreamMsg, last+1)
	for seq := uint64(1); seq <= last; seq++ {
		if stored[seq], err = stream.GetMsg(t.Context(), seq); err != nil {
			t.Fatalf("GetMsg %d: %v", seq, err)
		}
	}
	for want := uint64(1); want <= last; want++ {
		msg, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("core subscriber: waiting for sequence %d of %d: %v", want, last, err)
		}
		got, _ := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
		if got != want || msg.Subject != stored[want].Subject || !bytes.Equal(msg.Data, stored[want].Data) {
			t.Fatalf("core subscriber got %s %q at Nats-Sequence %q where %d (%s %q) was due",
				msg.Subject, msg.Data, msg.Header.Get(jetstream.SequenceHeader), want, stored[want].Subject, stored[want].Data)
		}
	}
	if msg, err := sub.NextMsg(50 * time.Millisecond); err == nil {
		t.Errorf("core subscriber got %s %q after the last stored event", msg.Subject, msg.Data)
	}

	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	for want := uint64(1); want <= last; want++ {
		msg, err := it.Next()
		if err != nil {
			t.Fatalf("JetStream consumer: waiting for %d: %v", want, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if meta.Sequence.Stream != want || msg.Subject() != stored[want].Subject || !bytes.Equal(msg.Data(), stored[want].Data) {
			t.Fatalf("JetStream consumer got %s at %d where %d (%s) was due", msg.Subject(), meta.Sequence.Stream, want, stored[want].Subject)
		}
	}

	for want := uint64(1); want <= last; want++ {
		select {
		case ev, ok := <-sse:
			if !ok {
				t.Fatalf("SSE ended before %d", want)
			}
			if ev.id != want || ceID(t, []byte(ev.data)) != ceID(t, stored[want].Data) {
				t.Fatalf("SSE sent %d (%s) where %d (%s) was due", ev.id, ev.data, want, stored[want].Data)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("SSE: waiting for %d", want)
		}
	}
}
