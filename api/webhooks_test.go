package api_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/webhooks"
)

// webhookServer is the API with tokens and webhooks on, as serve runs it,
// with quick retries.
type webhookServer struct {
	*authServer
	hooks *webhooks.Manager
}

const webhookAttempts = 2

func newWebhookServer(t *testing.T) *webhookServer {
	t.Helper()
	b := buildServer(t, setup{tokens: true, webhooks: &webhooks.Config{MaxAttempts: webhookAttempts,
		BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond}})
	return &webhookServer{
		authServer: &authServer{testServer: b.testServer, tokens: b.tokens, admin: b.admin},
		hooks:      b.hooks,
	}
}

// hookReceiver is a subscriber's endpoint answering status; it passes on
// each request's webhook-id and body.
type hookReceiver struct {
	*httptest.Server
	got    chan hookDelivery
	status atomic.Int64 // what it answers; tests may change it
}

type hookDelivery struct {
	id   string
	body []byte
}

func newHookReceiver(t *testing.T, status int) *hookReceiver {
	t.Helper()
	r := &hookReceiver{got: make(chan hookDelivery, 100)}
	r.status.Store(int64(status))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.got <- hookDelivery{id: req.Header.Get("webhook-id"), body: body}
		w.WriteHeader(int(r.status.Load()))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) next(t *testing.T) hookDelivery {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook delivery arrived")
		return hookDelivery{}
	}
}

func whsec(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// subscription is a subscription as the API shows it, with whatever else
// the body holds.
type subscription struct {
	ID           string    `json:"id"`
	Owner        string    `json:"owner"`
	URL          string    `json:"url"`
	Types        []string  `json:"types"`
	FromSequence uint64    `json:"from_sequence"`
	SecretSet    bool      `json:"secret_set"`
	CreatedAt    time.Time `json:"created_at"`
}

// subscribe creates a subscription through the API; anything but 201 fails.
func (ws *webhookServer) subscribe(t *testing.T, token, url string, types ...string) subscription {
	t.Helper()
	if len(types) == 0 {
		types = []string{"engagement.*"}
	}
	tj, _ := json.Marshal(types)
	secret := whsec(t)
	r := ws.post(t, "/v1/subscriptions", fmt.Sprintf(`{"url":%q,"types":%s,"secret":%q}`, url, tj, secret), bearer(token)...)
	if r.status != http.StatusCreated {
		t.Fatalf("create subscription: %s", r)
	}
	if strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), strings.TrimPrefix(secret, "whsec_")) {
		t.Errorf("the answer echoes the secret: %s", r.body)
	}
	sub := decode[subscription](t, r)
	if r.header.Get("Location") != "/v1/subscriptions/"+sub.ID {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	return sub
}

