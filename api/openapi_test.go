package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/webhooks"
)

// fullServer is the API with every optional surface on (tokens, webhooks,
// a metrics token), as serve runs it, so every route is registered.
type fullServer struct {
	*testServer
	api   *api.Server
	admin string
	// hooks receives webhook deliveries: /ok answers 204, /fail 500.
	hooks *receiver
}

const metricsToken = "metrics-token-for-tests"

func newFullServer(t *testing.T) *fullServer {
	t.Helper()
	rec := newReceiver(t) // first, so it is closed after the deliveries stop
	b := buildServer(t, setup{tokens: true, calendars: true, proofs: true, sessions: true,
		webhooks: &webhooks.Config{MaxAttempts: 1, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond,
			Timeout: 2 * time.Second},
		options: []api.Option{api.WithMetricsToken(metricsToken)}})
	return &fullServer{testServer: b.testServer, api: b.api, admin: b.admin, hooks: rec}
}

// receiver is a webhook endpoint that keeps what it was sent.
type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []*http.Request
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r = r.Clone(context.Background())
		r.Body = io.NopCloser(bytes.NewReader(body))
		rc.mu.Lock()
		rc.got = append(rc.got, r)
		rc.mu.Unlock()
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// first is the first delivery to path, waiting for it up to ten seconds.
func (rc *receiver) first(t *testing.T, path string) *http.Request {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		rc.mu.Lock()
		for _, r := range rc.got {
			if r.URL.Path == path {
				rc.mu.Unlock()
				return r
			}
		}
		rc.mu.Unlock()
	}
	t.Fatalf("no webhook delivery to %s within 10 s", path)
	return nil
}

// loadOpenAPI fetches GET /openapi.yaml from ts, loads it with kin-openapi
// and validates it as an OpenAPI 3.1 document.
func loadOpenAPI(t *testing.T, ts *testServer) *openapi3.T {
	t.Helper()
	r := ts.get(t, "/openapi.yaml")
	if r.status != http.StatusOK || mediaType(r.header) != "application/yaml" {
		t.Fatalf("GET /openapi.yaml: %d %s", r.status, r.header.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatalf("load OpenAPI document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi: %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("OpenAPI document is not valid: %v", err)
	}
	return doc
}

// operations are "METHOD /path" of every operation in doc, with {param}s.
func operations(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIMatchesRoutes holds the document to the routes the server
// really registers (with tokens and webhooks on): a route the document
// lacks, or an operation the server does not have, fails.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	fs := newFullServer(t)
	doc := loadOpenAPI(t, fs.testServer)

	var routes []string
	for _, r := range fs.api.Routes() {
		parts := strings.Split(r.Path, "/")
		for i, p := range parts {
			if name, ok := strings.CutPrefix(p, ":"); ok {
				parts[i] = "{" + name + "}"
			}
		}
		routes = append(routes, r.Method+" "+strings.Join(parts, "/"))
	}
	slices.Sort(routes)
	routes = slices.Compact(routes)
	documented := operations(doc)

	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in api/openapi.yaml", r)
		}
	}
	for _, op := range documented {
		if !slices.Contains(routes, op) {
			t.Errorf("api/openapi.yaml documents %s, which the server does not have", op)
		}
	}
}

// contract validates recorded exchanges against the document.
type contract struct {
	t      *testing.T
	fs     *fullServer
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
	// seen counts validated exchanges per "METHOD /path" operation.
	seen map[string]int
}

// verdict is how the document must judge a request.
type verdict int

const (
	valid   verdict = iota // the document accepts it
	invalid                // the document refuses it, as the server does
	either                 // the point is elsewhere (a body too large)
)

