package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
)

// TestCrashSafety kills `engagements serve` with SIGKILL at random moments
// while writers append, restarts it, and checks after every restart that
// each write answered 201 is stored exactly once. At the end it stops the
// process with SIGTERM and compares what it served with a full rebuild.
//
// CRASH_CYCLES (default 3) is the number of kills, CRASH_SYNC (default
// always) the --sync policy, CRASH_WRITERS (default 8) the number of
// concurrent writers (with 16 or more, sync=always commits in batches);
// CRASH_SEED repeats a run's choices and kill
// points (not its timing). `make crash-test` runs 20 cycles.
func TestCrashSafety(t *testing.T) {
	cycles := 3
	if v := os.Getenv("CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CRASH_CYCLES=%q: want a positive number", v)
		}
		cycles = n
	}
	syncPolicy := cmp.Or(os.Getenv("CRASH_SYNC"), string(eventstore.SyncAlways))
	if _, err := eventstore.ParseSync(syncPolicy); err != nil {
		t.Fatalf("CRASH_SYNC: %v", err)
	}
	writers := 8
	if v := os.Getenv("CRASH_WRITERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CRASH_WRITERS=%q: want a positive number", v)
		}
		writers = n
	}
	seed := time.Now().UnixNano()
	if v := os.Getenv("CRASH_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("CRASH_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("crash: sync=%s cycles=%d writers=%d seed=%d (CRASH_SEED=%d repeats the writers' choices and kill points)", syncPolicy, cycles, writers, seed, seed)

	start := time.Now()
	c := &crashRun{
		t: t, dir: t.TempDir(), logs: t.TempDir(), sync: syncPolicy, writers: writers,
		rng: rand.New(rand.NewSource(seed)), seed: seed,
		acked: make(map[string]ackedWrite), unknown: make(map[string]crashWrite), duplicates: make(map[string]struct{}),
	}
	p := c.start()
	for cycle := 1; cycle <= cycles; cycle++ {
		c.writeAndKill(p, cycle)
		p = c.start()
		c.check(p, cycle)
		c.retryUnknown(p)
	}
	c.check(p, cycles+1)
	served := c.served(p)
	if err := p.stop(); err != nil {
		t.Errorf("SIGTERM: exit %v, want 0", err)
	}
	events := c.compareWithRebuild(served)
	// Every unknown write was resolved by its retry, so the stream holds
	// exactly the acknowledged writes that were not lost.
	if want := uint64(c.acks - c.lost); events != want {
		t.Errorf("stream holds %d events; %d acknowledged, %d of them lost", events, c.acks, c.lost)
	}

	loss := "lost=0"
	if c.lost > 0 {
		loss = fmt.Sprintf("lost=%d (%d of them engagements)", c.lost, c.lostCreates)
	}
	t.Logf("crash summary: sync=%s cycles=%d acknowledged=%d unknown=%d (stored before the kill %d, stored on retry %d, refused on retry %d) %s duplicates=%d events=%d engagements=%d writes/s=%.0f elapsed=%s seed=%d",
		syncPolicy, cycles, c.acks, c.unknowns, c.unknownStored, c.unknownRetried, c.unknownRefused,
		loss, len(c.duplicates), events, len(served), float64(c.writingAcks)/c.writing.Seconds(),
		time.Since(start).Round(time.Millisecond), seed)
	if syncPolicy == string(eventstore.SyncAlways) && c.lost > 0 {
		t.Errorf("sync always: %d acknowledged writes lost", c.lost)
	}
}

// crashWrite is one request a writer makes. Key is its Idempotency-Key and also
// its marker: it is part of the stored title or note, so a request stored
// twice shows up even under two event ids.
type crashWrite struct {
	key, action string // action: create, note or sign
	engagement  string // empty for create
}

func (w crashWrite) path() string {
	if w.action == "create" {
		return "/v1/engagements"
	}
	return "/v1/engagements/" + w.engagement + "/events"
}