func TestSubscriptionsBelongToTheirOwner(t *testing.T) {
	ws := newWebhookServer(t)
	crm := ws.mint(t, "crm-sync", domain.RoleSubscriber)
	bi := ws.mint(t, "bi-feed", domain.RoleSubscriber)
	coordinator := ws.mint(t, "maria", domain.RoleCoordinator)
	auditor := ws.mint(t, "audit-office", domain.RoleAuditor)
	rcv := newHookReceiver(t, http.StatusOK)

	mine := ws.subscribe(t, crm, rcv.URL+"/crm", "agreement.*", "engagement.recorded")
	if mine.Owner != "crm-sync" || !mine.SecretSet || domain.CheckID(mine.ID) != nil ||
		mine.URL != rcv.URL+"/crm" || len(mine.Types) != 2 || mine.FromSequence != 1 || mine.CreatedAt.IsZero() {
		t.Errorf("created %+v", mine)
	}
	theirs := ws.subscribe(t, bi, rcv.URL+"/bi")
	id := decode[struct{ ID string }](t, ws.post(t, "/v1/engagements", agreement("MOU"), bearer(coordinator)...)).ID

	list := func(token string) []string {
		t.Helper()
		r := ws.get(t, "/v1/subscriptions", bearer(token)...)
		if r.status != http.StatusOK {
			t.Fatalf("list: %s", r)
		}
		var ids []string
		for _, s := range decode[struct{ Items []subscription }](t, r).Items {
			ids = append(ids, s.ID)
		}
		return ids
	}
	if got := list(crm); len(got) != 1 || got[0] != mine.ID {
		t.Errorf("crm-sync lists %v, want only its own %s", got, mine.ID)
	}
	if got := list(ws.admin); len(got) != 2 || got[0] != mine.ID || got[1] != theirs.ID {
		t.Errorf("admin lists %v, want both in creation order", got)
	}
	sub := "/v1/subscriptions/"
	tests := []struct {
		name         string
		method, path string
		body         string
		token        string
		status       int
	}{
		{"subscriber reads its own", "GET", sub + mine.ID, "", crm, 200},
		{"subscriber reads its own failures", "GET", sub + mine.ID + "/failures", "", crm, 200},
		{"subscriber cannot see another's → 404", "GET", sub + theirs.ID, "", crm, 404},
		{"subscriber cannot see another's failures → 404", "GET", sub + theirs.ID + "/failures", "", crm, 404},
		{"subscriber cannot delete another's → 404", "DELETE", sub + theirs.ID, "", crm, 404},
		{"admin reads anyone's", "GET", sub + theirs.ID, "", ws.admin, 200},
		{"unknown subscription → 404", "GET", sub + newID(), "", crm, 404},
		{"not a UUID → 400", "GET", sub + "nope", "", crm, 400},
		{"subscriber cannot write events → 403", "POST", "/v1/engagements/" + id + "/events", note("n"), crm, 403},
		{"subscriber cannot record engagements → 403", "POST", "/v1/engagements", agreement("x"), crm, 403},
		{"coordinator cannot subscribe → 403", "POST", "/v1/subscriptions", `{}`, coordinator, 403},
		{"auditor cannot list subscriptions → 403", "GET", "/v1/subscriptions", "", auditor, 403},
		{"no token → 401", "GET", "/v1/subscriptions", "", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.token != "" {
				h = bearer(tt.token)
			}
			r := ws.request(t, tt.method, tt.path, tt.body, h...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status >= 400 && mediaType(r.header) != "application/problem+json" {
				t.Errorf("content type %q", r.header.Get("Content-Type"))
			}
			if tt.status == 200 && strings.Contains(string(r.body), "whsec_") {
				t.Errorf("the answer shows a secret: %s", r.body)
			}
		})
	}

	// Both got the engagement.recorded event, after they subscribed.
	for range 2 {
		d := rcv.next(t)
		var ce struct{ Type, Subject string }
		if err := json.Unmarshal(d.body, &ce); err != nil || ce.Type != "engagement.recorded" || ce.Subject != id {
			t.Errorf("delivered %s", d.body)
		}
	}

	if r := ws.request(t, "DELETE", sub+mine.ID, "", bearer(crm)...); r.status != http.StatusNoContent {
		t.Fatalf("delete own: %s", r)
	}
	if r := ws.get(t, sub+mine.ID, bearer(crm)...); r.status != http.StatusNotFound {
		t.Errorf("after delete: %s", r)
	}
	if got := list(crm); len(got) != 0 {
		t.Errorf("crm-sync still lists %v", got)
	}
	if got := list(ws.admin); len(got) != 1 || got[0] != theirs.ID {
		t.Errorf("admin lists %v after the delete", got)
	}
}

