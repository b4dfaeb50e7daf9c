package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iom-who/engagements/reminders"
	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// reminderDay is a day of the reminder tests: short, so that an agreement
// expiring in three days expires a few seconds ahead, long enough for the
// requests that race it.
const reminderDay = 2 * time.Second

// hookEvent is one webhook delivery, as the receiver saw it.
type hookEvent struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Subject string         `json:"subject"`
	Actor   string         `json:"actor"`
	Data    map[string]any `json:"data"`
}

// hookReceiver is a webhook endpoint that verifies each delivery's
// signature and keeps the CloudEvents it was sent.
type hookReceiver struct {
	srv     *httptest.Server
	secret  string
	mu      sync.Mutex
	evs     []hookEvent
	errs    []string
	changed chan struct{}
}

// readHook reads a delivery: its signature verified with wh, its body
// decoded.
func readHook(wh *standardwebhooks.Webhook, r *http.Request) (hookEvent, error) {
	var ev hookEvent
	b, err := io.ReadAll(r.Body)
	if err == nil {
		err = wh.Verify(b, r.Header)
	}
	if err == nil {
		err = json.Unmarshal(b, &ev)
	}
	return ev, err
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", changed: make(chan struct{}, 1)}
	wh := standardWebhook(t, h.secret)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := readHook(wh, r)
		h.mu.Lock()
		if err != nil {
			h.errs = append(h.errs, err.Error())
		} else {
			h.evs = append(h.evs, ev)
		}
		h.mu.Unlock()
		select {
		case h.changed <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// subscribe subscribes the receiver to every event of the service at url.
func (h *hookReceiver) subscribe(t *testing.T, url string) {
	t.Helper()
	code, body := postJSON(t, url+"/v1/subscriptions", fmt.Sprintf(
		`{"url":%q,"types":["engagement.*","agreement.*","meeting.*"],"secret":%q}`, h.srv.URL+"/hook", h.secret))
	if code != http.StatusCreated {
		t.Fatalf("subscribe: %d %v", code, body)
	}
}

// of returns the events delivered of engagement id, as "type" or
// "type:days_left" for the reminders with days left. An event delivered
// twice (webhooks deliver at least once) counts once: what is counted is
// what was recorded.
func (h *hookReceiver) of(id string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, ev := range h.evs {
		if ev.Subject != id || seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		s := ev.Type
		if d, ok := ev.Data["days_left"]; ok {
			s += fmt.Sprintf(":%v", d)
		}
		if ev.Data["deadline"] == "notice" {
			s += ":notice"
		}
		if strings.HasPrefix(ev.Type, "agreement.expir") && ev.Actor != "system" {
			s += "(actor " + ev.Actor + ")"
		}
		out = append(out, s)
	}
	return out
}

// waitFor waits until cond holds of what was delivered (bounded).
func (h *hookReceiver) waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(limit)
	for !cond() {
		select {
		case <-h.changed:
		case <-deadline:
			t.Fatalf("after %v: %s has not happened", limit, what)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.errs {
		t.Errorf("a webhook delivery did not verify: %s", e)
	}
}

// startReminderMain starts Main with short reminder days from origin and
// offsets 2 and 1 days.
func startReminderMain(t *testing.T, dir string, origin time.Time) *Main {
	t.Helper()
	m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: dir, Sync: "always", Replicas: 1,
		Reminders: reminders.Config{Offsets: []int{2, 1}, Day: reminderDay, Origin: origin}}}
	if os.Getenv("REMINDER_DEBUG") != "" {
		m.Config.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	readToken(t, dir)
	return m
}

// signedAgreement records an agreement signed to expire on expires.
func signedAgreement(t *testing.T, url, title, signed, expires string) string {
	t.Helper()
	code, created := postJSON(t, url+"/v1/engagements", fmt.Sprintf(`{"kind":"agreement","title":%q,"parties":["IOM","WHO"]}`, title))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, created)
	}
	id := created["id"].(string)
	if code, body := postJSON(t, url+"/v1/engagements/"+id+"/events",
		fmt.Sprintf(`{"type":"agreement.signed","data":{"signed_on":%q,"expires_on":%q}}`, signed, expires)); code != http.StatusCreated {
		t.Fatalf("sign: %d %v", code, body)
	}
	return id
}