// check sends one request and checks its status, then validates the
// request (it must get the verdict req) and the response with the document.
func (c *contract) check(name string, want int, req verdict, method, path, body string, header ...string) response {
	c.t.Helper()
	r := c.fs.request(c.t, method, path, body, header...)
	if r.status != want {
		c.t.Errorf("%s: %s %s = %s, want %d", name, method, path, r, want)
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	vreq, err := c.fs.newRequest(method, path, rd, header...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.validate(name, vreq, req, r)
	return r
}

func (c *contract) validate(name string, vreq *http.Request, req verdict, r response) {
	c.t.Helper()
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		c.t.Errorf("%s: %s %s: no operation in the document: %v", name, vreq.Method, vreq.URL.Path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: c.opts}
	err = openapi3filter.ValidateRequest(context.Background(), in)
	switch {
	case req == valid && err != nil:
		c.t.Errorf("%s: the document refuses a request the server accepts: %v", name, err)
	case req == invalid && err == nil:
		c.t.Errorf("%s: the document accepts a request the server refuses with %d", name, r.status)
	}
	out := (&openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: r.status, Header: r.header,
		Options: c.opts}).SetBodyBytes(r.body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("%s: %s %s: the response does not match the document: %v\nresponse: %s", name, vreq.Method,
			vreq.URL.Path, err, r)
	}
	c.seen[route.Method+" "+route.Path]++
}

func newWebhookSecret(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return webhooks.SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// TestOpenAPIDescribesRealTraffic sends real requests to the real server
// (embedded nats-server, tokens and webhooks on) and validates every request
// and response with kin-openapi: successes of every operation and the
// problem responses users meet. Requests the server refuses for their shape
// must be refused by the document too, each operation's x-roles must be the
// roles the server lets through, and a documented operation that no
// exchange covers fails the test.
func TestOpenAPIDescribesRealTraffic(t *testing.T) {
	for _, mt := range append([]string{"*/*"}, domain.DocumentMediaTypes...) {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.FileBodyDecoder) // documents' bytes
	}
	fs := newFullServer(t)
	doc := loadOpenAPI(t, fs.testServer)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	// A batch's NDJSON lines are validated as the array they make.
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", decodeNDJSON)
	c := &contract{t: t, fs: fs, doc: doc, router: router, seen: make(map[string]int),
		opts: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true, MultiError: true}}
	admin := bearer(fs.admin)
	with := func(auth []string, more ...string) []string { return append(slices.Clone(auth), more...) }

	// Operations.
	c.check("liveness", 200, valid, "GET", "/healthz", "")
	c.check("readiness", 200, valid, "GET", "/readyz", "")
	c.check("the document itself", 200, valid, "GET", "/openapi.yaml", "")
	c.check("metrics without the metrics token → 401", 401, valid, "GET", "/metrics", "")
	c.check("metrics", 200, valid, "GET", "/metrics", "", bearer(metricsToken)...)
	c.check("a data schema, no token needed", 200, valid, "GET", "/schemas/agreement.renewed/v1", "")
	c.check("a correction's old data schema", 200, valid, "GET", "/schemas/engagement.corrected/v1", "")
	c.check("a data schema under /v1", 200, valid, "GET", "/v1/schemas/engagement.corrected/v2", "")
	c.check("the schema of an unknown type → 404", 404, valid, "GET", "/schemas/agreement.torn_up/v1", "")
	c.check("a version the type never had → 404", 404, valid, "GET", "/v1/schemas/agreement.renewed/v3", "")
	c.check("a version that is no version → 404", 404, valid, "GET", "/schemas/agreement.renewed/1", "")

	// Tokens.
	mint := func(name string, role domain.Role) []string {
		r := c.check("create a "+string(role)+" token", 201, valid, "POST", "/v1/tokens",
			fmt.Sprintf(`{"name":%q,"role":%q}`, name, role), admin...)
		return bearer(decode[struct{ Token string }](t, r).Token)
	}
	coord := mint("maria", domain.RoleCoordinator)
	aud := mint("audit-office", domain.RoleAuditor)
	sub := mint("crm-sync", domain.RoleSubscriber)
	mint("temp", domain.RoleCoordinator)
	c.check("a token name twice → 409", 409, valid, "POST", "/v1/tokens", `{"name":"maria","role":"auditor"}`, admin...)
	c.check("a token without a role → 422", 422, invalid, "POST", "/v1/tokens", `{"name":"x"}`, admin...)
	c.check("an unknown role → 422", 422, invalid, "POST", "/v1/tokens", `{"name":"x","role":"boss"}`, admin...)
	c.check("list tokens", 200, valid, "GET", "/v1/tokens", "", admin...)
	c.check("revoke a token", 204, valid, "DELETE", "/v1/tokens/temp", "", admin...)
	c.check("revoke an unknown token → 404", 404, valid, "DELETE", "/v1/tokens/nobody", "", admin...)
	c.check("revoke the last admin token → 409", 409, valid, "DELETE", "/v1/tokens/admin", "", admin...)
	c.check("a coordinator lists tokens → 403", 403, valid, "GET", "/v1/tokens", "", coord...)
	c.check("end a person's web sessions", 200, valid, "DELETE", "/v1/sessions?identity=maria%40who.example", "", admin...)
	c.check("end sessions without naming whose → 400", 400, invalid, "DELETE", "/v1/sessions", "", admin...)
	c.check("a coordinator ends sessions → 403", 403, valid, "DELETE", "/v1/sessions?identity=maria", "", coord...)

	// Authentication.
	c.check("no token → 401", 401, valid, "GET", "/v1/engagements", "")
	c.check("an unknown token → 401", 401, valid, "GET", "/v1/engagements", "", bearer("eng_nope")...)
	c.check("a subscriber records an engagement → 403", 403, valid, "POST", "/v1/engagements", agreement("x"), sub...)

	// Recording engagements.
	r := c.check("record an agreement", 201, valid, "POST", "/v1/engagements",
		`{"kind":"agreement","title":"IOM–UNHCR data-sharing agreement","parties":["IOM","UNHCR"],"tags":["data"],"occurred_at":"2019-01-01"}`,
		with(coord, "Idempotency-Key", "create-mou", "X-Correlation-ID", "req-1")...)
	mou := decode[engagement](t, r).ID
	r = c.check("record a policy", 201, valid, "POST", "/v1/engagements",
		`{"kind":"policy","title":"Framework","parties":["WHO"],"instrument":"framework","description":"Priorities\nand principles"}`, coord...)
	framework := decode[engagement](t, r).ID
	r = c.check("record a meeting without tags", 201, valid, "POST", "/v1/engagements",
		`{"kind":"meeting","title":"UNGA HLM on TB","parties":["IOM","WHO"],"level":"high","location":"New York","occurred_at":"2018-09-26"}`, coord...)
	meeting := decode[engagement](t, r).ID
	r = c.check("record an initiative", 201, valid, "POST", "/v1/engagements",
		`{"kind":"initiative","title":"Migration health network","parties":["IOM","WHO"]}`, coord...)
	network := decode[engagement](t, r).ID
	c.check("malformed JSON → 400", 400, invalid, "POST", "/v1/engagements", `{"kind":`, coord...)
	c.check("an unknown field → 400", 400, invalid, "POST", "/v1/engagements",
		`{"kind":"agreement","title":"x","parties":["IOM"],"status":"active"}`, coord...)
	c.check("a wrong type → 400", 400, invalid, "POST", "/v1/engagements", `{"kind":"agreement","title":7,"parties":["IOM"]}`, coord...)
	c.check("no title → 422", 422, invalid, "POST", "/v1/engagements", `{"kind":"agreement","parties":["IOM"]}`, coord...)
	c.check("an unknown kind → 422", 422, invalid, "POST", "/v1/engagements", `{"kind":"treaty","title":"x","parties":["IOM"]}`, coord...)
	c.check("not JSON → 415", 415, invalid, "POST", "/v1/engagements", agreement("x"), with(coord, "Content-Type", "text/plain")...)
	big := `{"kind":"agreement","title":"x","parties":["IOM"],"description":"` + strings.Repeat("a", api.MaxBody) + `"}`
	c.check("over 1 MiB → 413", 413, either, "POST", "/v1/engagements", big, coord...)

	// Reading one.
	r = c.check("read an engagement", 200, valid, "GET", "/v1/engagements/"+mou, "", coord...)
	c.check("not modified → 304", 304, valid, "GET", "/v1/engagements/"+mou, "", with(coord, "If-None-Match", r.header.Get("ETag"))...)
	c.check("as of a date", 200, valid, "GET", "/v1/engagements/"+mou+"?as_of=2019-06-01", "", aud...)
	c.check("before it began → 404", 404, valid, "GET", "/v1/engagements/"+mou+"?as_of=2018-01-01", "", aud...)
	c.check("a bad as_of → 400", 400, invalid, "GET", "/v1/engagements/"+mou+"?as_of=yesterday", "", aud...)
	c.check("a bad UUID → 400", 400, invalid, "GET", "/v1/engagements/not-a-uuid", "", coord...)
	c.check("an unknown engagement → 404", 404, valid, "GET", "/v1/engagements/"+newID(), "", coord...)

	// Appending events.
	events := "/v1/engagements/" + mou + "/events"
	c.check("sign with If-Match", 201, valid, "POST", events,
		`{"type":"agreement.signed","occurred_at":"2019-02-01","data":{"signed_on":"2019-02-01","expires_on":"2031-01-31"}}`,
		with(coord, "If-Match", `"1"`, "X-Causation-ID", "req-1")...)
	c.check("a stale If-Match → 412", 412, valid, "POST", events, note("typo"), with(coord, "If-Match", `"1"`)...)
	c.check("a bad If-Match → 400", 400, invalid, "POST", events, note("typo"), with(coord, "If-Match", "one")...)
	c.check("an action item", 201, valid, "POST", events,
		`{"type":"engagement.action_assigned","occurred_at":"2019-03","data":{"action_id":"plan","title":"Work plan","owner":"IOM","due_on":"2019-06-30"}}`, coord...)
	c.check("a focal point", 201, valid, "POST", events,
		`{"type":"engagement.focal_point_assigned","data":{"party":"UNHCR","name":"Dr A","email":"a@unhcr.org"}}`, coord...)
	c.check("complete an unknown action → 422", 422, valid, "POST", events, `{"type":"engagement.action_completed","data":{"action_id":"nope"}}`, coord...)
	c.check("a notice period as a string → 400", 400, invalid, "POST", events,
		`{"type":"agreement.renewed","data":{"renewed_on":"2020-03-01","notice_days":"30"}}`, coord...)
	c.check("what is coming", 200, valid, "GET", "/v1/upcoming?within=365d", "", coord...)
	c.check("what is coming, a bad window → 400", 400, valid, "GET", "/v1/upcoming?within=0d", "", coord...)
	c.check("what is coming, no token → 401", 401, valid, "GET", "/v1/upcoming", "")
	c.check("renew", 201, valid, "POST", events, `{"type":"agreement.renewed","data":{"renewed_on":"2020-03-01","term":"open-ended"}}`, coord...)
	c.check("terminate", 201, valid, "POST", events, `{"type":"agreement.terminated","data":{"reason":"superseded"}}`, coord...)
	c.check("renew a terminated MOU → 422", 422, valid, "POST", events, `{"type":"agreement.renewed","data":{"renewed_on":"2020-03-02"}}`, coord...)
	c.check("an unknown event type → 422", 422, invalid, "POST", events, `{"type":"agreement.torn_up","data":{}}`, coord...)
	c.check("a missing data field → 422", 422, invalid, "POST", events, `{"type":"agreement.terminated","data":{}}`, coord...)
	c.check("an unknown data field → 400", 400, invalid, "POST", events, `{"type":"engagement.noted","data":{"note":"x","mood":"happy"}}`, coord...)
	c.check("a future occurred_at → 422", 422, valid, "POST", events, `{"type":"engagement.noted","occurred_at":"2190-01-01","data":{"note":"x"}}`, coord...)
	c.check("to an unknown engagement → 404", 404, valid, "POST", "/v1/engagements/"+newID()+"/events", note("x"), coord...)
	c.check("note", 201, valid, "POST", events, note("kept on file"), with(coord, "Idempotency-Key", "note-1")...)
	c.check("link", 201, valid, "POST", events,
		fmt.Sprintf(`{"type":"engagement.linked","data":{"target_id":%q,"relation":"references"}}`, framework), coord...)
	signedID := ""
	for _, ev := range fs.historyAs(t, mou, coord) {
		if ev.Type == "agreement.signed" {
			signedID = ev.ID
		}
	}
	c.check("correct (v2)", 201, valid, "POST", events,
		fmt.Sprintf(`{"type":"engagement.corrected","data":{"corrects":%q,"reason":"wrong date","fields":{"signed_on":"2019-01-31"}}}`, signedID), coord...)
	c.check("correct (v1 shape)", 201, valid, "POST", events,
		fmt.Sprintf(`{"type":"engagement.corrected","data":{"corrects":%q,"reason":"wrong expiry","expires_on":"2031-01-30"}}`, signedID), coord...)
	policy := "/v1/engagements/" + framework + "/events"
	c.check("contribute", 201, valid, "POST", policy, `{"type":"policy.contributed","data":{"contribution":"drafting","role":"co-lead"}}`, coord...)
	c.check("adopt", 201, valid, "POST", policy, `{"type":"policy.adopted","occurred_at":"2017-05-29","data":{"adopted_by":"WHA"}}`, coord...)
	c.check("commit", 201, valid, "POST", policy, `{"type":"policy.committed","data":{"commitment":"report yearly"}}`, coord...)
	c.check("amend", 201, valid, "POST", policy, `{"type":"engagement.amended","data":{"tags":["health","migration"]}}`, coord...)
	hlm := "/v1/engagements/" + meeting + "/events"
	c.check("schedule", 201, valid, "POST", hlm, `{"type":"meeting.scheduled","occurred_at":"2018-06-01","data":{"starts_on":"2018-09-26","location":"New York"}}`, coord...)
	c.check("attend", 201, valid, "POST", hlm, `{"type":"meeting.attended","occurred_at":"2018-09-26","data":{"role":"speaker","delegation":"DG"}}`, coord...)
	c.check("conclude without data", 201, valid, "POST", hlm, `{"type":"meeting.concluded","occurred_at":"2018-09-27"}`, coord...)
	net := "/v1/engagements/" + network + "/events"
	c.check("join", 201, valid, "POST", net, `{"type":"initiative.joined","data":{"role":"member"}}`, coord...)
	c.check("change role", 201, valid, "POST", net, `{"type":"initiative.role_changed","data":{"role":"co-chair"}}`, coord...)
	c.check("leave", 201, valid, "POST", net, `{"type":"initiative.left","data":{"reason":"network closed"}}`, coord...)

	// Batches.
	nd := with(coord, "Content-Type", "application/x-ndjson")
	c.check("a batch as NDJSON: created, appended, refused, not tried", 200, valid, "POST", "/v1/batches",
		`{"op":"create","idempotency_key":"b-1","kind":"meeting","title":"WHO regional committee","parties":["IOM","WHO"],"occurred_at":"2019-10-01"}`+"\n"+
			`{"op":"append","engagement_id":"`+network+`","type":"engagement.noted","data":{"note":"a batch"}}`+"\n"+
			`{"op":"append","engagement_id":"`+framework+`","if_match":1,"type":"engagement.noted","data":{"note":"stale"}}`+"\n"+
			`{"op":"append","engagement_id":"`+framework+`","type":"engagement.noted","data":{"note":"after"}}`+"\n", nd...)
	c.check("a batch as a JSON array", 200, valid, "POST", "/v1/batches",
		`[{"op":"append","engagement_id":"`+network+`","idempotency_key":"b-2","type":"engagement.noted","data":{"note":"again"}}]`, coord...)
	c.check("a batch with a bad line → 400", 400, invalid, "POST", "/v1/batches", `{"op":"create",`+"\n", nd...)
	c.check("a batch with an unknown op → 400", 400, invalid, "POST", "/v1/batches", `[{"op":"delete"}]`, coord...)
	c.check("a batch as text → 415", 415, invalid, "POST", "/v1/batches", `[]`, with(coord, "Content-Type", "text/plain")...)
	c.check("1001 commands → 413", 413, invalid, "POST", "/v1/batches",
		strings.Repeat(`{"op":"append","engagement_id":"`+network+`","type":"engagement.noted","data":{"note":"x"}}`+"\n", 1001), nd...)

	// State, history, lists.
	c.check("a terminated agreement with links and corrections", 200, valid, "GET", "/v1/engagements/"+mou, "", coord...)
	c.check("an implementing policy", 200, valid, "GET", "/v1/engagements/"+framework, "", coord...)
	c.check("a concluded meeting", 200, valid, "GET", "/v1/engagements/"+meeting, "", coord...)
	c.check("history with corrected_by", 200, valid, "GET", "/v1/engagements/"+mou+"/history", "", coord...)
	c.check("history known at a time", 200, valid, "GET", "/v1/engagements/"+mou+"/history?known_at="+time.Now().UTC().Add(time.Second).Format(time.RFC3339), "", aud...)
	c.check("history of an unknown engagement → 404", 404, valid, "GET", "/v1/engagements/"+newID()+"/history", "", coord...)
	r = c.check("a first page", 200, valid, "GET", "/v1/engagements?limit=2", "", coord...)
	cursor := decode[page](t, r).NextCursor
	if cursor == nil {
		t.Fatalf("first page of 4 with limit 2 has no next_cursor: %s", r)
	}
	c.check("the last page", 200, valid, "GET", "/v1/engagements?limit=2&cursor="+*cursor, "", coord...)
	c.check("filters", 200, valid, "GET", "/v1/engagements?kind=agreement&status=terminated&party=iom&tag=data&q=unhcr", "", coord...)
	c.check("the portfolio as of a date", 200, valid, "GET", "/v1/engagements?as_of=2019-01-01", "", aud...)
	c.check("limit 0 → 400", 400, invalid, "GET", "/v1/engagements?limit=0", "", coord...)
	c.check("an unknown kind filter → 400", 400, invalid, "GET", "/v1/engagements?kind=treaty", "", coord...)

	// Audit.
	r = c.check("the global log", 200, valid, "GET", "/v1/events?limit=5", "", aud...)
	after := decode[struct {
		NextAfter uint64 `json:"next_after"`
	}](t, r).NextAfter
	c.check("the log read on, filtered", 200, valid, "GET", fmt.Sprintf("/v1/events?after=%d&type=agreement.*&kind=agreement", after), "", aud...)
	c.check("an empty page of the log", 200, valid, "GET", "/v1/events?after=100000", "", aud...)
	c.check("a bad after → 400", 400, invalid, "GET", "/v1/events?after=abc", "", aud...)
	c.check("a coordinator reads the log → 403", 403, valid, "GET", "/v1/events", "", coord...)
	c.check("export NDJSON", 200, valid, "GET", "/v1/events/export", "", aud...)
	c.check("export CSV, bounded", 200, valid, "GET", "/v1/events/export?format=csv&from=1&to=2020-12-31&type=agreement.*", "", aud...)
	c.check("export as XML → 400", 400, invalid, "GET", "/v1/events/export?format=xml", "", aud...)
	c.check("no checkpoint yet: no proof → 404", 404, valid, "GET", "/v1/engagements/"+mou+"/proof", "", aud...)
	c.check("a coordinator signs a checkpoint → 403", 403, valid, "POST", "/v1/checkpoints", "", coord...)
	c.check("sign a checkpoint", 201, valid, "POST", "/v1/checkpoints", "", aud...)
	c.check("sign again with nothing new", 200, valid, "POST", "/v1/checkpoints", "", aud...)
	c.check("list checkpoints", 200, valid, "GET", "/v1/checkpoints?limit=10", "", coord...)
	c.check("list checkpoints after a bad number → 400", 400, invalid, "GET", "/v1/checkpoints?after=x", "", aud...)
	c.check("the signing keys", 200, valid, "GET", "/v1/keys", "", sub...)
	c.check("an engagement's proof", 200, valid, "GET", "/v1/engagements/"+mou+"/proof", "", aud...)
	c.check("a proof against a checkpoint that does not exist → 404", 404, valid, "GET", "/v1/engagements/"+mou+"/proof?checkpoint=999999", "", aud...)
	c.check("a proof against checkpoint 0 → 400", 400, invalid, "GET", "/v1/engagements/"+mou+"/proof?checkpoint=0", "", aud...)
	c.check("verify", 200, valid, "GET", "/v1/verify", "", aud...)
	c.check("verify until", 200, valid, "GET", "/v1/verify?until=3", "", aud...)
	c.check("verify until 0 → 400", 400, invalid, "GET", "/v1/verify?until=0", "", aud...)

	// Server-Sent Events: headers, and the first replayed frame is a CloudEvent.
	c.checkStream("replay the stream", "/v1/events/stream?after=0&kind=agreement", sub)
	c.check("a stream filter on a bad id → 400", 400, invalid, "GET", "/v1/events/stream?engagement=nope", "", sub...)
	c.check("a coordinator streams → 403", 403, valid, "GET", "/v1/events/stream", "", coord...)
	c.checkStream("replay the stream since a date", "/v1/events/stream?since=2000-01-01&kind=agreement", sub)
	c.check("a stream since no time → 400", 400, invalid, "GET", "/v1/events/stream?since=yesterday", "", sub...)

	// Webhooks.
	r = c.check("subscribe", 201, valid, "POST", "/v1/subscriptions",
		fmt.Sprintf(`{"url":%q,"types":["agreement.*","engagement.noted"],"secret":%q,"from_sequence":1}`,
			fs.hooks.URL+"/ok", newWebhookSecret(t)), sub...)
	okSub := decode[struct{ ID string }](t, r).ID
	r = c.check("subscribe an endpoint that fails", 201, valid, "POST", "/v1/subscriptions",
		fmt.Sprintf(`{"url":%q,"types":["meeting.*"],"secret":%q,"from_sequence":1}`, fs.hooks.URL+"/fail", newWebhookSecret(t)), sub...)
	failSub := decode[struct{ ID string }](t, r).ID
	r = c.check("subscribe from a time", 201, valid, "POST", "/v1/subscriptions",
		fmt.Sprintf(`{"url":%q,"types":["policy.*"],"secret":%q,"from_time":"2000-01-01T00:00:00Z"}`,
			fs.hooks.URL+"/from-time", newWebhookSecret(t)), sub...)
	c.check("unsubscribe the one from a time", 204, valid, "DELETE", "/v1/subscriptions/"+decode[struct{ ID string }](t, r).ID, "", sub...)
	c.check("subscribe from no time → 422", 422, invalid, "POST", "/v1/subscriptions",
		fmt.Sprintf(`{"url":%q,"types":["policy.*"],"secret":%q,"from_time":"yesterday"}`, fs.hooks.URL, newWebhookSecret(t)), sub...)
	c.check("subscribe without a secret → 422", 422, invalid, "POST", "/v1/subscriptions",
		fmt.Sprintf(`{"url":%q,"types":["agreement.*"]}`, fs.hooks.URL), sub...)
	c.check("subscribe to an unknown type → 422", 422, invalid, "POST", "/v1/subscriptions",
		fmt.Sprintf(`{"url":%q,"types":["treaty.*"],"secret":%q}`, fs.hooks.URL, newWebhookSecret(t)), sub...)
	c.check("types as a string → 400", 400, invalid, "POST", "/v1/subscriptions",
		fmt.Sprintf(`{"url":%q,"types":"agreement.*","secret":%q}`, fs.hooks.URL, newWebhookSecret(t)), sub...)
	c.check("list subscriptions", 200, valid, "GET", "/v1/subscriptions", "", sub...)
	c.check("read a subscription", 200, valid, "GET", "/v1/subscriptions/"+okSub, "", sub...)
	c.check("an unknown subscription → 404", 404, valid, "GET", "/v1/subscriptions/"+newID(), "", sub...)
	c.check("an auditor lists subscriptions → 403", 403, valid, "GET", "/v1/subscriptions", "", aud...)
	c.checkDelivery("a webhook delivery", fs.hooks.first(t, "/ok"))
	fs.hooks.first(t, "/fail")
	var failures []json.RawMessage
	for deadline := time.Now().Add(10 * time.Second); len(failures) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r = fs.get(t, "/v1/subscriptions/"+failSub+"/failures", sub...)
		failures = decode[struct{ Items []json.RawMessage }](t, r).Items
	}
	c.check("failures", 200, valid, "GET", "/v1/subscriptions/"+failSub+"/failures", "", sub...)
	if len(failures) == 0 {
		t.Errorf("no failures recorded for an endpoint answering 500")
	}
	if len(failures) > 0 {
		var failed uint64
		if err := json.Unmarshal(failures[0], &struct{ Sequence *uint64 }{&failed}); err != nil {
			t.Fatal(err)
		}
		redeliver := fmt.Sprintf("/v1/subscriptions/%s/failures/%d/redeliver", failSub, failed)
		c.check("pause", 200, valid, "POST", "/v1/subscriptions/"+failSub+"/pause", "", sub...)
		c.check("redeliver while paused → 409", 409, valid, "POST", redeliver, "", sub...)
		c.check("resume", 200, valid, "POST", "/v1/subscriptions/"+failSub+"/resume", "", sub...)
		c.check("redeliver a failure (the endpoint still fails)", 200, valid, "POST", redeliver, "", sub...)
		c.check("redeliver a sequence that never failed → 404", 404, valid, "POST",
			fmt.Sprintf("/v1/subscriptions/%s/failures/%d/redeliver", failSub, failed+1000), "", sub...)
		c.check("redeliver a sequence that is not a number → 400", 400, invalid, "POST",
			"/v1/subscriptions/"+failSub+"/failures/abc/redeliver", "", sub...)
		c.check("pause an unknown subscription → 404", 404, valid, "POST", "/v1/subscriptions/"+newID()+"/pause", "", sub...)
	}
	c.check("unsubscribe", 204, valid, "DELETE", "/v1/subscriptions/"+okSub, "", sub...)
	c.check("unsubscribe twice → 404", 404, valid, "DELETE", "/v1/subscriptions/"+okSub, "", sub...)

	// Documents.
	docs := "/v1/engagements/" + network + "/documents"
	form, ct := multipartBody(t, "charter.pdf", "application/pdf", pdfFile, "occurred_at", "2018-01-01")
	formBody, _ := io.ReadAll(form)
	r = c.check("upload a document (multipart)", 201, valid, "POST", docs, string(formBody), with(coord, "Content-Type", ct)...)
	charter := decode[document](t, r)
	c.check("upload a new version (raw)", 201, valid, "POST", docs+"?name=charter-2019.pdf&supersedes="+charter.ID,
		string(pdfFile), with(coord, "Content-Type", "application/pdf", "Idempotency-Key", "charter-2019")...)
	c.check("upload a type off the allow-list → 415", 415, either, "POST", docs+"?name=x.html", "<html></html>",
		with(coord, "Content-Type", "text/html")...)
	c.check("upload a PNG as a PDF → 415", 415, either, "POST", docs+"?name=x.pdf", string(pngFile),
		with(coord, "Content-Type", "application/pdf")...)
	c.check("upload with a path in the name → 422", 422, either, "POST", docs+"?name=..%2Fx.pdf", string(pdfFile),
		with(coord, "Content-Type", "application/pdf")...)
	c.check("supersede an unknown document → 422", 422, valid, "POST", docs+"?name=x.pdf&supersedes="+newID(), string(pdfFile),
		with(coord, "Content-Type", "application/pdf")...)
	c.check("an auditor uploads → 403", 403, valid, "POST", docs+"?name=x.pdf", string(pdfFile), with(aud, "Content-Type", "application/pdf")...)
	c.check("list documents", 200, valid, "GET", docs, "", aud...)
	c.check("an engagement with documents", 200, valid, "GET", "/v1/engagements/"+network, "", aud...)
	r = c.check("download a document", 200, valid, "GET", charter.Href, "", aud...)
	c.check("download, not modified → 304", 304, valid, "GET", charter.Href, "", with(aud, "If-None-Match", r.header.Get("ETag"))...)
	c.check("download an unknown document → 404", 404, valid, "GET", docs+"/"+newID(), "", aud...)
	c.check("verify with documents", 200, valid, "GET", "/v1/verify", "", aud...)

	// Calendar feeds.
	r = c.check("make a calendar feed", 201, valid, "POST", "/v1/calendars",
		`{"name":"Deadlines","kind":"agreement","party":"WHO","within":"365d"}`, coord...)
	feed := decode[struct{ ID, URL string }](t, r)
	feedPath := strings.TrimPrefix(feed.URL, fs.URL)
	c.check("make a feed without a body", 201, valid, "POST", "/v1/calendars", "", aud...)
	c.check("a feed within no days → 422", 422, invalid, "POST", "/v1/calendars", `{"within":"soon"}`, coord...)
	c.check("a feed of an unknown kind → 422", 422, invalid, "POST", "/v1/calendars", `{"kind":"treaty"}`, coord...)
	c.check("a feed with an unknown field → 400", 400, invalid, "POST", "/v1/calendars", `{"colour":"red"}`, coord...)
	c.check("a subscriber makes a feed → 403", 403, valid, "POST", "/v1/calendars", "", sub...)
	c.check("list calendar feeds", 200, valid, "GET", "/v1/calendars", "", coord...)
	r = c.check("fetch a feed without a token", 200, valid, "GET", feedPath, "")
	c.check("fetch an unchanged feed → 304", 304, valid, "GET", feedPath, "", "If-None-Match", r.header.Get("ETag"))
	c.check("a feed's headers", 200, valid, "HEAD", feedPath, "")
	c.check("an unknown secret → 404", 404, valid, "GET", "/calendars/"+strings.Repeat("A", calendars.SecretLength)+".ics", "")
	c.check("not a secret → 404", 404, invalid, "GET", "/calendars/nothing.ics", "")
	c.check("another's feed → 404", 404, valid, "DELETE", "/v1/calendars/"+feed.ID, "", aud...)
	c.check("revoke a feed", 204, valid, "DELETE", "/v1/calendars/"+feed.ID, "", coord...)
	c.check("a revoked feed → 404", 404, valid, "GET", feedPath, "")
	c.check("revoke a feed that is no id → 400", 400, invalid, "DELETE", "/v1/calendars/feed", "", coord...)

	// People: find the focal point by e-mail, erase it, erase it again.
	r = c.check("find a person by e-mail", 200, valid, "GET", "/v1/people?email=a@unhcr.org", "", admin...)
	person := decode[domain.Person](t, r).ID
	c.check("find a person by no e-mail nor name → 400", 400, valid, "GET", "/v1/people", "", admin...)
	c.check("find nobody → 404", 404, valid, "GET", "/v1/people?name=Nobody", "", admin...)
	c.check("a coordinator finds a person → 403", 403, valid, "GET", "/v1/people?name=Dr%20A", "", coord...)
	c.check("a person", 200, valid, "GET", "/v1/people/"+person, "", admin...)
	c.check("an unknown person → 404", 404, valid, "GET", "/v1/people/p"+strings.Repeat("0", 32), "", admin...)
	c.check("a coordinator erases → 403", 403, valid, "POST", "/v1/people/"+person+"/erase", "", coord...)
	c.check("erase an unknown person → 404", 404, valid, "POST", "/v1/people/p"+strings.Repeat("1", 32)+"/erase", "", admin...)
	c.check("erase a person", 200, valid, "POST", "/v1/people/"+person+"/erase", "", admin...)
	c.check("erase a person again → 409", 409, valid, "POST", "/v1/people/"+person+"/erase", "", admin...)
	c.check("history with an erased focal point", 200, valid, "GET", "/v1/engagements/"+mou+"/history", "", aud...)

	c.checkRoles(map[domain.Role][]string{domain.RoleAdmin: admin, domain.RoleCoordinator: coord,
		domain.RoleAuditor: aud, domain.RoleSubscriber: sub})

	// Every problem response names a documented type: the document's enum
	// is checked by validation above; here the README's list is checked
	// against the document's, so neither lacks one.
	enum := doc.Components.Schemas["Problem"].Value.Properties["type"].Value.Enum
	for _, want := range []string{"malformed-request", "not-found", "conflict", "version-mismatch", "unauthorized",
		"forbidden", "body-too-large", "unsupported-media-type", "rate-limited", "validation-error",
		"invalid-transition", "unknown-event-type", "unavailable", "not-ready", "failed-dependency"} {
		if !slices.Contains(enum, any(api.ProblemBase+want)) {
			t.Errorf("problem type %s%s is not in the document", api.ProblemBase, want)
		}
	}

	for _, op := range operations(doc) {
		if c.seen[op] == 0 {
			t.Errorf("no real exchange covers %s; add one to this test", op)
		}
	}
}

