package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/sessions"
	"github.com/iom-who/engagements/tokens"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterFailover runs two instances on one three-node nats-server
// cluster (replicas 3), writes through both at once, shuts the stream
// leader's server down mid-load and checks that no acknowledged write is
// lost or doubled, that If-Match still lets only one writer win each version
// across instances, that writes resume, and that both instances converge.
func TestClusterFailover(t *testing.T) {
	began := time.Now()
	nodes := startCluster(t, 3)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url())
	}
	natsURL := strings.Join(urls, ",")
	t.Logf("cluster up in %v: %s", time.Since(began).Round(time.Millisecond), natsURL)

	// The first instance creates the admin token in the shared KV bucket and
	// writes it to its data directory; the second finds it there.
	mains := []*Main{startClusterMain(t, natsURL), startClusterMain(t, natsURL)}
	if mains[0].AdminToken == "" || mains[1].AdminToken != "" {
		t.Fatalf("admin token created by instance 1: %t, by instance 2: %t; want only the first",
			mains[0].AdminToken != "", mains[1].AdminToken != "")
	}
	token := clusterAdminToken(t, mains[0].Config.DataDir)
	var clients []*clusterClient
	for _, m := range mains {
		c := &clusterClient{&opsClient{base: m.URL(), token: token,
			http: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}}}
		t.Cleanup(c.http.CloseIdleConnections)
		clients = append(clients, c)
	}

	checkFeedAcrossInstances(t, mains, clients)

	load := &clusterLoad{t: t, notes: map[string]string{}, records: map[string]string{},
		versions: map[string]string{}}
	// Engagements that If-Match writers on both instances compete for.
	// Each is recorded through one instance and read through both: reads
	// pass the stream sequence of the later record as Min-Sequence, so the
	// other instance answers once it has applied it (not 404 before that).
	var shared []string
	var sharedSeq uint64
	for i := range 2 {
		id, seq := load.recordSeq(context.Background(), clients[i], fmt.Sprintf("shared-%d", i))
		shared = append(shared, id)
		sharedSeq = max(sharedSeq, seq)
	}
	if t.Failed() {
		t.FailNow()
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }() // writers report with t.Errorf: never after the test
	// Each shared engagement has an If-Match writer on each instance.
	for i := range 4 {
		wg.Go(func() { load.noteWriter(ctx, clients[i%2], i) })
		wg.Go(func() { load.ifMatchWriter(ctx, clients[i%2], i, shared[i/2], sharedSeq) })
	}

	waitUntil(t, 30*time.Second, "120 acknowledged writes before the kill", func() bool { return load.count() >= 120 })
	leader := clusterStreamLeader(t, natsURL)
	ackedBefore := load.count()
	killed := time.Now()
	for _, n := range nodes {
		if n.opts.ServerName == leader {
			t.Logf("shutting down stream leader %s (client connections of instances: %d) after %d acknowledged writes",
				leader, n.instanceConns(t), ackedBefore)
			n.stop()
		}
	}

	// Writes resume through both instances: a probe append with a fixed
	// Idempotency-Key is retried until it is acknowledged.
	for i, c := range clients {
		key := fmt.Sprintf("probe-%d", i)
		waitUntil(t, 30*time.Second, fmt.Sprintf("a write through instance %d after the kill", i+1), func() bool {
			r, err := c.do(http.MethodPost, "/v1/engagements/"+shared[i]+"/events",
				`{"type":"engagement.noted","data":{"note":"`+key+`"}}`, "Idempotency-Key", key)
			switch {
			case err == nil && r.status == http.StatusCreated:
				load.acked(r, key, "")
				return true
			case err == nil && r.status != http.StatusServiceUnavailable:
				t.Errorf("probe through instance %d: %s, want 201 or 503", i+1, r)
			}
			return false
		})
		t.Logf("instance %d: writes resumed %v after the leader was shut down", i+1, time.Since(killed).Round(time.Millisecond))
	}
	waitUntil(t, 30*time.Second, "80 more acknowledged writes after the kill", func() bool { return load.count() >= ackedBefore+80 })
	stop()
	wg.Wait()

	// Both instances converge: same last applied sequence (the stream's),
	// same engagements at the same versions.
	var states [2]clusterState
	waitUntil(t, 30*time.Second, "both instances to converge", func() bool {
		for i, c := range clients {
			states[i] = c.state(t)
		}
		return states[0].ready && states[1].ready && states[0].applied == states[0].stream &&
			states[1].applied == states[1].stream && states[0].stream == states[1].stream &&
			fmt.Sprint(states[0].versions) == fmt.Sprint(states[1].versions)
	})

	// Every acknowledged event is stored exactly once; nothing is stored
	// twice for one Idempotency-Key; the log is the same on both instances.
	logs := [2][]clusterEvent{clients[0].log(t), clients[1].log(t)}
	if fmt.Sprint(logs[0]) != fmt.Sprint(logs[1]) {
		t.Errorf("the instances' global logs differ: %d and %d events", len(logs[0]), len(logs[1]))
	}
	log := logs[0]
	if uint64(len(log)) != states[0].stream {
		t.Errorf("log has %d events, the stream %d messages", len(log), states[0].stream)
	}
	byMarker := map[string][]clusterEvent{}
	perEngagement := map[string]int{}
	stored := map[string]string{} // "<engagement>@<version>" → event id
	for i, ev := range log {
		stored[fmt.Sprintf("%s@%d", ev.EngagementID, ev.Version)] = ev.ID
		if ev.Sequence != uint64(i+1) {
			t.Errorf("log[%d] has sequence %d, want %d", i, ev.Sequence, i+1)
		}
		perEngagement[ev.EngagementID]++
		if ev.Version != perEngagement[ev.EngagementID] {
			t.Errorf("event %s is version %d of %s, want %d", ev.ID, ev.Version, ev.EngagementID, perEngagement[ev.EngagementID])
		}
		byMarker[ev.marker()] = append(byMarker[ev.marker()], ev)
	}
	for marker, evs := range byMarker {
		if len(evs) != 1 {
			t.Errorf("write %s is stored %d times, want once", marker, len(evs))
		}
	}
	load.mu.Lock()
	for marker, id := range load.notes {
		if evs := byMarker[marker]; len(evs) != 1 || evs[0].ID != id {
			t.Errorf("acknowledged event %s (%s) is stored as %v, want once", id, marker, evs)
		}
	}
	for marker, id := range load.records {
		if evs := byMarker[marker]; len(evs) != 1 || evs[0].EngagementID != id || evs[0].Type != "engagement.recorded" {
			t.Errorf("acknowledged engagement %s (%s) is stored as %v, want one engagement.recorded", id, marker, evs)
		}
	}
	// No lost update: each version of a shared engagement was acknowledged
	// to at most one If-Match writer, and it is the stored one.
	for key, id := range load.versions {
		if stored[key] != id {
			t.Errorf("If-Match write %s acknowledged as %s, but %q is stored there", id, key, stored[key])
		}
	}
	acked, wins, lost, retried := len(load.notes)+len(load.records), load.wins, load.preconditionFailed, load.retried
	load.mu.Unlock()
	for id, v := range states[0].versions {
		if perEngagement[id] != v {
			t.Errorf("engagement %s is at version %d, its log has %d events", id, v, perEngagement[id])
		}
	}
	t.Logf("%d acknowledged events (%d before the kill) in a stream of %d; If-Match wins through instance 1 and 2: %v, 412s: %d; retried 503s or transport errors: %d; total %v",
		acked, ackedBefore, len(log), wins, lost, retried, time.Since(began).Round(time.Millisecond))
}