// day is the date n days after the origin's (UTC).
func day(origin time.Time, n int) string { return origin.UTC().AddDate(0, 0, n).Format("2006-01-02") }

// shortToday is how many short days have passed since origin, as the
// service counts them (from origin's whole second).
func shortToday(origin time.Time) int {
	return int(time.Since(origin.Truncate(time.Second)) / reminderDay)
}

// TestRemindersReachAWebhook: an agreement expiring three (short) days
// ahead is reminded two days and one day before, and expires, each exactly
// once, at a webhook receiver, recorded by actor system; one renewed
// before its expiry is reminded but never expires; the status follows.
func TestRemindersReachAWebhook(t *testing.T) {
	dir := t.TempDir()
	origin := time.Now()
	m := startReminderMain(t, dir, origin)
	defer m.Close()
	hook := newHookReceiver(t)
	hook.subscribe(t, m.URL())

	expiring := signedAgreement(t, m.URL(), "Expiring MOU", day(origin, -30), day(origin, 3))
	renewed := signedAgreement(t, m.URL(), "Renewed MOU", day(origin, -30), day(origin, 3))
	terminated := signedAgreement(t, m.URL(), "Terminated MOU", day(origin, -30), day(origin, 3))
	// One whose expiry is corrected to a later date before any reminder.
	corrected := signedAgreement(t, m.URL(), "Corrected MOU", day(origin, -30), day(origin, 3))
	var ch history
	getJSON(t, m.URL()+"/v1/engagements/"+corrected+"/history", &ch)
	var signedID string
	for _, ev := range ch.Events {
		if ev.Type == "agreement.signed" {
			signedID = ev.ID
		}
	}
	if code, body := postJSON(t, m.URL()+"/v1/engagements/"+corrected+"/events", fmt.Sprintf(
		`{"type":"engagement.corrected","data":{"corrects":%q,"reason":"the expiry was mistyped","fields":{"expires_on":%q}}}`,
		signedID, day(origin, 500))); code != http.StatusCreated {
		t.Fatalf("correct: %d %v", code, body)
	}

	// Renewed before its expiry (after the first reminder, so it is seen
	// to be reminded of its old expiry first).
	hook.waitFor(t, 20*time.Second, "the renewed agreement's first reminder", func() bool {
		return strings.Contains(strings.Join(hook.of(renewed), " "), "agreement.expiring:2")
	})
	if code, body := postJSON(t, m.URL()+"/v1/engagements/"+renewed+"/events",
		fmt.Sprintf(`{"type":"agreement.renewed","data":{"renewed_on":%q,"expires_on":%q}}`, day(origin, 0), day(origin, 400))); code != http.StatusCreated {
		t.Fatalf("renew: %d %v", code, body)
	}
	hook.waitFor(t, 20*time.Second, "the terminated agreement's first reminder", func() bool {
		return strings.Contains(strings.Join(hook.of(terminated), " "), "agreement.expiring:2")
	})
	if code, body := postJSON(t, m.URL()+"/v1/engagements/"+terminated+"/events",
		`{"type":"agreement.terminated","data":{"reason":"superseded"}}`); code != http.StatusCreated {
		t.Fatalf("terminate: %d %v", code, body)
	}

	hook.waitFor(t, 30*time.Second, "the expiry", func() bool {
		return strings.Contains(strings.Join(hook.of(expiring), " "), "agreement.expired")
	})
	// The renewed agreement's expired would have fired with the other's:
	// what it got by then is all it gets.
	want := "engagement.recorded agreement.signed agreement.expiring:2 agreement.expiring:1 agreement.expired"
	if got := strings.Join(hook.of(expiring), " "); got != want {
		t.Errorf("expiring agreement's deliveries:\n got %s\nwant %s", got, want)
	}
	if got, want := strings.Join(hook.of(renewed), " "), "engagement.recorded agreement.signed agreement.expiring:2 agreement.renewed"; got != want {
		t.Errorf("renewed agreement's deliveries:\n got %s\nwant %s", got, want)
	}
	if got, want := strings.Join(hook.of(corrected), " "), "engagement.recorded agreement.signed engagement.corrected"; got != want {
		t.Errorf("corrected agreement's deliveries:\n got %s\nwant %s", got, want)
	}
	if got, want := strings.Join(hook.of(terminated), " "), "engagement.recorded agreement.signed agreement.expiring:2 agreement.terminated"; got != want {
		t.Errorf("terminated agreement's deliveries:\n got %s\nwant %s", got, want)
	}
	// Its schedules were cancelled (purged), not merely left to refuse.
	info, err := m.Store.JetStream().Stream(context.Background(), reminders.Stream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := info.Info(context.Background(), jetstream.WithSubjectFilter("engagements-reminders.schedule."+terminated+".>"))
	if err != nil {
		t.Fatal(err)
	}
	if len(si.State.Subjects) != 0 {
		t.Errorf("the terminated agreement still has schedules: %v", si.State.Subjects)
	}
	var e struct{ Status string }
	// The webhook may have it before this instance's projection does.
	waitUntil(t, 10*time.Second, "the status expired", func() bool {
		getJSON(t, m.URL()+"/v1/engagements/"+expiring, &e)
		return e.Status == "expired"
	})
	getJSON(t, m.URL()+"/v1/engagements/"+renewed, &e)
	if e.Status != "active" {
		t.Errorf("renewed agreement's status = %q, want active", e.Status)
	}
	var h history
	getJSON(t, m.URL()+"/v1/engagements/"+expiring+"/history", &h)
	for _, ev := range h.Events {
		if strings.HasPrefix(ev.Type, "agreement.expir") && ev.Actor != "system" {
			t.Errorf("%s recorded by %q, want system", ev.Type, ev.Actor)
		}
	}
}

// TestPastDeadlineRecordedOnceAcrossRestarts: an agreement whose expiry
// passed before the reminders started (recorded while they were off) gets
// agreement.expired once at start, the reminder days before it none (the
// expiry supersedes them), and a restart records nothing again.
func TestPastDeadlineRecordedOnceAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	origin := time.Now()
	m := startReminderMain(t, dir, origin)
	hook := newHookReceiver(t)
	hook.subscribe(t, m.URL())
	past := signedAgreement(t, m.URL(), "Lapsed MOU", "2019-01-01", "2020-12-31")
	// A sentinel that expires later than the lapsed one's reminders could
	// come: once it has expired, whatever the lapsed one was to get it got.
	sentinel := signedAgreement(t, m.URL(), "Sentinel MOU", day(origin, -30), day(origin, 1))
	hook.waitFor(t, 30*time.Second, "the sentinel's expiry", func() bool {
		return strings.Contains(strings.Join(hook.of(sentinel), " "), "agreement.expired")
	})
	want := "engagement.recorded agreement.signed agreement.expired"
	if got := strings.Join(hook.of(past), " "); got != want {
		t.Errorf("lapsed agreement's deliveries:\n got %s\nwant %s", got, want)
	}
	last, err := m.Store.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Closed at once, whatever the consumers hold: a graceful stop hands
	// back what is in flight (TestRestartRightAfterADelivery), so nothing
	// waits for AckWait after the restart.
	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	m = startReminderMain(t, dir, origin)
	defer m.Close()
	// A new agreement expiring after another day: by its expiry the
	// restarted service has caught up and fired what it was going to.
	after := signedAgreement(t, m.URL(), "After restart MOU", day(origin, -30), day(origin, shortToday(origin)+1))
	// A bound below the webhooks' AckWait (30 s), which a delivery left
	// in flight at the close would wait for.
	hook.waitFor(t, 25*time.Second, "the expiry after the restart", func() bool {
		return strings.Contains(strings.Join(hook.of(after), " "), "agreement.expired")
	})
	var h history
	for _, id := range []string{past, sentinel} {
		h = history{}
		getJSON(t, m.URL()+"/v1/engagements/"+id+"/history", &h)
		n := 0
		for _, ev := range h.Events {
			if ev.Type == "agreement.expired" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d agreement.expired after the restart, want 1", id, n)
		}
	}
	now, err := m.Store.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The new agreement's recorded, signed, and its reminders (2 days
	// before is already past at signing: only 1 day before, then expired).
	if got := strings.Join(hook.of(after), " "); got != "engagement.recorded agreement.signed agreement.expiring:1 agreement.expired" {
		t.Errorf("after the restart: deliveries %s", got)
	}
	if now != last+4 {
		t.Errorf("the stream grew from %d to %d across the restart, want only the new agreement's 4 events", last, now)
	}
}