// decodeNDJSON is kin-openapi's body decoder for NDJSON: the lines, each a
// JSON value, as one array.
func decodeNDJSON(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	var out []any
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// historyAs reads an engagement's events with the given credentials.
func (ts *testServer) historyAs(t *testing.T, id string, header []string) []event {
	t.Helper()
	r := ts.get(t, "/v1/engagements/"+id+"/history", header...)
	if r.status != http.StatusOK {
		t.Fatalf("history %s: %s", id, r)
	}
	return decode[struct {
		Events []event `json:"events"`
	}](t, r).Events
}

// checkStream opens an event stream, validates its status and headers,
// and validates the first frame's data against the CloudEvent schema.
func (c *contract) checkStream(name, path string, header []string) {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := c.fs.newRequest(http.MethodGet, path, nil, header...)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.fs.Client().Do(req.WithContext(ctx))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s: %d", name, resp.StatusCode)
	}
	var data string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = d
			break
		}
	}
	cancel()
	vreq, err := c.fs.newRequest(http.MethodGet, path, nil, header...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.validate(name, vreq, valid, response{status: resp.StatusCode, header: resp.Header})

	var ce any
	if err := json.Unmarshal([]byte(data), &ce); err != nil {
		c.t.Fatalf("%s: first frame's data is not JSON: %v: %q", name, err, data)
	}
	schema := c.doc.Components.Schemas["CloudEvent"].Value
	if err := schema.VisitJSON(ce, openapi3.EnableJSONSchema2020()); err != nil {
		c.t.Errorf("%s: the streamed CloudEvent does not match the document: %v\n%s", name, err, data)
	}
}