func (w crashWrite) body() string {
	switch w.action {
	case "create":
		return `{"kind":"agreement","title":"Crash MOU ` + w.key + `","parties":["IOM","WHO"],"occurred_at":"2020-02-01"}`
	case "sign":
		return `{"type":"agreement.signed","data":{"signed_on":"2020-02-03"}}`
	}
	return `{"type":"engagement.noted","data":{"note":"note ` + w.key + `"}}`
}

// ackedWrite is a write answered 201, with what the answer said.
type ackedWrite struct {
	crashWrite
	engagementID string // the write's engagement, or the new one's for create
	eventID      string // empty for create: the answer is the engagement
	sequence     uint64
	version      int
}

// crashRun holds what the writers were told across all cycles.
type crashRun struct {
	t          *testing.T
	dir, logs  string
	sync       string
	writers    int // concurrent writers
	seed       int64
	rng        *rand.Rand // used by the test goroutine only
	processes  int
	lastStream uint64 // stream's last sequence when the latest process became ready

	mu          sync.Mutex
	acked       map[string]ackedWrite // by key
	unknown     map[string]crashWrite // no answer, or 503: may or may not be stored
	engagements []string              // acknowledged and (as far as checked) stored
	acks        int                   // every 201
	cycleAcks   int
	writing     time.Duration // the writers' time before the kills
	writingAcks int           // 201s in that time

	unknowns, unknownStored, unknownRetried, unknownRefused int
	lost, lostCreates                                       int
	duplicates                                              map[string]struct{} // event ids and keys stored twice
}