// TestNoticeAndActionReminders: the notice deadline is reminded of once, on
// its day, beside the expiry's reminders; an open action item's due day
// passing records engagement.action_overdue once.
func TestNoticeAndActionReminders(t *testing.T) {
	dir := t.TempDir()
	origin := time.Now()
	m := startReminderMain(t, dir, origin)
	defer m.Close()
	hook := newHookReceiver(t)
	hook.subscribe(t, m.URL())
	today := shortToday(origin)
	code, created := postJSON(t, m.URL()+"/v1/engagements", `{"kind":"agreement","title":"Noticed MOU","parties":["IOM","WHO"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, created)
	}
	id := created["id"].(string)
	for _, body := range []string{
		fmt.Sprintf(`{"type":"agreement.signed","data":{"signed_on":%q,"expires_on":%q,"notice_days":2}}`, day(origin, -30), day(origin, today+3)),
		fmt.Sprintf(`{"type":"engagement.action_assigned","data":{"action_id":"work-plan","title":"Send the work plan","owner":"IOM MHD","due_on":%q}}`, day(origin, today+1)),
	} {
		if code, resp := postJSON(t, m.URL()+"/v1/engagements/"+id+"/events", body); code != http.StatusCreated {
			t.Fatalf("%s: %d %v", body, code, resp)
		}
	}
	got := func() []string { return slices.Sorted(slices.Values(hook.of(id))) }
	hook.waitFor(t, 30*time.Second, "the overdue action and the last expiry reminder", func() bool {
		g := got()
		return slices.Contains(g, "engagement.action_overdue") && slices.Contains(g, "agreement.expiring:1")
	})
	want := []string{"agreement.expiring:1", "agreement.expiring:2", "agreement.expiring:2:notice", "agreement.signed",
		"engagement.action_assigned", "engagement.action_overdue", "engagement.recorded"}
	if g := got(); !slices.Equal(g, want) {
		t.Errorf("deliveries:\n got %v\nwant %v", g, want)
	}
}

// TestRemindersHealDeletedConsumers: an operator deletes both durable
// consumers of the reminders; they are made again, and an agreement signed
// afterwards is still reminded of and expires.
func TestRemindersHealDeletedConsumers(t *testing.T) {
	dir := t.TempDir()
	origin := time.Now()
	m := startReminderMain(t, dir, origin)
	defer m.Close()
	hook := newHookReceiver(t)
	hook.subscribe(t, m.URL())
	ctx := context.Background()
	js := m.Store.JetStream()
	if err := js.DeleteConsumer(ctx, reminders.Stream, "reminders-due"); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(ctx, "ENGAGEMENTS", "reminders"); err != nil {
		t.Fatal(err)
	}
	id := signedAgreement(t, m.URL(), "Healed MOU", day(origin, -30), day(origin, shortToday(origin)+1))
	hook.waitFor(t, 30*time.Second, "the expiry", func() bool {
		return slices.Contains(hook.of(id), "agreement.expired")
	})
	// The follower is back after a pause: by then the reminder may be
	// due on the expiry's day (0 days left), or superseded by the expiry
	// itself; the expiry comes, once.
	got := hook.of(id)
	expiring := slices.DeleteFunc(slices.Clone(got), func(s string) bool { return !strings.HasPrefix(s, "agreement.expiring") })
	if got[len(got)-1] != "agreement.expired" || len(expiring) > 1 || len(got) != 3+len(expiring) {
		t.Errorf("deliveries: %v; want recorded, signed, at most one reminder, expired", got)
	}
}

// TestRemindersOff: with --reminders off, serve makes no schedules stream
// (so nothing can fire); by default it makes one.
func TestRemindersOff(t *testing.T) {
	for _, off := range []bool{true, false} {
		dir := t.TempDir()
		m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: dir, Sync: "always", Replicas: 1, NoReminders: off}}
		if err := m.Run(context.Background()); err != nil {
			_ = m.Close()
			t.Fatalf("start (off %v): %v", off, err)
		}
		_, err := m.Store.JetStream().Stream(context.Background(), "ENGAGEMENTS_SCHEDULES")
		if off != errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("reminders off %v: the schedules stream: %v", off, err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
}

// heldReceiver is a webhook endpoint that holds its answer to the first
// delivery of an event of a given engagement until the request ends (the
// service stopping cancels it): the delivery is then in flight at the stop.
type heldReceiver struct {
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	hold   string          // the engagement whose next delivery is held
	held   chan string     // receives the held event's id
	seen   map[string]int  // deliveries by event id
	order  []string        // event ids as first answered 2xx
	answer map[string]bool // answered 2xx
}

func newHeldReceiver(t *testing.T) *heldReceiver {
	t.Helper()
	h := &heldReceiver{secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", held: make(chan string, 1),
		seen: map[string]int{}, answer: map[string]bool{}}
	wh := standardWebhook(t, h.secret)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := readHook(wh, r)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.seen[ev.ID]++
		hold := ev.Subject == h.hold && h.hold != ""
		if hold {
			h.hold = ""
		}
		h.mu.Unlock()
		if hold {
			h.held <- ev.ID
			<-r.Context().Done() // until the service stops and cancels it
			return
		}
		h.mu.Lock()
		if !h.answer[ev.ID] {
			h.answer[ev.ID] = true
			h.order = append(h.order, ev.ID)
		}
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// holdNext holds the next delivery of an event of engagement id.
func (h *heldReceiver) holdNext(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold = id
}

// answered reports whether event id was answered 2xx.
func (h *heldReceiver) answered(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.answer[id]
}

// waitFollowed waits (bounded, below the follower's AckWait of a minute)
// until the reminders' follower has acknowledged every event up to the
// stream's last: nothing it was handed before a restart waits for AckWait.
func waitFollowed(t *testing.T, m *Main, what string) {
	t.Helper()
	ctx := context.Background()
	last, err := m.Store.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := m.Store.DurableInfo(ctx, "reminders")
		if err == nil && info.Acknowledged >= last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %s: the reminders' follower has acknowledged up to %d of %d (%v)", what, info.Acknowledged, last, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the consumer's state, bounded by the deadline
	}
}

// TestRestartRightAfterADelivery: the service stops while a webhook
// delivery is in flight (the receiver has not answered) and right after
// an append the reminders follow. What the consumers were handed and had
// not settled was handed back durably: after the restart (which restarts
// the embedded server too), the held event is delivered again and the
// follower goes on, each well before its AckWait (30 s, 1 min), which is
// what a message left in flight waits for; then the next event comes, in
// order.
func TestRestartRightAfterADelivery(t *testing.T) {
	dir := t.TempDir()
	origin := time.Now()
	m := startReminderMain(t, dir, origin)
	hook := newHeldReceiver(t)
	code, body := postJSON(t, m.URL()+"/v1/subscriptions", fmt.Sprintf(
		`{"url":%q,"types":["engagement.*","agreement.*","meeting.*"],"secret":%q}`, hook.srv.URL+"/hook", hook.secret))
	if code != http.StatusCreated {
		t.Fatalf("subscribe: %d %v", code, body)
	}
	code, created := postJSON(t, m.URL()+"/v1/engagements", `{"kind":"agreement","title":"Held MOU","parties":["IOM","WHO"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, created)
	}
	id := created["id"].(string)
	var held string
	for round := range 3 {
		hook.holdNext(id)
		// An event the reminders follow (a deadline) and a webhook delivers.
		sign := fmt.Sprintf(`{"type":"agreement.renewed","data":{"renewed_on":%q,"expires_on":%q}}`, day(origin, 0), day(origin, 100+round))
		if round == 0 {
			sign = fmt.Sprintf(`{"type":"agreement.signed","data":{"signed_on":%q,"expires_on":%q}}`, day(origin, -30), day(origin, 100))
		}
		if code, resp := postJSON(t, m.URL()+"/v1/engagements/"+id+"/events", sign); code != http.StatusCreated {
			t.Fatalf("round %d: %s: %d %v", round, sign, code, resp)
		}
		select {
		case held = <-hook.held:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: no delivery to hold", round)
		}
		if err := m.Close(); err != nil { // the delivery is in flight
			t.Fatalf("round %d: close: %v", round, err)
		}
		m = startReminderMain(t, dir, origin)
		waitFollowed(t, m, fmt.Sprintf("round %d: after the restart", round))
		// Once the held event is answered, the consumer has gone on past
		// it: the next round's event comes after it.
		hook.waitForAnswer(t, held, fmt.Sprintf("round %d: the held event delivered again after the restart", round))
	}
	defer m.Close()
	code, noted := postJSON(t, m.URL()+"/v1/engagements/"+id+"/events", `{"type":"engagement.noted","data":{"note":"after the restarts"}}`)
	if code != http.StatusCreated {
		t.Fatalf("note: %d %v", code, noted)
	}
	next := noted["id"].(string)
	hook.waitForAnswer(t, next, "the event after the restarts")
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if n := hook.seen[held]; n < 2 {
		t.Errorf("the last held event was delivered %d times, want at least 2 (held, then again)", n)
	}
	if hook.order[len(hook.order)-1] != next || hook.order[len(hook.order)-2] != held {
		t.Errorf("answered order ends %v, want the last held %s, then %s", hook.order[max(len(hook.order)-3, 0):], held, next)
	}
}

// waitForAnswer waits (bounded) until event id was answered 2xx. The bound
// is below the webhooks' AckWait (30 s), which is what a message left in
// flight at a stop would wait for.
func (h *heldReceiver) waitForAnswer(t *testing.T, id, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !h.answered(id) {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %s (%s) has not happened", what, id)
		}
		time.Sleep(20 * time.Millisecond) // polling the receiver's record, bounded by the deadline
	}
}