// checkDelivery validates a webhook delivery against the document's
// webhooks.engagementEvent: signature headers and the CloudEvent body.
func (c *contract) checkDelivery(name string, delivered *http.Request) {
	c.t.Helper()
	item := c.doc.Webhooks["engagementEvent"]
	if item == nil || item.Post == nil {
		c.t.Fatal("the document has no webhooks.engagementEvent.post")
	}
	route := &routers.Route{Spec: c.doc, Path: "engagementEvent", PathItem: item, Method: http.MethodPost, Operation: item.Post}
	in := &openapi3filter.RequestValidationInput{Request: delivered, Route: route, Options: c.opts}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		c.t.Errorf("%s: the delivery does not match the document: %v", name, err)
	}
}

// checkRoles holds each operation's x-roles to the server: a token of a
// listed role gets past authorisation, any other gets 403. Requests carry
// an unknown id and an empty body, so the allowed ones change nothing.
func (c *contract) checkRoles(tokens map[domain.Role][]string) {
	c.t.Helper()
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			raw, ok := op.Extensions["x-roles"].([]any)
			if !ok {
				if op.Security == nil { // the document's default: a bearer token
					c.t.Errorf("%s %s needs a token but has no x-roles", method, path)
				}
				continue
			}
			var roles []domain.Role
			for _, r := range raw {
				roles = append(roles, domain.Role(fmt.Sprint(r)))
			}
			if !slices.Contains(roles, domain.RoleAdmin) {
				c.t.Errorf("%s %s: x-roles %v lacks admin, who may do everything", method, path, roles)
			}
			target := strings.NewReplacer("{id}", newID(), "{name}", "nobody").Replace(path)
			for role, auth := range tokens {
				body := ""
				if op.RequestBody != nil {
					body = "{}"
				}
				status := c.statusOf(method, target, body, auth)
				if allowed := slices.Contains(roles, role); allowed && (status == 401 || status == 403) {
					c.t.Errorf("%s %s: x-roles %v lists %s, but the server answers %d", method, path, roles, role, status)
				} else if !allowed && status != 403 {
					c.t.Errorf("%s %s: x-roles %v leaves out %s, but the server answers %d, not 403", method, path, roles, role, status)
				}
			}
		}
	}
}