func TestSubscriptionRequestsAreChecked(t *testing.T) {
	ws := newWebhookServer(t)
	crm := ws.mint(t, "crm-sync", domain.RoleSubscriber)
	secret := whsec(t)
	body := func(url, types, extra string) string {
		return fmt.Sprintf(`{"url":%q,"types":%s,"secret":%q%s}`, url, types, secret, extra)
	}
	ok := "http://127.0.0.1:9/hook"
	tests := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"ftp URL → 422", body("ftp://example.org/x", `["agreement.*"]`, ""), 422, "url"},
		{"javascript URL → 422", body("javascript:alert(1)", `["agreement.*"]`, ""), 422, "url"},
		{"metadata address 169.254.169.254 → 422", body("http://169.254.169.254/latest/meta-data/", `["agreement.*"]`, ""), 422, "url"},
		{"IPv6 link-local → 422", body("http://[fe80::a9fe:a9fe]/", `["agreement.*"]`, ""), 422, "url"},
		{"URL too long → 422", body(ok+strings.Repeat("a", 2048), `["agreement.*"]`, ""), 422, "url"},
		{"no types → 422", body(ok, `[]`, ""), 422, "types"},
		{"unknown type → 422", body(ok, `["agreement.burned"]`, ""), 422, "types"},
		{"unknown prefix → 422", body(ok, `["treaty.*"]`, ""), 422, "types"},
		{"weak secret → 422", fmt.Sprintf(`{"url":%q,"types":["agreement.*"],"secret":"whsec_c2hvcnQ="}`, ok), 422, "secret"},
		{"from_sequence 0 → 422", body(ok, `["agreement.*"]`, `,"from_sequence":0`), 422, "from_sequence"},
		{"from_sequence -1 → 422", body(ok, `["agreement.*"]`, `,"from_sequence":-1`), 422, "from_sequence"},
		{"from_sequence 1.5 → 422", body(ok, `["agreement.*"]`, `,"from_sequence":1.5`), 422, "from_sequence"},
		{"from_sequence beyond the stream → 422", body(ok, `["agreement.*"]`, `,"from_sequence":1000`), 422, "from_sequence"},
		{"from_sequence as a string → 400", body(ok, `["agreement.*"]`, `,"from_sequence":"1"`), 400, "from_sequence"},
		{"types not a list → 400", body(ok, `"agreement.*"`, ""), 400, "types"},
		{"types of numbers → 400", body(ok, `[1]`, ""), 400, "types"},
		{"url not a string → 400", fmt.Sprintf(`{"url":1,"types":["agreement.*"],"secret":%q}`, secret), 400, "url"},
		{"unknown field → 400", body(ok, `["agreement.*"]`, `,"owner":"someone-else"`), 400, "owner"},
		{"missing url → 422", fmt.Sprintf(`{"types":["agreement.*"],"secret":%q}`, secret), 422, "url"},
		{"missing secret → 422", fmt.Sprintf(`{"url":%q,"types":["agreement.*"]}`, ok), 422, "secret"},
		{"missing types → 422", fmt.Sprintf(`{"url":%q,"secret":%q}`, ok, secret), 422, "types"},
		{"not JSON → 400", `{"url":`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ws.post(t, "/v1/subscriptions", tt.body, bearer(crm)...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if mediaType(r.header) != "application/problem+json" {
				t.Errorf("content type %q", r.header.Get("Content-Type"))
			}
			if tt.field != "" && !strings.Contains(string(r.body), `"field":"`+tt.field+`"`) {
				t.Errorf("problem does not name %s: %s", tt.field, r.body)
			}
			if strings.Contains(string(r.body), secret) {
				t.Errorf("the problem repeats the secret: %s", r.body)
			}
		})
	}
	if r := ws.get(t, "/v1/subscriptions", bearer(crm)...); strings.Contains(string(r.body), `"id"`) {
		t.Errorf("refused requests stored a subscription: %s", r.body)
	}
}