// TestRemindersFirstPassFromTheProjection: a store written with reminders
// off has agreements with deadlines; the first start with reminders
// schedules them from the projection (no replay of the stream: the
// follower starts after the last event), and each reminder is recorded
// once: a lapsed agreement's expiry (catch-up), a coming one's reminders
// and expiry, none for one renewed (its expiry moved) before the start.
func TestRemindersFirstPassFromTheProjection(t *testing.T) {
	dir := t.TempDir()
	origin := time.Now()
	off := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: dir, Sync: "always", Replicas: 1, NoReminders: true}}
	if err := off.Run(context.Background()); err != nil {
		_ = off.Close()
		t.Fatal(err)
	}
	readToken(t, dir)
	hook := newHookReceiver(t)
	hook.subscribe(t, off.URL())
	past := signedAgreement(t, off.URL(), "Lapsed MOU", "2019-01-01", "2020-12-31")
	coming := signedAgreement(t, off.URL(), "Coming MOU", day(origin, -30), day(origin, 4))
	renewed := signedAgreement(t, off.URL(), "Renewed MOU", day(origin, -30), day(origin, 2))
	if code, resp := postJSON(t, off.URL()+"/v1/engagements/"+renewed+"/events", fmt.Sprintf(
		`{"type":"agreement.renewed","data":{"renewed_on":%q,"expires_on":%q}}`, day(origin, 0), day(origin, 60))); code != http.StatusCreated {
		t.Fatalf("renew: %d %v", code, resp)
	}
	last, err := off.Store.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := off.Close(); err != nil {
		t.Fatal(err)
	}

	m := startReminderMain(t, dir, origin)
	defer m.Close()
	hook.waitFor(t, 30*time.Second, "the coming agreement's expiry", func() bool {
		return slices.Contains(hook.of(coming), "agreement.expired")
	})
	cons, err := m.Store.JetStream().Consumer(context.Background(), "ENGAGEMENTS", "reminders")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := cons.CachedInfo().Config; cfg.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || cfg.OptStartSeq <= last {
		t.Errorf("the follower starts with %v at %d; want after the last event before the start, %d", cfg.DeliverPolicy, cfg.OptStartSeq, last)
	}
	count := func(id, typ string) int {
		n := 0
		for _, s := range hook.of(id) {
			if s == typ {
				n++
			}
		}
		return n
	}
	if got := hook.of(past); count(past, "agreement.expired") != 1 || len(got) != 3 {
		t.Errorf("lapsed agreement: %v; want recorded, signed, expired once", got)
	}
	// The coming one: expired once, the 1-day reminder once; the 2-day one
	// once, or not at all should the start have come after its day.
	if got := hook.of(coming); count(coming, "agreement.expired") != 1 || count(coming, "agreement.expiring:1") != 1 ||
		count(coming, "agreement.expiring:2") > 1 || got[len(got)-1] != "agreement.expired" {
		t.Errorf("coming agreement: %v; want its reminders and expiry once each", got)
	}
	for _, s := range hook.of(renewed) {
		if strings.HasPrefix(s, "agreement.expir") {
			t.Errorf("renewed agreement: %v; want no reminder (its expiry is 60 days ahead)", hook.of(renewed))
			break
		}
	}
}
