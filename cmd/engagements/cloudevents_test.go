package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/iom-who/engagements/domain"
)

// publicURL is the --public-url of the conformance test's service.
const publicURL = "https://tracker.example.org"

// ceCollector gathers the events one channel delivers, as the official
// CloudEvents SDK parsed them, and says when it has n.
type ceCollector struct {
	name string
	mu   sync.Mutex
	evs  []cloudevents.Event
	errs []string
	n    int
	done chan struct{}
}

func newCollector(name string, n int) *ceCollector {
	return &ceCollector{name: name, n: n, done: make(chan struct{})}
}

// addRaw parses and validates one raw structured-mode CloudEvent.
func (c *ceCollector) addRaw(raw []byte) {
	ev := cloudevents.NewEvent()
	if err := json.Unmarshal(raw, &ev); err != nil {
		c.add(ev, fmt.Errorf("unmarshal %s: %w", raw, err))
		return
	}
	c.add(ev, nil)
}

// add records ev (and err, or ev's Validate error).
func (c *ceCollector) add(ev cloudevents.Event, err error) {
	if err == nil {
		err = ev.Validate()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.errs = append(c.errs, fmt.Sprintf("%s: %v", ev.ID(), err))
	}
	c.evs = append(c.evs, ev)
	if len(c.evs) == c.n {
		close(c.done)
	}
}

// wait waits for n events and checks none failed.
func (c *ceCollector) wait(t *testing.T) []cloudevents.Event {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("%s: %d of %d events after 30 s", c.name, len(c.evs), c.n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		t.Errorf("%s: the CloudEvents SDK rejects an event: %s", c.name, e)
	}
	return append([]cloudevents.Event(nil), c.evs...)
}

// TestEventsAreValidCloudEvents: every event of the demo data, read as a
// subscriber reads it — a core NATS subscription, a JetStream consumer,
// SSE, webhook bodies, and a stock SDK HTTP receiver subscribed as a
// webhook — parses and validates with the official CloudEvents SDK, and its
// data validates against the JSON Schema served at its dataschema.
func TestEventsAreValidCloudEvents(t *testing.T) {
	const subToken, adminNATS = "subscriber-token-0123456789", "nats-admin-token-0123456789"
	dir := t.TempDir()
	m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: dir, Sync: "always", Replicas: 1,
		NATSListen: "127.0.0.1:-1", NATSSubscriberToken: subToken, NATSAdminToken: adminNATS, PublicURL: publicURL}}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	readToken(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// How many events the demo stores: load it once in a scratch store.
	want := demoEventCount(t)
	t.Logf("the demo stores %d events", want)

	// (a) A core NATS subscription, as `nats sub 'engagements.>'`.
	core := newCollector("core NATS", want)
	nc, err := nats.Connect(m.Store.ClientURL(), nats.Token(subToken))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("engagements.>", func(msg *nats.Msg) { core.addRaw(msg.Data) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// (c) SSE from the start.
	sse := newCollector("SSE", want)
	sseDone := readSSE(ctx, t, m.URL()+"/v1/events/stream?after=0", sse)

	// (d) Webhook bodies, raw, and a stock SDK HTTP receiver, each behind
	// the Standard Webhooks library's verifier with its own secret: a
	// delivery signed with any other key is answered 401 (and so recorded as
	// a failure, which the end of the test counts).
	const recorderSecret, sdkSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
	recorderHook, otherHook := standardWebhook(t, recorderSecret), standardWebhook(t, sdkSecret)
	bodies := newCollector("webhook bodies", want)
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if ct := r.Header.Get("Content-Type"); ct != "application/cloudevents+json" {
			err = fmt.Errorf("content type %q", ct)
		}
		if err == nil {
			if err = recorderHook.Verify(b, r.Header); err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			// The other subscription's key does not verify this one's delivery.
			if otherHook.Verify(b, r.Header) == nil {
				err = fmt.Errorf("delivery %s verifies with another subscription's secret", r.Header.Get("webhook-id"))
			}
		}
		if err != nil {
			bodies.add(cloudevents.NewEvent(), err)
		} else {
			bodies.addRaw(b)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recorder.Close()

	sdk := newCollector("SDK receiver", want)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := cloudevents.NewHTTP(cehttp.WithListener(ln), cehttp.WithMiddleware(verifyStandardWebhook(otherHook)))
	if err != nil {
		t.Fatal(err)
	}
	client, err := cloudevents.NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stopReceiver := context.WithCancel(ctx)
	received := make(chan error, 1)
	go func() {
		received <- client.StartReceiver(rctx, func(_ context.Context, ev cloudevents.Event) cloudevents.Result {
			sdk.add(ev, nil)
			return cloudevents.ResultACK
		})
	}()
	defer func() {
		stopReceiver()
		if err := <-received; err != nil {
			t.Errorf("SDK receiver: %v", err)
		}
	}()

	everything := `["engagement.*","agreement.*","policy.*","initiative.*","meeting.*"]`
	var hooks []string
	for url, secret := range map[string]string{recorder.URL + "/hook": recorderSecret, "http://" + ln.Addr().String() + "/": sdkSecret} {
		code, body := postJSON(t, m.URL()+"/v1/subscriptions",
			fmt.Sprintf(`{"url":%q,"types":%s,"secret":%q}`, url, everything, secret))
		if code != http.StatusCreated {
			t.Fatalf("subscribe %s: %d %v", url, code, body)
		}
		hooks = append(hooks, body["id"].(string))
	}

	// The demo's events, through the real stack.
	if n, err := loadDemo(ctx, m.Service); err != nil || n == 0 {
		t.Fatalf("demo: %d engagements, %v", n, err)
	}
	last, err := m.Store.LastSequence(ctx)
	if err != nil || int(last) != want {
		t.Fatalf("stored %d events (%v), the demo has %d", last, err, want)
	}

	// (b) A JetStream consumer, from the first event.
	js := newCollector("JetStream consumer", want)
	anc, err := nats.Connect(m.Store.ClientURL(), nats.Token(adminNATS))
	if err != nil {
		t.Fatal(err)
	}
	defer anc.Close()
	jsc, err := jetstream.New(anc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := jsc.OrderedConsumer(ctx, "ENGAGEMENTS", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"engagements.>"}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { js.addRaw(msg.Data()) })
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()

	for _, c := range []*ceCollector{core, js, sse, bodies, sdk} {
		evs := c.wait(t)
		if c == sse {
			checkDataSchemas(t, m.URL(), evs)
		}
	}
	cancel()
	<-sseDone

	// The SDK receiver answered 2xx to every delivery: no failure recorded.
	for _, id := range hooks {
		var failures struct {
			Items []any `json:"items"`
		}
		if code := getJSON(t, m.URL()+"/v1/subscriptions/"+id+"/failures", &failures); code != http.StatusOK || len(failures.Items) != 0 {
			t.Errorf("subscription %s: %d, failures %v", id, code, failures.Items)
		}
	}
}

// standardWebhook is the Standard Webhooks library's verifier for secret.
func standardWebhook(t *testing.T, secret string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

// verifyStandardWebhook answers 401 to a request whose signature wh does not
// verify, before the CloudEvents SDK sees it.
func verifyStandardWebhook(wh *standardwebhooks.Webhook) cehttp.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err == nil {
				err = wh.Verify(b, r.Header)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			next.ServeHTTP(w, r)
		})
	}
}

// demoEventCount is how many events the demo data stores.
func demoEventCount(t *testing.T) int {
	t.Helper()
	n := 0
	for _, eng := range demoData("2026-01-02") {
		n += 1 + len(eng.events)
	}
	return n
}

// readSSE reads the event stream at url into c until ctx ends.
func readSSE(ctx context.Context, t *testing.T, url string, c *ceCollector) <-chan struct{} {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var data bytes.Buffer
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "data: "):
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(strings.TrimPrefix(line, "data: "))
			case line == "" && data.Len() > 0:
				c.addRaw(bytes.Clone(data.Bytes()))
				data.Reset()
			}
		}
	}()
	return done
}

