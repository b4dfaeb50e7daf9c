package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// On a three-node cluster with three replicas only the stream leader
// republishes: a core subscriber on any node receives each stored event
// once, in stream order, while two instances' writers contend for the same
// engagements (refused appends included).
func TestClusterCoreSubscribersSeeStoredEventsOnce(t *testing.T) {
	nodes := startCluster(t, 3)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url())
	}
	natsURL := strings.Join(urls, ",")
	mains := []*Main{startClusterMain(t, natsURL), startClusterMain(t, natsURL)}
	token := clusterAdminToken(t, mains[0].Config.DataDir)

	subs := make([]*nats.Subscription, len(nodes))
	for i, n := range nodes {
		nc, err := nats.Connect(n.url())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		if subs[i], err = nc.SubscribeSync("engagements.>"); err != nil {
			t.Fatal(err)
		}
		if err := subs[i].SetPendingLimits(-1, -1); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	var clients []*opsClient
	for _, m := range mains {
		c := &opsClient{base: m.URL(), token: token, http: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}}
		t.Cleanup(c.http.CloseIdleConnections)
		clients = append(clients, c)
	}
	var ids []string
	for i := range 2 {
		r, err := clients[i].do(http.MethodPost, "/v1/engagements",
			fmt.Sprintf(`{"kind":"agreement","title":"MOU %d","parties":["IOM","WHO"]}`, i))
		if err != nil || r.status != http.StatusCreated {
			t.Fatalf("create through instance %d: %v %v", i+1, r, err)
		}
		var created struct{ ID string }
		r.decode(t, &created)
		ids = append(ids, created.ID)
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for n := range 3 {
				// Each instance's writers append to both engagements, so
				// the two instances refuse each other's stale appends.
				r, err := clients[w%2].do(http.MethodPost, "/v1/engagements/"+ids[(w/2+n)%2]+"/events",
					fmt.Sprintf(`{"type":"engagement.noted","data":{"note":"w%d n%d"}}`, w, n))
				if err != nil || (r.status != http.StatusCreated && r.status != http.StatusConflict) {
					t.Errorf("writer %d: %v %v", w, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// The barrier: stored after every other append was answered.
	if r, err := clients[0].do(http.MethodPost, "/v1/engagements/"+ids[0]+"/events", `{"type":"engagement.noted","data":{"note":"last"}}`); err != nil || r.status != http.StatusCreated {
		t.Fatalf("last append: %v %v", r, err)
	}

	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 {
		t.Errorf("replicas %d, want 3", info.Config.Replicas)
	}
	last := info.State.LastSeq
	for seq := uint64(1); seq <= last; seq++ {
		stored, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("GetMsg %d: %v", seq, err)
		}
		for i, sub := range subs {
			msg, err := sub.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatalf("core subscriber on node %d: waiting for %d of %d: %v", i+1, seq, last, err)
			}
			got, _ := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
			if got != seq || msg.Subject != stored.Subject || !bytes.Equal(msg.Data, stored.Data) {
				t.Fatalf("core subscriber on node %d got %s at Nats-Sequence %q where %d (%s) was due",
					i+1, msg.Subject, msg.Header.Get(jetstream.SequenceHeader), seq, stored.Subject)
			}
		}
	}
	for i, sub := range subs {
		if msg, err := sub.NextMsg(50 * time.Millisecond); err == nil {
			t.Errorf("core subscriber on node %d got %s after the last stored event", i+1, msg.Subject)
		}
	}
}