// writeAndKill runs the writers against p and kills p with SIGKILL once a
// random number of writes has been acknowledged, a random moment later.
func (c *crashRun) writeAndKill(p *serveProcess, cycle int) {
	t := c.t
	target := 10 + c.rng.Intn(150)
	delay := time.Duration(c.rng.Intn(20000)) * time.Microsecond
	c.mu.Lock()
	c.cycleAcks = 0
	c.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	started := time.Now()
	for w := range c.writers {
		rng := rand.New(rand.NewSource(c.seed + int64(cycle*c.writers+w)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				if !c.writeOne(p, c.next(rng, fmt.Sprintf("c%d-w%d-%d", cycle, w, n))) {
					return // the process is gone
				}
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c.mu.Lock()
		n := c.cycleAcks
		c.mu.Unlock()
		if n >= target {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			wg.Wait()
			t.Fatalf("cycle %d: only %d of %d writes acknowledged in 60s; serve log:\n%s", cycle, n, target, p.logTail())
		}
		time.Sleep(200 * time.Microsecond)
	}
	time.Sleep(delay)
	// The writers are busy: the kill lands on requests in flight.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	c.mu.Lock()
	c.writing += time.Since(started)
	c.writingAcks += c.cycleAcks
	c.mu.Unlock()
	<-p.exited
	cancel()
	wg.Wait()
	p.client.CloseIdleConnections()
	c.mu.Lock()
	t.Logf("cycle %d: killed after %d acknowledged writes (+%s); %d unknown", cycle, c.cycleAcks, delay, len(c.unknown))
	c.mu.Unlock()
}

// next picks a writer's next request: mostly notes, some new agreements,
// some signatures (which are refused once an agreement is signed).
func (c *crashRun) next(rng *rand.Rand, key string) crashWrite {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := rng.Float64()
	if len(c.engagements) < c.writers || r < 0.15 {
		return crashWrite{key: key, action: "create"}
	}
	id := c.engagements[rng.Intn(len(c.engagements))]
	if r < 0.25 {
		return crashWrite{key: key, action: "sign", engagement: id}
	}
	return crashWrite{key: key, action: "note", engagement: id}
}

// writeOne sends w until it has a definite answer, and reports false when
// the process did not answer: then w is unknown, to be retried after the
// restart. Even "connection refused" is unknown: net/http resends a request
// with an Idempotency-Key on a new connection when the first one broke, so
// the refusal may hide an attempt that reached the process.
func (c *crashRun) writeOne(p *serveProcess, w crashWrite) bool {
	for {
		status, body, err := p.post(w.path(), w.body(), "Idempotency-Key", w.key)
		if err == nil && c.answer(w, status, body, false) {
			return true
		}
		if err == nil {
			// 503 (a write that timed out waiting for its projection is
			// stored) or 429: the same key must be sent again.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c.mu.Lock()
		c.unknown[w.key] = w
		c.unknowns++
		c.mu.Unlock()
		return false
	}
}

// answer records a definite answer to w and reports whether it was one
// (false: 503 or 429, send again).
func (c *crashRun) answer(w crashWrite, status int, body []byte, retry bool) bool {
	t := c.t
	switch {
	case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
		return false
	case status != http.StatusCreated:
		// Refusals the writers expect: a signature after another writer's,
		// and (when acknowledged writes can be lost) a write to a lost
		// engagement.
		signed := status == http.StatusUnprocessableEntity && w.action == "sign"
		gone := status == http.StatusNotFound && retry && c.sync != string(eventstore.SyncAlways)
		if !signed && !gone {
			t.Errorf("%s %s: %d %s", w.action, w.key, status, body)
		}
		if retry {
			c.mu.Lock()
			c.unknownRefused++
			c.mu.Unlock()
		}
		return true
	}
	var r struct {
		ID       string `json:"id"`
		Sequence uint64 `json:"sequence"`
		Version  int    `json:"version"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.ID == "" || r.Sequence == 0 || r.Version == 0 {
		t.Errorf("%s %s: 201 with body %s", w.action, w.key, body)
		return true
	}
	a := ackedWrite{crashWrite: w, engagementID: w.engagement, eventID: r.ID, sequence: r.Sequence, version: r.Version}
	if w.action == "create" {
		a.engagementID, a.eventID = r.ID, ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.acked[w.key]; ok {
		t.Errorf("%s %s: acknowledged twice", w.action, w.key)
	}
	c.acked[w.key] = a
	c.acks++
	c.cycleAcks++
	if w.action == "create" {
		c.engagements = append(c.engagements, a.engagementID)
	}
	if retry {
		if a.sequence <= c.lastStream {
			c.unknownStored++
		} else {
			c.unknownRetried++
		}
	}
	return true
}

// retryUnknown sends every unknown write again with its Idempotency-Key,
// as a client would: one stored before the kill must answer with the first
// result, one that was not is stored now; either way exactly once.
func (c *crashRun) retryUnknown(p *serveProcess) {
	c.mu.Lock()
	pending := make([]crashWrite, 0, len(c.unknown))
	for _, w := range c.unknown {
		pending = append(pending, w)
	}
	clear(c.unknown)
	c.mu.Unlock()
	for _, w := range pending {
		for attempt := 0; ; attempt++ {
			status, body, err := p.post(w.path(), w.body(), "Idempotency-Key", w.key)
			if err != nil {
				c.t.Fatalf("retry %s %s: %v", w.action, w.key, err)
			}
			if c.answer(w, status, body, true) {
				break
			}
			if attempt == 100 {
				c.t.Fatalf("retry %s %s: still %d: %s", w.action, w.key, status, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// check reads the whole log from p and checks that every acknowledged write
// is there exactly once and that every engagement's versions run 1..n.
// Acknowledged writes that are missing are lost: an error with sync always,
// counted (and dropped) otherwise.
func (c *crashRun) check(p *serveProcess, cycle int) {
	t := c.t
	log := p.log()
	byID := make(map[string]logEvent, len(log))
	markers := make(map[string]int)
	versions := make(map[string]int)
	recorded := make(map[string]logEvent) // engagement id → its engagement.recorded
	for _, ev := range log {
		if _, ok := byID[ev.ID]; ok {
			c.duplicates[ev.ID] = struct{}{}
			t.Errorf("after restart %d: event %s stored twice", cycle, ev.ID)
		}
		byID[ev.ID] = ev
		if m := ev.marker(); m != "" {
			if markers[m]++; markers[m] == 2 {
				c.duplicates[m] = struct{}{}
				t.Errorf("after restart %d: request %s stored twice", cycle, m)
			}
		}
		if versions[ev.EngagementID]++; ev.Version != versions[ev.EngagementID] {
			t.Errorf("after restart %d: event %s of %s has version %d, want %d",
				cycle, ev.ID, ev.EngagementID, ev.Version, versions[ev.EngagementID])
		}
		if ev.Type == domain.EngagementRecorded {
			recorded[ev.EngagementID] = ev
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	lost := 0
	for key, a := range c.acked {
		got, ok := byID[a.eventID]
		if a.action == "create" {
			got, ok = recorded[a.engagementID]
		}
		if !ok {
			lost++
			c.lost++
			if a.action == "create" {
				c.lostCreates++
			}
			delete(c.acked, key)
			if c.sync == string(eventstore.SyncAlways) {
				t.Errorf("after restart %d: acknowledged %s %s (sequence %d) is missing", cycle, a.action, key, a.sequence)
			}
			continue
		}
		if got.EngagementID != a.engagementID || got.Sequence != a.sequence || got.Version != a.version ||
			(got.marker() != "" && got.marker() != key) {
			t.Errorf("after restart %d: acknowledged %s %s as %s seq %d v%d, stored as %s seq %d v%d (%s)",
				cycle, a.action, key, a.engagementID, a.sequence, a.version, got.EngagementID, got.Sequence, got.Version, got.marker())
		}
	}
	if lost > 0 {
		c.engagements = c.engagements[:0]
		for id := range recorded {
			c.engagements = append(c.engagements, id)
		}
		t.Logf("after restart %d: %d acknowledged writes lost (sync %s)", cycle, lost, c.sync)
	}
}

// servedEngagement is what GET /v1/engagements/{id} answered.
type servedEngagement struct {
	domain.View
	etag    string
	history []logEvent
}

// served reads every engagement and its history from p.
func (c *crashRun) served(p *serveProcess) map[string]servedEngagement {
	t := c.t
	out := make(map[string]servedEngagement)
	cursor := ""
	for {
		var page struct {
			Items      []domain.View `json:"items"`
			NextCursor *string       `json:"next_cursor"`
		}
		p.getJSON("/v1/engagements?limit=1000"+cursor, &page)
		for _, e := range page.Items {
			var s servedEngagement
			s.etag = p.getJSON("/v1/engagements/"+e.ID, &s.View).Get("ETag")
			var h struct {
				Events []logEvent `json:"events"`
			}
			p.getJSON("/v1/engagements/"+e.ID+"/history", &h)
			s.history = h.Events
			if len(s.history) != s.Version || s.etag != strconv.Quote(strconv.Itoa(s.Version)) {
				t.Errorf("engagement %s: version %d, ETag %s, %d events in history", e.ID, s.Version, s.etag, len(s.history))
			}
			out[e.ID] = s
		}
		if page.NextCursor == nil {
			return out
		}
		cursor = "&cursor=" + url.QueryEscape(*page.NextCursor)
	}
}

// compareWithRebuild opens the stopped process's data read-only, folds the
// whole stream into fresh projections and compares them with what was
// served; it also verifies the stream. It returns the number of events.
func (c *crashRun) compareWithRebuild(served map[string]servedEngagement) uint64 {
	t := c.t
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: c.dir, ReadOnly: true})
	if err != nil {
		t.Fatalf("open the data read-only: %v", err)
	}
	defer store.Close()
	st, _, err := Rebuild(ctx, store, func(uint64) {})
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if st.Rejected != 0 || st.Undecodable != 0 || st.Engagements != len(served) {
		t.Errorf("rebuild: %+v; served %d engagements", st, len(served))
	}
	// Rebuild keeps its projections to itself; fold once more to compare
	// each engagement.
	p := projections.New(nil)
	p.UseReader(store)
	for m, err := range store.Read(ctx, 0, domain.Filter{}) {
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		p.Handle(m.Sequence, m.Event, m.Err)
	}
	servedEvents := uint64(0)
	now := time.Now()
	for id, s := range served {
		servedEvents += uint64(len(s.history))
		e, err := p.Get(ctx, id, domain.Window{})
		if err != nil {
			t.Errorf("engagement %s served but not in the rebuild", id)
			continue
		}
		if e.StatusAt(now) != s.Status || e.Version() != s.Version || e.Title() != s.Title ||
			e.Sequence() != s.Sequence || e.Hash() != s.Hash {
			t.Errorf("engagement %s: served %s v%d %q seq %d, rebuilt %s v%d %q seq %d",
				id, s.Status, s.Version, s.Title, s.Sequence, e.StatusAt(now), e.Version(), e.Title(), e.Sequence())
		}
		h, err := p.History(ctx, id, domain.Window{})
		if err != nil {
			t.Errorf("engagement %s: rebuilt history: %v", id, err)
		}
		for i := range min(len(h), len(s.history)) {
			if h[i].ID != s.history[i].ID || h[i].Sequence != s.history[i].Sequence {
				t.Errorf("engagement %s: history[%d] served %s@%d, rebuilt %s@%d",
					id, i, s.history[i].ID, s.history[i].Sequence, h[i].ID, h[i].Sequence)
			}
		}
	}
	if st.Events != servedEvents {
		t.Errorf("rebuild folded %d events, served histories hold %d", st.Events, servedEvents)
	}
	rep, err := store.Verify(ctx, nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !rep.OK || rep.Events != st.Events {
		t.Errorf("verify: ok=%v events=%d (rebuild %d), problems %v", rep.OK, rep.Events, st.Events, rep.Problems)
	}
	return st.Events
}

// logEvent is an event as GET /v1/events and history show it.
type logEvent struct {
	ID           string           `json:"id"`
	Type         domain.EventType `json:"type"`
	EngagementID string           `json:"engagement_id"`
	Version      int              `json:"version"`
	Sequence     uint64           `json:"sequence"`
	Data         struct {
		Title string `json:"title"`
		Note  string `json:"note"`
	} `json:"data"`
}

// marker is the Idempotency-Key the test put in the event's data, if any.
func (e logEvent) marker() string {
	switch e.Type {
	case domain.EngagementRecorded:
		return strings.TrimPrefix(e.Data.Title, "Crash MOU ")
	case domain.EngagementNoted:
		return strings.TrimPrefix(e.Data.Note, "note ")
	}
	return ""
}

// serveProcess is the test binary running `engagements serve` on its own.
type serveProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	dir    string
	logf   string
	client *http.Client
	exited chan struct{} // closed once cmd.Wait returned
	err    error         // cmd.Wait's result

	mu    sync.Mutex
	token string
}

// start starts serve on c.dir and waits until it is ready.
func (c *crashRun) start() *serveProcess {
	t := c.t
	begin := time.Now()
	c.processes++
	logf := filepath.Join(c.logs, fmt.Sprintf("serve-%d.log", c.processes))
	stderr, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command(os.Args[0], "serve", "--data", c.dir, "--http", "127.0.0.1:0", "--sync", c.sync)
	// The writers share one token; a per-token rate limit would only slow
	// them down. The variable is ignored where serve has no such flag.
	cmd.Env = append(os.Environ(), "ENGAGEMENTS_TEST_EXEC=1", "ENGAGEMENTS_RATE_LIMIT=0")
	cmd.Stderr = stderr
	line := &firstLine{ch: make(chan string, 1)}
	cmd.Stdout = line
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{t: t, cmd: cmd, dir: c.dir, logf: logf, exited: make(chan struct{}),
		client: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * c.writers}}}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		p.client.CloseIdleConnections()
	})
	select {
	case l := <-line.ch:
		u, ok := strings.CutPrefix(strings.TrimSpace(l), "engagements: serving on ")
		if !ok {
			t.Fatalf("start %d: unexpected first line %q", c.processes, l)
		}
		p.url = u
	case <-p.exited:
		t.Fatalf("start %d: exited (%v) before serving; log:\n%s", c.processes, p.err, p.logTail())
	case <-time.After(60 * time.Second):
		t.Fatalf("start %d: no serving line in 60s; log:\n%s", c.processes, p.logTail())
	}
	c.lastStream = p.ready()
	p.loadToken()
	if c.processes > 1 {
		t.Logf("restart %d: ready in %s at sequence %d", c.processes-1, time.Since(begin).Round(time.Millisecond), c.lastStream)
	}
	return p
}

// ready waits for /readyz and returns the stream's last sequence.
func (p *serveProcess) ready() uint64 {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := p.client.Get(p.url + "/readyz")
		if err == nil {
			var r struct {
				Stream uint64 `json:"stream"`
			}
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && err == nil {
				return r.Stream
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("not ready in 60s: %v; log:\n%s", err, p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadToken reads the admin token that serve writes on first start, if
// there is one (without authentication there is none).
func (p *serveProcess) loadToken() {
	b, err := os.ReadFile(filepath.Join(p.dir, "admin.token"))
	if err != nil {
		return
	}
	p.mu.Lock()
	p.token = strings.TrimSpace(string(b))
	p.mu.Unlock()
}

// do sends a request with the admin token; on 401 it rereads the token
// file (serve may write it just after its first line) and tries again.
func (p *serveProcess) do(method, path, body string, headers ...string) (int, http.Header, []byte, error) {
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, p.url+path, rd)
		if err != nil {
			return 0, nil, nil, err
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		p.mu.Lock()
		if p.token != "" {
			req.Header.Set("Authorization", "Bearer "+p.token)
		}
		p.mu.Unlock()
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, nil, nil, err // the answer was cut off: no answer
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt < 50 {
			time.Sleep(20 * time.Millisecond)
			p.loadToken()
			continue
		}
		return resp.StatusCode, resp.Header, b, nil
	}
}

func (p *serveProcess) post(path, body string, headers ...string) (int, []byte, error) {
	status, _, b, err := p.do(http.MethodPost, path, body, headers...)
	return status, b, err
}

// getJSON GETs path, which must answer 200, into v and returns the headers.
func (p *serveProcess) getJSON(path string, v any) http.Header {
	p.t.Helper()
	status, h, b, err := p.do(http.MethodGet, path, "")
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	if status != http.StatusOK {
		p.t.Fatalf("GET %s: %d %s", path, status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	return h
}

// log pages through GET /v1/events.
func (p *serveProcess) log() []logEvent {
	var all []logEvent
	after := uint64(0)
	for {
		var page struct {
			Events    []logEvent `json:"events"`
			NextAfter uint64     `json:"next_after"`
		}
		p.getJSON(fmt.Sprintf("/v1/events?limit=1000&after=%d", after), &page)
		if len(page.Events) == 0 {
			return all
		}
		all = append(all, page.Events...)
		after = page.NextAfter
	}
}

// stop sends SIGTERM and returns the exit error (nil: exit 0).
func (p *serveProcess) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		return errors.New("still running 60s after SIGTERM")
	}
	p.client.CloseIdleConnections()
	return p.err
}

// logTail is the end of the process's stderr, for failure messages.
func (p *serveProcess) logTail() string {
	b, _ := os.ReadFile(p.logf)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// firstLine hands the first line written to it to ch and discards the rest.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	sent bool
	ch   chan string
}

func (w *firstLine) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.sent {
		w.buf = append(w.buf, b...)
		if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
			w.sent = true
			w.ch <- string(w.buf[:i])
		}
	}
	return len(b), nil
}