// checkDataSchemas fetches the schema each event's dataschema names from the
// service at base (the public URL stands for it) and validates the event's
// data against it with a JSON Schema validator.
func checkDataSchemas(t *testing.T, base string, evs []cloudevents.Event) {
	t.Helper()
	compiled := make(map[string]*jsonschema.Schema)
	types := make(map[string]bool)
	for _, ev := range evs {
		uri := ev.DataSchema()
		path, ok := strings.CutPrefix(uri, publicURL)
		if !ok || !strings.HasPrefix(path, "/schemas/") {
			t.Errorf("%s: dataschema %q is not under the public URL %s", ev.ID(), uri, publicURL)
			continue
		}
		sch, ok := compiled[uri]
		if !ok {
			resp, err := http.Get(base + path) // no token: schemas are public
			if err != nil {
				t.Fatal(err)
			}
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/schema+json" {
				t.Fatalf("GET %s: %d %s", path, resp.StatusCode, ct)
			}
			doc, err := jsonschema.UnmarshalJSON(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			c := jsonschema.NewCompiler()
			c.DefaultDraft(jsonschema.Draft2020)
			c.AssertFormat()
			if err := c.AddResource(uri, doc); err != nil {
				t.Fatal(err)
			}
			if sch, err = c.Compile(uri); err != nil {
				t.Fatalf("compile %s: %v", uri, err)
			}
			compiled[uri] = sch
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(ev.Data()))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s %s: data %s does not validate against %s: %v", ev.Type(), ev.ID(), ev.Data(), uri, err)
		}
		types[ev.Type()] = true
	}
	if len(types) < 5 {
		t.Errorf("the demo has only %d event types: %v", len(types), types)
	}
	// The schemas are the domain's: a sample of what the domain refuses
	// does not validate either.
	if sch := compiled[publicURL+domain.SchemaPath(domain.AgreementRenewed)]; sch != nil {
		for _, bad := range []string{`{}`, `{"renewed_on":"2020-3-1"}`, `{"renewed_on":"2020-03-01","extra":1}`} {
			inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
			if sch.Validate(inst) == nil {
				t.Errorf("agreement.renewed's schema accepts %s", bad)
			}
		}
	}
}