// clusterNode is one in-process nats-server of the test cluster.
type clusterNode struct {
	opts server.Options
	ns   *server.Server
	once sync.Once
}

func (n *clusterNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port) }

func (n *clusterNode) stop() {
	n.once.Do(func() {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
	})
}

// instanceConns counts the instances' connections to the server.
func (n *clusterNode) instanceConns(t *testing.T) int {
	t.Helper()
	cz, err := n.ns.Connz(&server.ConnzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, c := range cz.Conns {
		if c.Name == "engagements" {
			count++
		}
	}
	return count
}

// startCluster starts size JetStream servers routed to each other and
// waits until they have elected a meta leader.
func startCluster(t *testing.T, size int) []*clusterNode {
	t.Helper()
	ports := clusterFreePorts(t, 2*size) // client ports, then route ports
	var routes []string
	for i := range size {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[size+i]))
	}
	nodes := make([]*clusterNode, size)
	for i := range size {
		n := &clusterNode{opts: server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: ports[i],
			JetStream: true, StoreDir: t.TempDir(), SyncAlways: true, NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "engagements-test", Host: "127.0.0.1", Port: ports[size+i]},
			Routes:  server.RoutesFromStr(strings.Join(slices.Delete(slices.Clone(routes), i, i+1), ",")),
		}}
		opts := n.opts // NewServer keeps and changes its options
		ns, err := server.NewServer(&opts)
		if err != nil {
			t.Fatalf("nats server %d: %v", i+1, err)
		}
		n.ns = ns
		t.Cleanup(n.stop)
		ns.Start()
		nodes[i] = n
	}
	for _, n := range nodes {
		if !n.ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats server %s not ready", n.opts.ServerName)
		}
	}
	waitUntil(t, 30*time.Second, "a JetStream meta leader with every peer", func() bool {
		leaders := 0
		for _, n := range nodes {
			if !n.ns.JetStreamIsCurrent() {
				return false
			}
			// Only the leader lists the peers it has heard from.
			if n.ns.JetStreamIsLeader() && len(n.ns.JetStreamClusterPeers()) == size {
				leaders++
			}
		}
		return leaders == 1
	})
	return nodes
}

