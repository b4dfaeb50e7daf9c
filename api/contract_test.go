package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/api"
)

// TestContractStatuses has one row per status of the contract's HTTP API
// table and error table: successes with their headers and bodies, and every
// error as application/problem+json naming what was wrong.
func TestContractStatuses(t *testing.T) {
	ts := newTestServer(t)

	draft := ts.create(t, agreement("Draft MOU"))
	active := ts.create(t, agreement("Active MOU"))
	ts.appendEvent(t, active, signed)
	terminated := ts.create(t, agreement("Terminated MOU"))
	ts.appendEvent(t, terminated, signed)
	ts.appendEvent(t, terminated, `{"type":"agreement.terminated","data":{"reason":"superseded"}}`)
	member := ts.create(t, `{"kind":"initiative","title":"Health cluster","parties":["IOM","WHO"]}`)
	ts.appendEvent(t, member, `{"type":"initiative.joined","data":{"role":"member"}}`)
	noted := ts.create(t, agreement("Noted MOU"))
	historic := ts.create(t, agreement("MOU with a history"), "X-Actor", "alice")
	ts.appendEvent(t, historic, signed, "X-Actor", "bob")
	ts.appendEvent(t, historic, note("reviewed"))
	matched := ts.create(t, agreement("MOU appended with If-Match"))
	unknown := newID()

	events := func(id string) string { return "/v1/engagements/" + id + "/events" }
	oversized := `{"kind":"agreement","title":"` + strings.Repeat("x", api.MaxBody) + `","parties":["IOM"]}`
	future := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)

	rows := []struct {
		name   string
		method string
		path   string
		body   string
		header []string
		// chunked sends the body without a Content-Length.
		chunked bool
		status  int
		// field must be named in the problem's errors.
		field string
		check func(t *testing.T, r response)
	}{
		// Successes.
		{name: "create → 201 with Location and ETag \"1\"", method: "POST", path: "/v1/engagements",
			body: agreement("Health MOU"), status: http.StatusCreated, check: func(t *testing.T, r response) {
				hasKeys(t, r.body, "id", "kind", "title", "parties", "status", "version", "links", "created_at", "updated_at")
				e := decode[engagement](t, r)
				if got, want := r.header.Get("Location"), "/v1/engagements/"+e.ID; got != want {
					t.Errorf("Location %q, want %q", got, want)
				}
				if got := r.header.Get("ETag"); got != `"1"` {
					t.Errorf(`ETag %s, want "1"`, got)
				}
				if e.Kind != "agreement" || e.Title != "Health MOU" || !slices.Equal(e.Parties, []string{"IOM", "WHO"}) ||
					e.Status != "draft" || e.Version != 1 || e.Links == nil || len(e.Links) != 0 {
					t.Errorf("created engagement %+v", e)
				}
				if e.CreatedAt.IsZero() || !e.UpdatedAt.Equal(e.CreatedAt) {
					t.Errorf("created_at %v, updated_at %v", e.CreatedAt, e.UpdatedAt)
				}
			}},
		{name: "get → 200 with ETag of the version", method: "GET", path: "/v1/engagements/" + active,
			status: http.StatusOK, check: func(t *testing.T, r response) {
				hasKeys(t, r.body, "id", "kind", "title", "parties", "status", "version", "links", "created_at", "updated_at")
				e := decode[engagement](t, r)
				if e.ID != active || e.Status != "active" || e.Version != 2 || e.SignedOn != "2020-01-15" {
					t.Errorf("engagement %+v", e)
				}
				if got := r.header.Get("ETag"); got != `"2"` {
					t.Errorf(`ETag %s, want "2"`, got)
				}
			}},
		{name: "append → 201 with the event and the new ETag", method: "POST", path: events(noted),
			body: note("first review"), status: http.StatusCreated, check: func(t *testing.T, r response) {
				if got := keys(t, r.body); !slices.Equal(got, []string{"id", "sequence", "type", "version"}) {
					t.Errorf("body keys %v, want id, type, sequence, version", got)
				}
				a := decode[appended](t, r)
				if a.Type != "engagement.noted" || a.Version != 2 || a.Sequence == 0 || a.ID == "" {
					t.Errorf("appended %+v", a)
				}
				if got := r.header.Get("ETag"); got != `"2"` {
					t.Errorf(`ETag %s, want "2"`, got)
				}
			}},
		{name: "append with the current If-Match → 201", method: "POST", path: events(matched),
			body: note("x"), header: []string{"If-Match", `"1"`}, status: http.StatusCreated, check: func(t *testing.T, r response) {
				if a := decode[appended](t, r); a.Version != 2 || r.header.Get("ETag") != `"2"` {
					t.Errorf("appended %+v with ETag %s", a, r.header.Get("ETag"))
				}
			}},
		{name: "create with a charset parameter → 201", method: "POST", path: "/v1/engagements",
			body: agreement("MOU"), header: []string{"Content-Type", "application/json; charset=utf-8"}, status: http.StatusCreated},
		{name: "history → 200 oldest first", method: "GET", path: "/v1/engagements/" + historic + "/history",
			status: http.StatusOK, check: func(t *testing.T, r response) {
				var h struct {
					Events []json.RawMessage `json:"events"`
				}
				if err := json.Unmarshal(r.body, &h); err != nil {
					t.Fatal(err)
				}
				for _, raw := range h.Events {
					hasKeys(t, raw, "id", "type", "sequence", "version", "occurred_at", "recorded_at", "actor", "data")
				}
				evs := decode[struct {
					Events []event `json:"events"`
				}](t, r).Events
				var types, actors []string
				for i, ev := range evs {
					types, actors = append(types, ev.Type), append(actors, ev.Actor)
					if ev.Version != i+1 {
						t.Errorf("event %d has version %d", i, ev.Version)
					}
					if i > 0 && ev.Sequence <= evs[i-1].Sequence {
						t.Errorf("event %d sequence %d after %d", i, ev.Sequence, evs[i-1].Sequence)
					}
					if ev.ID == "" || ev.OccurredAt.IsZero() || ev.RecordedAt.IsZero() || len(ev.Data) == 0 {
						t.Errorf("event %d incomplete: %+v", i, ev)
					}
				}
				if want := []string{"engagement.recorded", "agreement.signed", "engagement.noted"}; !slices.Equal(types, want) {
					t.Errorf("types %v, want %v", types, want)
				}
				if want := []string{"alice", "bob", "anonymous"}; !slices.Equal(actors, want) {
					t.Errorf("actors %v, want %v", actors, want)
				}
			}},
		{name: "list → 200 with items and next_cursor", method: "GET", path: "/v1/engagements?kind=initiative",
			status: http.StatusOK, check: func(t *testing.T, r response) {
				if got := keys(t, r.body); !slices.Equal(got, []string{"items", "next_cursor"}) {
					t.Errorf("body keys %v, want items, next_cursor", got)
				}
				p := decode[page](t, r)
				if len(p.Items) != 1 || p.Items[0].ID != member || p.NextCursor != nil {
					t.Errorf("page %+v", p)
				}
			}},

		// 400: the request itself is malformed.
		{name: "malformed JSON → 400", method: "POST", path: "/v1/engagements",
			body: `{"kind":"agreement","title":`, status: http.StatusBadRequest},
		{name: "empty body → 400", method: "POST", path: "/v1/engagements",
			body: " ", status: http.StatusBadRequest},
		{name: "trailing data after the object → 400", method: "POST", path: events(draft),
			body: note("x") + ` {}`, status: http.StatusBadRequest},
		{name: "invalid UTF-8 → 400", method: "POST", path: "/v1/engagements",
			body: "{\"kind\":\"agreement\",\"title\":\"MOU \xff\",\"parties\":[\"IOM\"]}", status: http.StatusBadRequest},
		{name: "JSON nested too deep → 400", method: "POST", path: events(draft),
			body:   `{"type":"engagement.noted","data":{"note":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`,
			status: http.StatusBadRequest},
		{name: "body that is not an object → 400", method: "POST", path: events(draft),
			body: `["engagement.noted"]`, status: http.StatusBadRequest},
		{name: "title as a number → 400", method: "POST", path: "/v1/engagements",
			body: `{"kind":"agreement","title":42,"parties":["IOM"]}`, status: http.StatusBadRequest, field: "title"},
		{name: "parties as a string → 400", method: "POST", path: "/v1/engagements",
			body: `{"kind":"agreement","title":"MOU","parties":"IOM"}`, status: http.StatusBadRequest, field: "parties"},
		{name: "data.signed_on as a number → 400", method: "POST", path: events(draft),
			body: `{"type":"agreement.signed","data":{"signed_on":20200115}}`, status: http.StatusBadRequest, field: "data.signed_on"},
		{name: "type as a number → 400", method: "POST", path: events(draft),
			body: `{"type":7,"data":{}}`, status: http.StatusBadRequest, field: "type"},
		{name: "unknown field in a new engagement → 400", method: "POST", path: "/v1/engagements",
			body: `{"kind":"agreement","title":"MOU","parties":["IOM"],"colour":"blue"}`, status: http.StatusBadRequest, field: "colour"},
		{name: "unknown top-level field of an event → 400", method: "POST", path: events(draft),
			body: `{"type":"engagement.noted","data":{"note":"x"},"colour":"blue"}`, status: http.StatusBadRequest, field: "colour"},
		{name: "unknown data field → 400", method: "POST", path: events(draft),
			body: `{"type":"agreement.signed","data":{"signed_on":"2020-01-15","colour":"blue"}}`, status: http.StatusBadRequest, field: "data.colour"},
		{name: "data that is not an object → 400", method: "POST", path: events(draft),
			body: `{"type":"engagement.noted","data":"a note"}`, status: http.StatusBadRequest, field: "data"},
		{name: "invalid X-Actor header → 400", method: "POST", path: events(draft),
			body: note("x"), header: []string{"X-Actor", "two words"}, status: http.StatusBadRequest, field: "X-Actor"},
		{name: "duplicate JSON key → 400", method: "POST", path: "/v1/engagements",
			body: `{"kind":"agreement","title":"A","title":"B","parties":["IOM"]}`, status: http.StatusBadRequest},
		{name: "duplicate JSON key in data → 400", method: "POST", path: events(draft),
			body: `{"type":"engagement.noted","data":{"note":"a","note":"b"}}`, status: http.StatusBadRequest},
		{name: "bad UUID in GET path → 400", method: "GET", path: "/v1/engagements/not-a-uuid",
			status: http.StatusBadRequest, field: "id"},
		{name: "upper-case UUID in history path → 400", method: "GET", path: "/v1/engagements/" + strings.ToUpper(draft) + "/history",
			status: http.StatusBadRequest, field: "id"},
		{name: "bad UUID in append path → 400", method: "POST", path: events("42"),
			body: note("x"), status: http.StatusBadRequest, field: "id"},
		{name: "If-Match that is not an ETag → 400", method: "POST", path: events(draft),
			body: note("x"), header: []string{"If-Match", "yesterday"}, status: http.StatusBadRequest, field: "If-Match"},
		{name: "occurred_at that is not a time → 422", method: "POST", path: events(draft),
			body:   `{"type":"engagement.noted","occurred_at":"last Tuesday","data":{"note":"x"}}`,
			status: http.StatusUnprocessableEntity, field: "occurred_at"},
		{name: "list with limit 0 → 400", method: "GET", path: "/v1/engagements?limit=0",
			status: http.StatusBadRequest, field: "limit"},
		{name: "list with limit abc → 400", method: "GET", path: "/v1/engagements?limit=abc",
			status: http.StatusBadRequest, field: "limit"},
		{name: "list with limit over the maximum → 400", method: "GET", path: "/v1/engagements?limit=1001",
			status: http.StatusBadRequest, field: "limit"},
		{name: "list with a forged cursor → 400", method: "GET", path: "/v1/engagements?cursor=bm90LWEtY3Vyc29y",
			status: http.StatusBadRequest, field: "cursor"},
		{name: "list with cursor that is not base64 → 400", method: "GET", path: "/v1/engagements?cursor=!!!",
			status: http.StatusBadRequest, field: "cursor"},
		{name: "list with unknown kind → 400", method: "GET", path: "/v1/engagements?kind=treaty",
			status: http.StatusBadRequest, field: "kind"},
		{name: "list with unknown status → 400", method: "GET", path: "/v1/engagements?status=sleeping",
			status: http.StatusBadRequest, field: "status"},

		// 404: no such engagement.
		{name: "get an unknown engagement → 404", method: "GET", path: "/v1/engagements/" + unknown,
			status: http.StatusNotFound},
		{name: "history of an unknown engagement → 404", method: "GET", path: "/v1/engagements/" + unknown + "/history",
			status: http.StatusNotFound},
		{name: "append to an unknown engagement → 404", method: "POST", path: events(unknown),
			body: note("x"), status: http.StatusNotFound},

		{name: "unknown route → 404", method: "GET", path: "/v1/agreements",
			status: http.StatusNotFound},
		{name: "POST to /healthz → 405", method: "POST", path: "/healthz",
			status: http.StatusMethodNotAllowed},

		// 412: the caller's version is stale.
		{name: "stale If-Match → 412", method: "POST", path: events(active),
			body: note("x"), header: []string{"If-Match", `"1"`}, status: http.StatusPreconditionFailed},

		// 413: too big.
		{name: "body over 1 MiB → 413", method: "POST", path: "/v1/engagements",
			body: oversized, status: http.StatusRequestEntityTooLarge},
		{name: "chunked body over 1 MiB → 413", method: "POST", path: "/v1/engagements",
			body: oversized, chunked: true, status: http.StatusRequestEntityTooLarge},

		// 415: not JSON.
		{name: "text/plain new engagement → 415", method: "POST", path: "/v1/engagements",
			body: agreement("MOU"), header: []string{"Content-Type", "text/plain"}, status: http.StatusUnsupportedMediaType},
		{name: "text/plain event → 415", method: "POST", path: events(draft),
			body: note("x"), header: []string{"Content-Type", "text/plain; charset=utf-8"}, status: http.StatusUnsupportedMediaType},

		// 422: well-formed, but the rules say no.
		{name: "unknown event type → 422", method: "POST", path: events(draft),
			body: `{"type":"agreement.exploded","data":{}}`, status: http.StatusUnprocessableEntity, field: "type"},
		{name: "event type of another kind → 422", method: "POST", path: events(draft),
			body: `{"type":"policy.adopted","data":{"adopted_by":"WHA"}}`, status: http.StatusUnprocessableEntity},
		{name: "renew a terminated MOU → 422", method: "POST", path: events(terminated),
			body: `{"type":"agreement.renewed","data":{"renewed_on":"2024-01-15"}}`, status: http.StatusUnprocessableEntity},
		{name: "sign an active agreement → 422", method: "POST", path: events(active),
			body: signed, status: http.StatusUnprocessableEntity},
		{name: "terminate a draft agreement → 422", method: "POST", path: events(draft),
			body: `{"type":"agreement.terminated","data":{"reason":"never signed"}}`, status: http.StatusUnprocessableEntity},
		{name: "join when already a member → 422", method: "POST", path: events(member),
			body: `{"type":"initiative.joined","data":{"role":"member"}}`, status: http.StatusUnprocessableEntity},
		{name: "record an engagement twice → 422", method: "POST", path: events(draft),
			body:   `{"type":"engagement.recorded","data":{"kind":"agreement","title":"MOU","parties":["IOM"]}}`,
			status: http.StatusUnprocessableEntity},
		{name: "missing title → 422", method: "POST", path: "/v1/engagements",
			body: `{"kind":"agreement","parties":["IOM"]}`, status: http.StatusUnprocessableEntity, field: "title"},
		{name: "missing parties → 422", method: "POST", path: "/v1/engagements",
			body: `{"kind":"agreement","title":"MOU"}`, status: http.StatusUnprocessableEntity, field: "parties"},
		{name: "missing kind → 422", method: "POST", path: "/v1/engagements",
			body: `{"title":"MOU","parties":["IOM"]}`, status: http.StatusUnprocessableEntity, field: "kind"},
		{name: "missing data.signed_on → 422", method: "POST", path: events(draft),
			body: `{"type":"agreement.signed","data":{}}`, status: http.StatusUnprocessableEntity, field: "data.signed_on"},
		{name: "missing type → 422", method: "POST", path: events(draft),
			body: `{"data":{"note":"x"}}`, status: http.StatusUnprocessableEntity, field: "type"},
		{name: "policy without instrument → 422", method: "POST", path: "/v1/engagements",
			body: `{"kind":"policy","title":"Resolution","parties":["IOM","WHO"]}`, status: http.StatusUnprocessableEntity, field: "instrument"},
		{name: "occurred_at in the future → 422", method: "POST", path: events(draft),
			body:   `{"type":"engagement.noted","occurred_at":"` + future + `","data":{"note":"x"}}`,
			status: http.StatusUnprocessableEntity, field: "occurred_at"},
		{name: "new engagement that occurred in the future → 422", method: "POST", path: "/v1/engagements",
			body:   `{"kind":"agreement","title":"MOU","parties":["IOM"],"occurred_at":"` + future + `"}`,
			status: http.StatusUnprocessableEntity, field: "occurred_at"},
		{name: "link to a non-existent engagement → 422", method: "POST", path: events(draft),
			body:   `{"type":"engagement.linked","data":{"target_id":"` + unknown + `","relation":"references"}}`,
			status: http.StatusUnprocessableEntity, field: "data.target_id"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			var body io.Reader
			if row.body != "" {
				body = strings.NewReader(row.body)
				if row.chunked {
					body = io.MultiReader(body) // hides the length
				}
			}
			req, err := ts.newRequest(row.method, row.path, body, row.header...)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ts.send(req)
			if err != nil {
				t.Fatalf("%s %s: %v", row.method, row.path, err)
			}
			if r.status != row.status {
				t.Fatalf("status %d, want %d; body %s", r.status, row.status, r.body)
			}
			if row.status >= 400 {
				checkProblem(t, r, row.field)
			}
			if row.check != nil {
				row.check(t, r)
			}
		})
	}

	// None of the refused requests changed anything.
	for id, version := range map[string]int{draft: 1, active: 2, terminated: 3, member: 2} {
		if got := ts.state(t, id).Version; got != version {
			t.Errorf("engagement %s at version %d after refused requests, want %d", id, got, version)
		}
	}
}

// checkProblem asserts an RFC 9457 problem document for r's status and, when
// field is set, a validation error naming that field.
func checkProblem(t *testing.T, r response, field string) {
	t.Helper()
	if mt := mediaType(r.header); mt != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", r.header.Get("Content-Type"))
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Errors []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem does not decode: %v: %s", err, r.body)
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("problem lacks type, title or detail: %s", r.body)
	}
	if p.Status != r.status {
		t.Errorf("problem status %d, HTTP status %d", p.Status, r.status)
	}
	var fields []string
	for _, e := range p.Errors {
		if e.Field == "" || e.Message == "" {
			t.Errorf("field error without field or message: %s", r.body)
		}
		fields = append(fields, e.Field)
	}
	if field != "" && !slices.Contains(fields, field) {
		t.Errorf("errors name %v, want %q: %s", fields, field, r.body)
	}
}