func TestFailedDeliveriesAreListed(t *testing.T) {
	ws := newWebhookServer(t)
	crm := ws.mint(t, "crm-sync", domain.RoleSubscriber)
	coordinator := ws.mint(t, "maria", domain.RoleCoordinator)
	down := newHookReceiver(t, http.StatusBadGateway)
	sub := ws.subscribe(t, crm, down.URL)
	id := decode[struct{ ID string }](t, ws.post(t, "/v1/engagements", agreement("MOU"), bearer(coordinator)...)).ID
	h := decode[struct{ Events []event }](t, ws.get(t, "/v1/engagements/"+id+"/history", bearer(coordinator)...)).Events

	type failure struct {
		Sequence   uint64    `json:"sequence"`
		EventID    string    `json:"event_id"`
		Type       string    `json:"type"`
		Attempts   int       `json:"attempts"`
		LastStatus int       `json:"last_status"`
		LastError  string    `json:"last_error"`
		FailedAt   time.Time `json:"failed_at"`
	}
	var got []failure
	for i := 0; ; i++ {
		r := ws.get(t, "/v1/subscriptions/"+sub.ID+"/failures", bearer(crm)...)
		if r.status != http.StatusOK {
			t.Fatalf("failures: %s", r)
		}
		if got = decode[struct{ Items []failure }](t, r).Items; len(got) > 0 {
			break
		}
		if i == 1000 {
			t.Fatal("no failure listed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f := got[0]
	if len(got) != 1 || f.Sequence != h[0].Sequence || f.EventID != h[0].ID || f.Type != "engagement.recorded" ||
		f.Attempts != webhookAttempts || f.LastStatus != http.StatusBadGateway || f.LastError == "" || f.FailedAt.IsZero() {
		t.Errorf("failures %+v, want the recorded event after %d attempts with 502", got, webhookAttempts)
	}
	for range webhookAttempts {
		if d := down.next(t); d.id != h[0].ID {
			t.Errorf("webhook-id %q, want %s", d.id, h[0].ID)
		}
	}
	metrics := string(ws.get(t, "/metrics").body)
	for _, want := range []string{"engagements_webhook_deliveries_total 0",
		fmt.Sprintf("engagements_webhook_attempts_failed_total %d", webhookAttempts),
		"engagements_webhook_failures_total 1"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// subscriptionHealth is GET /v1/subscriptions/{id}: the subscription, its
// state and its health.
type subscriptionHealth struct {
	subscription
	State  string `json:"state"`
	Health *struct {
		AcknowledgedSequence  uint64     `json:"acknowledged_sequence"`
		LastDeliveredSequence uint64     `json:"last_delivered_sequence"`
		LastSuccessAt         *time.Time `json:"last_success_at"`
		LastError             string     `json:"last_error"`
		LastErrorSequence     uint64     `json:"last_error_sequence"`
		LastErrorAt           *time.Time `json:"last_error_at"`
		Pending               *uint64    `json:"pending"`
		ConsumersRecreated    uint64     `json:"consumers_recreated"`
	} `json:"health"`
}

func (ws *webhookServer) health(t *testing.T, token, id string) subscriptionHealth {
	t.Helper()
	r := ws.get(t, "/v1/subscriptions/"+id, bearer(token)...)
	if r.status != http.StatusOK {
		t.Fatalf("get subscription: %s", r)
	}
	h := decode[subscriptionHealth](t, r)
	if h.Health == nil {
		t.Fatalf("no health: %s", r.body)
	}
	return h
}

func TestSubscriptionHealthPauseAndRedeliver(t *testing.T) {
	ws := newWebhookServer(t)
	crm := ws.mint(t, "crm-sync", domain.RoleSubscriber)
	bi := ws.mint(t, "bi-feed", domain.RoleSubscriber)
	coordinator := ws.mint(t, "maria", domain.RoleCoordinator)
	rcv := newHookReceiver(t, http.StatusBadGateway)
	canary := newHookReceiver(t, http.StatusOK)
	sub := ws.subscribe(t, crm, rcv.URL)
	ws.subscribe(t, bi, canary.URL)
	path := "/v1/subscriptions/" + sub.ID

	if h := ws.health(t, crm, sub.ID); h.State != "active" || h.Health.LastDeliveredSequence != 0 ||
		h.Health.LastSuccessAt != nil || h.Health.Pending == nil || *h.Health.Pending != 0 {
		t.Errorf("a new subscription: %+v %+v", h, h.Health)
	}

	// A delivery fails every attempt: the health says so.
	id := decode[struct{ ID string }](t, ws.post(t, "/v1/engagements", agreement("MOU"), bearer(coordinator)...)).ID
	seq := ws.historyAs(t, id, bearer(coordinator))[0].Sequence
	for range webhookAttempts {
		rcv.next(t)
	}
	canary.next(t)
	var h subscriptionHealth
	for i := 0; ; i++ {
		if h = ws.health(t, crm, sub.ID); h.Health.AcknowledgedSequence == seq {
			break
		}
		if i == 1000 {
			t.Fatalf("the failure never settled: %+v", h.Health)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h.Health.LastError != "HTTP 502" || h.Health.LastErrorSequence != seq || h.Health.LastErrorAt == nil ||
		h.Health.LastDeliveredSequence != 0 {
		t.Errorf("after a failure: %+v", h.Health)
	}

	redeliver := fmt.Sprintf("%s/failures/%d/redeliver", path, seq)
	tests := []struct {
		name, method, path, token string
		status                    int
	}{
		{"another subscriber pauses it → 404", "POST", path + "/pause", bi, 404},
		{"another subscriber resumes it → 404", "POST", path + "/resume", bi, 404},
		{"another subscriber redelivers its failure → 404", "POST", redeliver, bi, 404},
		{"a coordinator pauses → 403", "POST", path + "/pause", coordinator, 403},
		{"a coordinator redelivers → 403", "POST", redeliver, coordinator, 403},
		{"an unknown subscription → 404", "POST", "/v1/subscriptions/" + newID() + "/pause", crm, 404},
		{"a sequence that never failed → 404", "POST", fmt.Sprintf("%s/failures/%d/redeliver", path, seq+1), crm, 404},
		{"a sequence that is not a number → 400", "POST", path + "/failures/abc/redeliver", crm, 400},
		{"sequence 0 → 400", "POST", path + "/failures/0/redeliver", crm, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ws.request(t, tt.method, tt.path, "", bearer(tt.token)...)
			if r.status != tt.status || mediaType(r.header) != "application/problem+json" {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
		})
	}

	// The receiver is fixed; redelivering reaches it and clears the failure.
	rcv.status.Store(http.StatusOK)
	r := ws.post(t, redeliver, "", bearer(crm)...)
	out := decode[struct {
		Sequence  uint64 `json:"sequence"`
		EventID   string `json:"event_id"`
		Delivered bool   `json:"delivered"`
		Status    int    `json:"status"`
	}](t, r)
	if r.status != http.StatusOK || !out.Delivered || out.Status != http.StatusOK || out.Sequence != seq {
		t.Fatalf("redeliver: %s", r)
	}
	if d := rcv.next(t); d.id != out.EventID {
		t.Errorf("redelivered %s, want %s", d.id, out.EventID)
	}
	if f := decode[struct{ Items []json.RawMessage }](t, ws.get(t, path+"/failures", bearer(crm)...)).Items; len(f) != 0 {
		t.Errorf("failures after the redelivery: %s", f)
	}
	if r := ws.post(t, redeliver, "", bearer(crm)...); r.status != http.StatusNotFound {
		t.Errorf("redeliver twice: %s", r)
	}

	// Paused (by an admin, who may manage anyone's): nothing is delivered
	// until it is resumed.
	r = ws.post(t, path+"/pause", "", bearer(ws.admin)...)
	if r.status != http.StatusOK || decode[subscriptionHealth](t, r).State != "paused" {
		t.Fatalf("pause: %s", r)
	}
	ws.appendEvent(t, id, note("while paused"), bearer(coordinator)...)
	canary.next(t)
	select {
	case d := <-rcv.got:
		t.Fatalf("a paused subscription delivered %s", d.id)
	default:
	}
	if h := ws.health(t, crm, sub.ID); h.State != "paused" || h.Health.Pending == nil || *h.Health.Pending != 1 {
		t.Errorf("while paused: %s %+v", h.State, h.Health)
	}
	if r := ws.get(t, "/v1/subscriptions", bearer(crm)...); !strings.Contains(string(r.body), `"state":"paused"`) {
		t.Errorf("the list does not show the pause: %s", r.body)
	}
	r = ws.post(t, path+"/resume", "", bearer(crm)...)
	if r.status != http.StatusOK || decode[subscriptionHealth](t, r).State != "active" {
		t.Fatalf("resume: %s", r)
	}
	rcv.next(t)

	metrics := string(ws.get(t, "/metrics").body)
	if !strings.Contains(metrics, "engagements_webhook_consumers_recreated_total 0\n") {
		t.Errorf("/metrics lacks engagements_webhook_consumers_recreated_total")
	}
}