// clusterFreePorts finds n distinct free TCP ports on the loopback interface.
func clusterFreePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// startClusterMain starts a Main on the cluster with replicas 3 and its own
// data directory, and closes it before the cluster stops.
func startClusterMain(t *testing.T, natsURL string) *Main {
	t.Helper()
	m := &Main{Config: Config{NATSURL: natsURL, Replicas: 3, DataDir: t.TempDir(), HTTP: "127.0.0.1:0",
		Sync: eventstore.SyncAlways}}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m
}

func clusterAdminToken(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// clusterStreamLeader asks the cluster, with a raw JetStream client, which
// server leads the stream, and checks that the stream and the token bucket
// have three replicas.
func clusterStreamLeader(t *testing.T, natsURL string) string {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster info %+v: want a leader and two replicas", info.Cluster)
	}
	// The shared token, calendar-feed, web-session and sign-in buckets are replicated too.
	for _, bucket := range []string{tokens.Bucket, calendars.Bucket, sessions.Bucket, sessions.AttemptsBucket} {
		kv, err := js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		if r := kv.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("bucket %s has %d replicas, want 3", bucket, r)
		}
	}
	return info.Cluster.Leader
}

// checkFeedAcrossInstances makes a calendar feed through the first
// instance, fetches it (no token) through the second, revokes it through
// the first and finds it gone on the second at once: each fetch reads the
// replicated bucket, nothing is cached.
func checkFeedAcrossInstances(t *testing.T, mains []*Main, clients []*clusterClient) {
	t.Helper()
	r := clients[0].must(t, http.MethodPost, "/v1/calendars", `{"name":"cluster"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create a feed: %s", r)
	}
	var feed struct{ ID, URL string }
	r.decode(t, &feed)
	path, ok := strings.CutPrefix(feed.URL, mains[0].URL())
	if !ok {
		t.Fatalf("feed url %q is not on instance 1 (%s)", feed.URL, mains[0].URL())
	}
	fetch := func() int {
		resp, err := http.Get(mains[1].URL() + path)
		if err != nil {
			t.Fatalf("fetch the feed from instance 2: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := fetch(); code != http.StatusOK {
		t.Fatalf("the feed through instance 2: %d", code)
	}
	if r := clients[0].must(t, http.MethodDelete, "/v1/calendars/"+feed.ID, ""); r.status != http.StatusNoContent {
		t.Fatalf("revoke the feed: %s", r)
	}
	if code := fetch(); code != http.StatusNotFound {
		t.Errorf("a feed revoked on instance 1, through instance 2 right after: %d, want 404", code)
	}
}

// waitUntil polls cond until it holds, failing the test after limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", limit, what)
		}
	}
}

// clusterClient sends requests to one instance with the admin token; its
// requests are never abandoned half-way, so a write the server stored is
// always answered and the test knows every acknowledged one.
type clusterClient struct{ *opsClient }

type clusterReply = opsReply

// get reads path into v, failing the test on anything but 200.
func (c *clusterClient) get(t *testing.T, path string, v any) {
	t.Helper()
	r, err := c.do(http.MethodGet, path, "")
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("GET %s%s: %v %v", c.base, path, r, err)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("GET %s%s: %v", c.base, path, err)
	}
}

// clusterEvent is an event of the global log. Every write of the test
// carries a marker (the note, or the title of a new engagement) that is also
// its Idempotency-Key.
type clusterEvent struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	EngagementID string `json:"engagement_id"`
	Sequence     uint64 `json:"sequence"`
	Version      int    `json:"version"`
	Data         struct {
		Note  string `json:"note"`
		Title string `json:"title"`
	} `json:"data"`
}

func (e clusterEvent) marker() string { return e.Data.Note + e.Data.Title }

// log reads the whole global log.
func (c *clusterClient) log(t *testing.T) []clusterEvent {
	t.Helper()
	var all []clusterEvent
	for after := uint64(0); ; {
		var page struct {
			Events    []clusterEvent `json:"events"`
			NextAfter uint64         `json:"next_after"`
		}
		c.get(t, fmt.Sprintf("/v1/events?after=%d&limit=1000", after), &page)
		if len(page.Events) == 0 {
			return all
		}
		all = append(all, page.Events...)
		after = page.NextAfter
	}
}

// clusterState is what an instance serves: readiness, sequences and every
// engagement's version.
type clusterState struct {
	ready           bool
	applied, stream uint64
	versions        map[string]int
}

func (c *clusterClient) state(t *testing.T) clusterState {
	t.Helper()
	var st clusterState
	r, err := c.do(http.MethodGet, "/readyz", "")
	if err != nil || r.status != http.StatusOK {
		return st
	}
	var ready struct{ Applied, Stream uint64 }
	if err := json.Unmarshal(r.body, &ready); err != nil {
		t.Fatalf("readyz: %v", err)
	}
	var l struct {
		Items []struct {
			ID      string
			Version int
		}
	}
	c.get(t, "/v1/engagements?limit=1000", &l)
	st = clusterState{ready: true, applied: ready.Applied, stream: ready.Stream, versions: map[string]int{}}
	for _, it := range l.Items {
		st.versions[it.ID] = it.Version
	}
	return st
}

// clusterLoad is the writers' shared record of what was acknowledged.
type clusterLoad struct {
	t  *testing.T
	mu sync.Mutex
	// notes maps a note's marker to its acknowledged event id, records a
	// new engagement's marker to its id, versions "<engagement>@<version>"
	// to the event id an If-Match writer was acknowledged with.
	notes, records, versions    map[string]string
	wins                        [2]int // If-Match wins per instance
	preconditionFailed, retried int
}

func (l *clusterLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.notes) + len(l.records)
}

// send posts until the answer is final: 503s, 409s (too much contention)
// and transport errors are retried with the same Idempotency-Key, which
// makes the outcome exactly once. Once ctx ends it stops retrying, leaving
// the outcome open (such a write may be stored, unacknowledged).
func (l *clusterLoad) send(ctx context.Context, c *clusterClient, path, body, key string, headers ...string) (clusterReply, bool) {
	headers = append(headers, "Idempotency-Key", key)
	for {
		r, err := c.do(http.MethodPost, path, body, headers...)
		switch {
		case err != nil, r.status == http.StatusServiceUnavailable, r.status == http.StatusConflict:
			if err == nil && r.status == http.StatusServiceUnavailable && r.header.Get("Retry-After") == "" {
				l.t.Errorf("POST %s: 503 without Retry-After", path)
			}
			l.mu.Lock()
			l.retried++
			l.mu.Unlock()
			select {
			case <-ctx.Done():
				return r, false
			case <-time.After(100 * time.Millisecond):
			}
			continue
		case r.status == http.StatusCreated, r.status == http.StatusPreconditionFailed:
			return r, true
		}
		l.t.Errorf("POST %s (key %s): %s", path, key, r)
		return r, false
	}
}

// acked remembers an acknowledged note, or with ifMatch set ("<engagement>@
// <version it was read at>") an If-Match write.
func (l *clusterLoad) acked(r clusterReply, marker, ifMatch string) {
	var ev struct {
		ID      string
		Version int
	}
	if err := json.Unmarshal(r.body, &ev); err != nil {
		l.t.Errorf("201 body %s: %v", r.body, err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notes[marker] = ev.ID
	if ifMatch == "" {
		return
	}
	engagement, read, _ := strings.Cut(ifMatch, "@")
	if want, _ := strconv.Atoi(read); ev.Version != want+1 {
		l.t.Errorf("If-Match %s on %s acknowledged as version %d", read, engagement, ev.Version)
	}
	key := fmt.Sprintf("%s@%d", engagement, ev.Version)
	if prev, ok := l.versions[key]; ok {
		l.t.Errorf("lost update: version %d of %s acknowledged twice (%s and %s)", ev.Version, engagement, prev, ev.ID)
	}
	l.versions[key] = ev.ID
}

// record creates an engagement titled marker and returns its id ("" if the
// writer stopped first).
func (l *clusterLoad) record(ctx context.Context, c *clusterClient, marker string) string {
	id, _ := l.recordSeq(ctx, c, marker)
	return id
}

// recordSeq is record, also returning the stream sequence of the new
// engagement's first event.
func (l *clusterLoad) recordSeq(ctx context.Context, c *clusterClient, marker string) (string, uint64) {
	r, ok := l.send(ctx, c, "/v1/engagements",
		`{"kind":"initiative","title":"`+marker+`","parties":["IOM","WHO"]}`, marker)
	if !ok {
		return "", 0
	}
	var e struct {
		ID       string
		Sequence uint64
	}
	if err := json.Unmarshal(r.body, &e); err != nil || r.status != http.StatusCreated {
		l.t.Errorf("record %s: %s", marker, r)
		return "", 0
	}
	l.mu.Lock()
	l.records[marker] = e.ID
	l.mu.Unlock()
	return e.ID, e.Sequence
}

// noteWriter records engagements and notes them, without If-Match.
func (l *clusterLoad) noteWriter(ctx context.Context, c *clusterClient, w int) {
	var own []string
	for n := 0; ctx.Err() == nil; n++ {
		marker := fmt.Sprintf("w%d-%d", w, n)
		if n%5 == 0 {
			if id := l.record(ctx, c, marker); id != "" {
				own = append(own, id)
			}
			continue
		}
		if len(own) == 0 {
			continue
		}
		id := own[rand.IntN(len(own))]
		r, ok := l.send(ctx, c, "/v1/engagements/"+id+"/events",
			`{"type":"engagement.noted","data":{"note":"`+marker+`"}}`, marker)
		if ok {
			l.acked(r, marker, "")
		}
	}
}

// ifMatchWriter reads a shared engagement's version and notes it with
// If-Match, competing with writers on both instances. Its reads wait for
// minSeq, the engagement's creation, which may have gone through the other
// instance.
func (l *clusterLoad) ifMatchWriter(ctx context.Context, c *clusterClient, w int, id string, minSeq uint64) {
	for n := 0; ctx.Err() == nil; n++ {
		r, err := c.do(http.MethodGet, "/v1/engagements/"+id, "", "Min-Sequence", strconv.FormatUint(minSeq, 10))
		if err != nil || r.status != http.StatusOK {
			if ctx.Err() == nil && err == nil && r.status != http.StatusServiceUnavailable {
				l.t.Errorf("GET %s: %s", id, r)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		etag := r.header.Get("ETag")
		version, err := strconv.Atoi(strings.Trim(etag, `"`))
		if err != nil {
			l.t.Errorf("ETag %q: %v", etag, err)
			return
		}
		marker := fmt.Sprintf("m%d-%d", w, n)
		r, ok := l.send(ctx, c, "/v1/engagements/"+id+"/events",
			`{"type":"engagement.noted","data":{"note":"`+marker+`"}}`, marker, "If-Match", etag)
		switch {
		case !ok:
		case r.status == http.StatusPreconditionFailed:
			l.mu.Lock()
			l.preconditionFailed++
			l.mu.Unlock()
		default:
			l.acked(r, marker, fmt.Sprintf("%s@%d", id, version))
			l.mu.Lock()
			l.wins[w%2]++ // writer w writes through instance w%2
			l.mu.Unlock()
		}
	}
}