// statusOf sends a request and returns its status without reading the
// body, so an event stream ends as soon as it starts.
func (c *contract) statusOf(method, path, body string, header []string) int {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := c.fs.newRequest(method, path, rd, header...)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.fs.Client().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOpenAPIDescribesEverySpec holds the document's event data schemas to
// the domain's specs: every event type has its schema (engagement.recorded
// is NewEngagement), with the spec's fields, required fields, enums, dates
// and lengths. A spec without an entry in api/openapi.yaml fails.
func TestOpenAPIDescribesEverySpec(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("openapi.yaml")
	if err != nil {
		t.Fatalf("load api/openapi.yaml: %v", err)
	}
	schemas := doc.Components.Schemas
	mapping := schemas["NewEvent"].Value.Discriminator.Mapping
	uploads := 0
	// The reminders the service records are documented apart: no client
	// appends them.
	reminders := schemas["Reminder"].Value.Discriminator.Mapping
	for _, spec := range domain.Specs() {
		t.Run(string(spec.Type), func(t *testing.T) {
			var data *openapi3.Schema
			switch {
			case spec.Type == domain.EngagementRecorded:
				data = schemas["NewEngagement"].Value
			case spec.Upload || spec.Erasure:
				// Not appended as a plain event: its schema is not one of
				// NewEvent's, but one with the type as its const.
				uploads++
				if _, ok := mapping[string(spec.Type)]; ok {
					t.Errorf("NewEvent maps %s, which is recorded only by an upload", spec.Type)
				}
				for _, ref := range schemas {
					if p := ref.Value.Properties["type"]; p != nil && p.Value.Const == string(spec.Type) {
						data = ref.Value.Properties["data"].Value
					}
				}
				if data == nil {
					t.Fatalf("no schema has the type const %s", spec.Type)
				}
			default:
				m, in := mapping, "NewEvent"
				if spec.System {
					m, in = reminders, "Reminder"
					if _, ok := mapping[string(spec.Type)]; ok {
						t.Errorf("NewEvent maps %s, which no client may append", spec.Type)
					}
				}
				ref, ok := m[string(spec.Type)]
				if !ok {
					t.Fatalf("%s's discriminator has no mapping for %s", in, spec.Type)
				}
				event := schemas[strings.TrimPrefix(ref.Ref, "#/components/schemas/")]
				if event == nil || event.Value.Properties["data"] == nil {
					t.Fatalf("%s maps to %s, which has no data schema", spec.Type, ref.Ref)
				}
				if c := event.Value.Properties["type"].Value.Const; c != string(spec.Type) {
					t.Errorf("%s: type const %v, want %s", ref.Ref, c, spec.Type)
				}
				data = event.Value.Properties["data"].Value
			}
			checkDataSchema(t, spec, data)
		})
	}
	if n := len(mapping) + len(reminders) + 1 + uploads; n != len(domain.Specs()) {
		t.Errorf("the document maps %d event types (and NewEngagement, %d reminders and %d uploads or erasures), the domain has %d specs",
			len(mapping), len(reminders), uploads, len(domain.Specs()))
	}
}

// checkDataSchema compares one event type's data schema with its spec.
func checkDataSchema(t *testing.T, spec *domain.Spec, data *openapi3.Schema) {
	t.Helper()
	var names, required []string
	for _, f := range spec.Fields {
		names = append(names, f.Name)
		if f.Required && f.OnlyFor == "" {
			required = append(required, f.Name)
		}
	}
	documented := make([]string, 0, len(data.Properties))
	for name := range data.Properties {
		switch {
		case spec.Type == domain.EngagementRecorded && name == "occurred_at":
		case spec.Type == domain.EngagementCorrected && name == "fields":
		default:
			documented = append(documented, name)
		}
	}
	slices.Sort(names)
	slices.Sort(documented)
	if !slices.Equal(names, documented) {
		t.Errorf("data properties %v, the spec's fields %v", documented, names)
	}
	docRequired := slices.Sorted(slices.Values(data.Required))
	slices.Sort(required)
	if !slices.Equal(docRequired, required) {
		t.Errorf("data required %v, the spec requires %v", docRequired, required)
	}
	if spec.Type != domain.EngagementCorrected && (data.AdditionalProperties.Has == nil || *data.AdditionalProperties.Has) {
		t.Errorf("data allows additional properties; the domain refuses unknown fields")
	}
	for _, f := range spec.Fields {
		ref := data.Properties[f.Name]
		if ref == nil {
			continue
		}
		if problem := fieldProblem(f, flatten(ref)); problem != "" {
			t.Errorf("data.%s: %s", f.Name, problem)
		}
	}
}

// fieldProblem says how the schema s of a field differs from the field f.
func fieldProblem(f domain.Field, s openapi3.Schema) string {
	switch f.Input {
	case domain.InputSelect:
		var enum []string
		for _, v := range s.Enum {
			enum = append(enum, fmt.Sprint(v))
		}
		if !slices.Equal(enum, f.Options) {
			return fmt.Sprintf("enum %v, the spec's options %v", enum, f.Options)
		}
	case domain.InputDate:
		if s.Format != "date" && s.Pattern == "" {
			return "not a date"
		}
	case domain.InputNumber:
		if !s.Type.Is("integer") || s.Min == nil || int(*s.Min) != f.Min || s.Max == nil || int(*s.Max) != f.Max {
			return fmt.Sprintf("integer %v to %v, the spec's %d to %d", s.Min, s.Max, f.Min, f.Max)
		}
	case domain.InputList:
		if !s.Type.Is("array") || s.Items == nil {
			return "not an array"
		}
		items := flatten(s.Items)
		if items.MaxLength == nil || int(*items.MaxLength) != f.Max || int(s.MinItems) != f.MinItems ||
			s.MaxItems == nil || int(*s.MaxItems) != domain.MaxListEntries {
			return fmt.Sprintf("entries of at most %v characters, %d to %v of them; the spec says %d, %d to %d",
				deref(items.MaxLength), s.MinItems, deref(s.MaxItems), f.Max, f.MinItems, domain.MaxListEntries)
		}
	case domain.InputEngagement:
		if s.Format != "uuid" && s.Pattern == "" {
			return "not a UUID"
		}
	case domain.InputCount:
		if !s.Type.Is("integer") || s.Min == nil || *s.Min != 1 || s.Max == nil || int(*s.Max) != f.Max {
			return fmt.Sprintf("an integer from %v to %v, the spec's 1 to %d", derefF(s.Min), derefF(s.Max), f.Max)
		}
	default:
		if f.Pattern != "" {
			if s.Pattern != f.Pattern {
				return fmt.Sprintf("pattern %q, the spec's %q", s.Pattern, f.Pattern)
			}
			break
		}
		if f.Max > 0 && (s.MaxLength == nil || int(*s.MaxLength) != f.Max || s.MinLength != 1) {
			return fmt.Sprintf("length %d to %v, the spec's 1 to %d", s.MinLength, deref(s.MaxLength), f.Max)
		}
	}
	return ""
}

// flatten merges a schema with those of its allOf (one level suffices here).
func flatten(ref *openapi3.SchemaRef) openapi3.Schema {
	s := *ref.Value
	for _, part := range s.AllOf {
		p := part.Value
		if s.Type == nil {
			s.Type = p.Type
		}
		if s.Items == nil {
			s.Items = p.Items
		}
		if s.Enum == nil {
			s.Enum = p.Enum
		}
		if s.MaxLength == nil {
			s.MaxLength = p.MaxLength
		}
		if s.MaxItems == nil {
			s.MaxItems = p.MaxItems
		}
		if s.MinItems == 0 {
			s.MinItems = p.MinItems
		}
		if s.MinLength == 0 {
			s.MinLength = p.MinLength
		}
		if s.Format == "" {
			s.Format = p.Format
		}
		if s.Pattern == "" {
			s.Pattern = p.Pattern
		}
		if s.Min == nil {
			s.Min = p.Min
		}
		if s.Max == nil {
			s.Max = p.Max
		}
	}
	return s
}

func derefF(p *float64) any {
	if p == nil {
		return "∞"
	}
	return *p
}

func deref(p *uint64) any {
	if p == nil {
		return "∞"
	}
	return *p
}
