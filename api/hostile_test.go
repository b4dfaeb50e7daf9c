package api_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHostileRequests throws malformed, oversized and subject-injecting
// requests at the real server. Each one must be refused with a 4xx problem
// document, and together they must store nothing: the stream's last sequence
// and every engagement's version stay where the seeding left them.
// TestContractStatuses covers the contract's plain error cases; these are the
// ones an attacker or a broken client would try.
func TestHostileRequests(t *testing.T) {
	ts := newTestServer(t)

	draft := ts.create(t, agreement("Draft MOU"))
	active := ts.create(t, agreement("Active MOU"))
	ts.appendEvent(t, active, signed)
	member := ts.create(t, `{"kind":"initiative","title":"Health cluster","parties":["IOM","WHO"]}`)
	ts.appendEvent(t, member, `{"type":"initiative.joined","data":{"role":"member"}}`)

	seeded := map[string]string{} // id → ETag after seeding
	for _, id := range []string{draft, active, member} {
		r := ts.get(t, "/v1/engagements/"+id)
		if r.status != http.StatusOK || r.header.Get("ETag") == "" {
			t.Fatalf("seeded engagement %s: %s (ETag %q)", id, r, r.header.Get("ETag"))
		}
		seeded[id] = r.header.Get("ETag")
	}
	before := ts.lastSequence(t)

	events := func(id string) string { return "/v1/engagements/" + id + "/events" }
	b64 := base64.RawURLEncoding.EncodeToString
	noteWith := func(field string) string {
		return `{"type":"engagement.noted","data":{"note":"x"},` + field + `}`
	}
	recorded := func(fields string) string {
		return `{"kind":"agreement","title":"MOU","parties":["IOM","WHO"],` + fields + `}`
	}
	deepArrays := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	deepObjects := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	parties := make([]string, 51)
	for i := range parties {
		parties[i] = fmt.Sprintf("%q", fmt.Sprintf("Org %02d", i))
	}
	tenMB := `{"type":"engagement.noted","data":{"note":"` + strings.Repeat("x", 10<<20) + `"}}`
	farFuture := time.Now().AddDate(50, 0, 0).UTC().Format(time.RFC3339)
	longID := strings.Repeat("a", 10_000)
	upper := strings.ToUpper(draft)

	const (
		bad         = http.StatusBadRequest
		notFound    = http.StatusNotFound
		notAllowed  = http.StatusMethodNotAllowed
		tooLarge    = http.StatusRequestEntityTooLarge
		unsupported = http.StatusUnsupportedMediaType
		invalid     = http.StatusUnprocessableEntity
	)
	rows := []struct {
		name   string
		method string
		path   string
		header []string
		body   string
		// chunked sends the body with ContentLength -1 (no length announced).
		chunked bool
		status  int
		// field, when set, must be named in the problem's errors.
		field string
		// statuses, when set, are the acceptable statuses instead of status.
		statuses []int
	}{
		// Subject tokens and whitespace in engagement ids: an id becomes a
		// NATS subject token, so nothing but a canonical UUID gets through.
		{name: "id . → 400", method: "GET", path: "/v1/engagements/.", status: bad, field: "id"},
		{name: "id %2E → 400", method: "GET", path: "/v1/engagements/%2E/history", status: bad, field: "id"},
		{name: "id * → 400", method: "GET", path: "/v1/engagements/*", status: bad, field: "id"},
		{name: "id > (%3E) → 400", method: "POST", path: events("%3E"), body: note("x"), status: bad, field: "id"},
		{name: "id with a wildcard subject → 400", method: "POST", path: events("agreement.%2A.signed"), body: note("x"), status: bad, field: "id"},
		{name: "id with %20 in the middle → 400", method: "POST", path: events(draft[:8] + "%20" + draft[9:]), body: note("x"), status: bad, field: "id"},
		{name: "id with a trailing %20 → 400", method: "GET", path: "/v1/engagements/" + draft + "%20", status: bad, field: "id"},
		{name: "id with a tab (%09) → 400", method: "GET", path: "/v1/engagements/%09" + draft[1:], status: bad, field: "id"},
		{name: "id with a dot instead of a dash → 400", method: "POST", path: events(draft[:8] + "." + draft[9:]), body: note("x"), status: bad, field: "id"},
		{name: "upper-case id → 400", method: "POST", path: events(upper), body: note("x"), status: bad, field: "id"},
		{name: "id without dashes → 400", method: "GET", path: "/v1/engagements/" + strings.ReplaceAll(draft, "-", ""), status: bad, field: "id"},
		{name: "id as a URN → 400", method: "GET", path: "/v1/engagements/urn:uuid:" + draft, status: bad, field: "id"},
		{name: "id in braces → 400", method: "GET", path: "/v1/engagements/%7B" + draft + "%7D", status: bad, field: "id"},
		{name: "id of 10 000 characters → 400", method: "GET", path: "/v1/engagements/" + longID, status: bad, field: "id"},
		{name: "id of 10 000 characters on append → 400", method: "POST", path: events(longID), body: note("x"), status: bad, field: "id"},
		{name: "encoded path traversal → 400 or 404", method: "GET", path: "/v1/engagements/..%2F..%2Fetc", statuses: []int{bad, notFound}},
		{name: "encoded slash into another route → 400 or 404", method: "GET", path: "/v1/engagements/" + draft + "%2Fhistory", statuses: []int{bad, notFound}},
		{name: "encoded slash into the events route → 400, 404 or 405", method: "POST", path: "/v1/engagements/" + draft + "%2Fevents", body: note("x"), statuses: []int{bad, notFound, notAllowed}},
		{name: "plain path traversal → 404", method: "GET", path: "/v1/engagements/../../etc/passwd", statuses: []int{bad, notFound}},

		// Subject tokens and whitespace in event types and kinds.
		{name: "type engagement.> → 422", method: "POST", path: events(draft), body: `{"type":"engagement.>","data":{}}`, status: invalid, field: "type"},
		{name: "type agreement.* → 422", method: "POST", path: events(draft), body: `{"type":"agreement.*","data":{}}`, status: invalid, field: "type"},
		{name: "type > → 422", method: "POST", path: events(draft), body: `{"type":">","data":{}}`, status: invalid, field: "type"},
		{name: "type with an extra token → 422", method: "POST", path: events(draft), body: `{"type":"engagement.noted.x","data":{"note":"x"}}`, status: invalid, field: "type"},
		{name: "type with a space → 422", method: "POST", path: events(draft), body: `{"type":"engagement. noted","data":{"note":"x"}}`, status: invalid, field: "type"},
		{name: "type with a trailing tab → 422", method: "POST", path: events(draft), body: `{"type":"engagement.noted\t","data":{"note":"x"}}`, status: invalid, field: "type"},
		{name: "type in upper case → 422", method: "POST", path: events(draft), body: `{"type":"ENGAGEMENT.NOTED","data":{"note":"x"}}`, status: invalid, field: "type"},
		{name: "type with a NUL → 422", method: "POST", path: events(draft), body: `{"type":"engagement.noted\u0000","data":{"note":"x"}}`, status: invalid, field: "type"},
		{name: "type null → 422 required", method: "POST", path: events(draft), body: `{"type":null,"data":{"note":"x"}}`, status: invalid, field: "type"},
		{name: "kind agreement.> → 422", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement.>","title":"MOU","parties":["IOM"]}`, status: invalid, field: "kind"},
		{name: "kind * → 422", method: "POST", path: "/v1/engagements", body: `{"kind":"*","title":"MOU","parties":["IOM"]}`, status: invalid, field: "kind"},
		{name: "link target that is a subject wildcard → 422", method: "POST", path: events(draft),
			body: `{"type":"engagement.linked","data":{"target_id":"engagements.>","relation":"references"}}`, status: invalid, field: "data.target_id"},

		// NUL bytes and broken encodings.
		{name: `\u0000 in the title → 422`, method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":"MOU\u0000","parties":["IOM"]}`, status: invalid, field: "title"},
		{name: `\u0000 in a party → 422`, method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":"MOU","parties":["IOM\u0000WHO"]}`, status: invalid, field: "parties"},
		{name: `\u0000 in a note → 422`, method: "POST", path: events(draft), body: `{"type":"engagement.noted","data":{"note":"a\u0000b"}}`, status: invalid, field: "data.note"},
		{name: `escaped lone surrogate in the title → 422`, method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":"MOU \ud800","parties":["IOM"]}`, status: invalid, field: "title"},
		{name: "raw NUL byte inside a string → 400", method: "POST", path: "/v1/engagements", body: "{\"kind\":\"agreement\",\"title\":\"MOU\x00\",\"parties\":[\"IOM\"]}", status: bad},
		{name: "raw NUL byte between members → 400", method: "POST", path: events(draft), body: "{\"type\":\"engagement.noted\",\x00\"data\":{\"note\":\"x\"}}", status: bad},
		{name: "invalid UTF-8 in a key → 400", method: "POST", path: events(draft), body: "{\"type\":\"engagement.noted\",\"data\":{\"no\xfete\":\"x\"}}", status: bad},
		{name: "overlong UTF-8 encoding of / → 400", method: "POST", path: events(draft), body: note("..\xc0\xaf.."), status: bad},
		{name: "UTF-8-encoded surrogate → 400", method: "POST", path: "/v1/engagements", body: "{\"kind\":\"agreement\",\"title\":\"MOU \xed\xa0\x80\",\"parties\":[\"IOM\"]}", status: bad},
		{name: "UTF-16 body → 400", method: "POST", path: events(draft), body: "\xff\xfe{\x00}\x00", status: bad},

		// Deep nesting and huge numbers.
		{name: "1000 nested arrays in data → 400", method: "POST", path: events(draft), body: `{"type":"engagement.noted","data":{"note":` + deepArrays(1000) + `}}`, status: bad},
		{name: "1000 nested objects as the title → 400", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","parties":["IOM"],"title":` + deepObjects(1000) + `}`, status: bad},
		{name: "1000 unclosed arrays → 400", method: "POST", path: "/v1/engagements", body: `{"kind":` + strings.Repeat("[", 1000), status: bad},
		{name: "title 1e400 → 400", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":1e400,"parties":["IOM"]}`, status: bad, field: "title"},
		{name: "title 123456789012345678901234567890 → 400", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":123456789012345678901234567890,"parties":["IOM"]}`, status: bad, field: "title"},
		{name: "data.signed_on 1e400 → 400", method: "POST", path: events(draft), body: `{"type":"agreement.signed","data":{"signed_on":1e400}}`, status: bad, field: "data.signed_on"},
		{name: "occurred_at 123456789012345678901234567890 → 400", method: "POST", path: events(draft), body: noteWith(`"occurred_at":123456789012345678901234567890`), status: bad, field: "occurred_at"},

		// Duplicate keys: two readers could see two different values.
		{name: "type twice at the top level → 400", method: "POST", path: events(draft), body: `{"type":"engagement.noted","type":"agreement.signed","data":{"note":"x","signed_on":"2020-01-15"}}`, status: bad},
		{name: "data twice → 400", method: "POST", path: events(draft), body: `{"type":"engagement.noted","data":{"note":"a"},"data":{"note":"b"}}`, status: bad},
		{name: "signed_on twice in data → 400", method: "POST", path: events(draft), body: `{"type":"agreement.signed","data":{"signed_on":"2020-01-15","signed_on":"2021-01-15"}}`, status: bad},
		{name: "duplicate key spelt with an escape → 400", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":"A","\u0074itle":"B","parties":["IOM"]}`, status: bad},
		{name: "duplicate key in a nested object → 400", method: "POST", path: events(draft), body: `{"type":"engagement.noted","data":{"note":"x","extra":{"a":1,"a":2}}}`, status: bad},

		// Wrong types.
		{name: "title as an array → 400", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":["MOU"],"parties":["IOM"]}`, status: bad, field: "title"},
		{name: "title as an object → 400", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":{"en":"MOU"},"parties":["IOM"]}`, status: bad, field: "title"},
		{name: "title as a bool → 400", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":true,"parties":["IOM"]}`, status: bad, field: "title"},
		{name: "parties as an object → 400", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":"MOU","parties":{"0":"IOM"}}`, status: bad, field: "parties"},
		{name: "parties of numbers → 400", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":"MOU","parties":[1,2]}`, status: bad, field: "parties"},
		{name: "kind as a number → 400", method: "POST", path: "/v1/engagements", body: `{"kind":1,"title":"MOU","parties":["IOM"]}`, status: bad, field: "kind"},
		{name: "data as an array → 400", method: "POST", path: events(draft), body: `{"type":"engagement.noted","data":[{"note":"x"}]}`, status: bad, field: "data"},
		{name: "data as a number → 400", method: "POST", path: events(draft), body: `{"type":"engagement.noted","data":1}`, status: bad, field: "data"},
		{name: "type as an array → 400", method: "POST", path: events(draft), body: `{"type":["engagement.noted"],"data":{"note":"x"}}`, status: bad, field: "type"},
		{name: "occurred_at as a bool → 400", method: "POST", path: "/v1/engagements", body: recorded(`"occurred_at":true`), status: bad, field: "occurred_at"},

		// Dates out of range.
		{name: "occurred_at 0000-01-01 → 422", method: "POST", path: events(draft), body: noteWith(`"occurred_at":"0000-01-01"`), status: invalid, field: "occurred_at"},
		{name: "occurred_at 0001-01-01 (Go's zero time) → 422", method: "POST", path: events(draft), body: noteWith(`"occurred_at":"0001-01-01T00:00:00Z"`), status: invalid, field: "occurred_at"},
		{name: "new engagement occurred 0001-01-01 → 422", method: "POST", path: "/v1/engagements", body: recorded(`"occurred_at":"0001-01-01"`), status: invalid, field: "occurred_at"},
		{name: "occurred_at 99999-01-01 → 422", method: "POST", path: events(draft), body: noteWith(`"occurred_at":"99999-01-01"`), status: invalid, field: "occurred_at"},
		{name: "occurred_at 1899-12-31 → 422", method: "POST", path: "/v1/engagements", body: recorded(`"occurred_at":"1899-12-31"`), status: invalid, field: "occurred_at"},
		{name: "occurred_at 50 years ahead → 422", method: "POST", path: events(draft), body: noteWith(`"occurred_at":"` + farFuture + `"`), status: invalid, field: "occurred_at"},
		{name: "occurred_at 9999-12-31T23:59:59Z → 422", method: "POST", path: "/v1/engagements", body: recorded(`"occurred_at":"9999-12-31T23:59:59Z"`), status: invalid, field: "occurred_at"},
		{name: "data.signed_on 0000-01-01 → 422", method: "POST", path: events(draft), body: `{"type":"agreement.signed","data":{"signed_on":"0000-01-01"}}`, status: invalid, field: "data.signed_on"},
		{name: "data.signed_on 99999-12-31 → 422", method: "POST", path: events(draft), body: `{"type":"agreement.signed","data":{"signed_on":"99999-12-31"}}`, status: invalid, field: "data.signed_on"},
		{name: "data.expires_on 0000-02-30 → 422", method: "POST", path: events(draft), body: `{"type":"agreement.signed","data":{"signed_on":"2020-01-15","expires_on":"0000-02-30"}}`, status: invalid, field: "data.expires_on"},

		// Oversized bodies, announced or not.
		{name: "10 MB body with Content-Length → 413", method: "POST", path: events(draft), body: tenMB, status: tooLarge},
		{name: "10 MB chunked body → 413", method: "POST", path: events(draft), body: tenMB, chunked: true, status: tooLarge},
		{name: "10 MB chunked new engagement → 413", method: "POST", path: "/v1/engagements", body: tenMB, chunked: true, status: tooLarge},

		// Unknown fields: a client must not pick its own id, version or status.
		{name: "client-chosen event id → 400", method: "POST", path: events(draft), body: noteWith(`"id":"` + newID() + `"`), status: bad, field: "id"},
		{name: "client-chosen version → 400", method: "POST", path: events(draft), body: noteWith(`"version":1`), status: bad, field: "version"},
		{name: "type in a different case as a second field → 400", method: "POST", path: events(draft), body: noteWith(`"Type":"agreement.signed"`), status: bad, field: "Type"},
		{name: "client-chosen id on create → 400", method: "POST", path: "/v1/engagements", body: recorded(`"id":"` + newID() + `"`), status: bad, field: "id"},
		{name: "client-chosen status on create → 400", method: "POST", path: "/v1/engagements", body: recorded(`"status":"active"`), status: bad, field: "status"},
		{name: "unknown field in data → 400", method: "POST", path: events(draft), body: `{"type":"engagement.noted","data":{"note":"x","kind":"policy"}}`, status: bad, field: "data.kind"},

		// Bodies that are not an object.
		{name: "no body on append → 400", method: "POST", path: events(draft), status: bad},
		{name: "no body on create → 400", method: "POST", path: "/v1/engagements", status: bad},
		{name: "null → 400", method: "POST", path: events(draft), body: `null`, status: bad},
		{name: "[] → 400", method: "POST", path: "/v1/engagements", body: `[]`, status: bad},
		{name: `"string" → 400`, method: "POST", path: events(draft), body: `"engagement.noted"`, status: bad},
		{name: "123 → 400", method: "POST", path: "/v1/engagements", body: `123`, status: bad},
		{name: "two objects → 400", method: "POST", path: "/v1/engagements", body: agreement("A") + agreement("B"), status: bad},

		// Content types other than JSON.
		{name: "text/plain → 415", method: "POST", path: events(draft), body: note("x"), header: []string{"Content-Type", "TEXT/PLAIN"}, status: unsupported},
		{name: "form → 415", method: "POST", path: "/v1/engagements", body: "kind=agreement&title=MOU&parties=IOM", header: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: unsupported},
		{name: "multipart form → 415", method: "POST", path: events(draft), body: note("x"), header: []string{"Content-Type", "multipart/form-data; boundary=x"}, status: unsupported},
		{name: "unparsable Content-Type → 415", method: "POST", path: events(draft), body: note("x"), header: []string{"Content-Type", "application/json; charset"}, status: unsupported},

		// List and log query parameters.
		{name: "list limit 0 → 400", method: "GET", path: "/v1/engagements?limit=0", status: bad, field: "limit"},
		{name: "list limit -1 → 400", method: "GET", path: "/v1/engagements?limit=-1", status: bad, field: "limit"},
		{name: "list limit 1001 → 400", method: "GET", path: "/v1/engagements?limit=1001", status: bad, field: "limit"},
		{name: "list limit 1e3 → 400", method: "GET", path: "/v1/engagements?limit=1e3", status: bad, field: "limit"},
		{name: "list limit abc → 400", method: "GET", path: "/v1/engagements?limit=abc", status: bad, field: "limit"},
		{name: "list limit 123456789012345678901234567890 → 400", method: "GET", path: "/v1/engagements?limit=123456789012345678901234567890", status: bad, field: "limit"},
		{name: "list cursor that is a bare UUID → 400", method: "GET", path: "/v1/engagements?cursor=" + draft, status: bad, field: "cursor"},
		{name: "list cursor of an upper-case id → 400", method: "GET", path: "/v1/engagements?cursor=" + b64([]byte(upper)), status: bad, field: "cursor"},
		{name: "list cursor of a subject wildcard → 400", method: "GET", path: "/v1/engagements?cursor=" + b64([]byte("engagements.>")), status: bad, field: "cursor"},
		{name: "list cursor with a NUL → 400", method: "GET", path: "/v1/engagements?cursor=%00", status: bad, field: "cursor"},
		{name: "list q over 200 bytes → 400", method: "GET", path: "/v1/engagements?q=" + strings.Repeat("x", 201), status: bad, field: "q"},
		{name: "log type > → 400", method: "GET", path: "/v1/events?type=%3E", status: bad, field: "type"},
		{name: "log type * → 400", method: "GET", path: "/v1/events?type=*", status: bad, field: "type"},
		{name: "log type engagements.> → 400", method: "GET", path: "/v1/events?type=engagements.%3E", status: bad, field: "type"},
		{name: "log type .* → 400", method: "GET", path: "/v1/events?type=.*", status: bad, field: "type"},
		{name: "log limit 1e3 → 400", method: "GET", path: "/v1/events?limit=1e3", status: bad, field: "limit"},
		{name: "log after -1 → 400", method: "GET", path: "/v1/events?after=-1", status: bad, field: "after"},
		{name: "log after beyond uint64 → 400", method: "GET", path: "/v1/events?after=123456789012345678901234567890", status: bad, field: "after"},
		{name: "export type > → 400", method: "GET", path: "/v1/events/export?type=%3E", status: bad, field: "type"},
		{name: "export to year 0 → 400", method: "GET", path: "/v1/events/export?to=0000-01-01", status: bad, field: "to"},

		// As-of and known-at.
		{name: "as_of garbage → 400", method: "GET", path: "/v1/engagements/" + active + "?as_of=%00%3E", status: bad, field: "as_of"},
		{name: "as_of year 0 → 400", method: "GET", path: "/v1/engagements/" + active + "?as_of=0000-01-01", status: bad, field: "as_of"},
		{name: "as_of year 99999 → 400", method: "GET", path: "/v1/engagements?as_of=99999-01-01", status: bad, field: "as_of"},
		{name: "known_at year 0 → 400", method: "GET", path: "/v1/engagements?known_at=0000-01-01T00:00:00Z", status: bad, field: "known_at"},
		{name: "known_at garbage on history → 400", method: "GET", path: "/v1/engagements/" + active + "/history?known_at=" + url.QueryEscape("2018-01-01 00:00"), status: bad, field: "known_at"},

		// Headers.
		{name: "If-Match W/\"x\" → 400", method: "POST", path: events(draft), body: note("x"), header: []string{"If-Match", `W/"x"`}, status: bad, field: "If-Match"},
		{name: "If-Match \"0\" → 400", method: "POST", path: events(draft), body: note("x"), header: []string{"If-Match", `"0"`}, status: bad, field: "If-Match"},
		{name: "If-Match list → 400", method: "POST", path: events(draft), body: note("x"), header: []string{"If-Match", `"1", "2"`}, status: bad, field: "If-Match"},
		{name: "If-Match beyond int → 400", method: "POST", path: events(draft), body: note("x"), header: []string{"If-Match", `"123456789012345678901234567890"`}, status: bad, field: "If-Match"},
		{name: "If-Match without quotes → 400", method: "POST", path: events(draft), body: note("x"), header: []string{"If-Match", `1`}, status: bad, field: "If-Match"},
		{name: "Idempotency-Key with a space → 400", method: "POST", path: events(draft), body: note("x"), header: []string{"Idempotency-Key", "a b"}, status: bad, field: "Idempotency-Key"},
		{name: "Idempotency-Key with a tab → 400", method: "POST", path: "/v1/engagements", body: agreement("MOU"), header: []string{"Idempotency-Key", "a\tb"}, status: bad, field: "Idempotency-Key"},
		{name: "Idempotency-Key of 300 characters → 400", method: "POST", path: events(draft), body: note("x"), header: []string{"Idempotency-Key", strings.Repeat("k", 300)}, status: bad, field: "Idempotency-Key"},
		{name: "X-Actor with a tab → 400", method: "POST", path: events(draft), body: note("x"), header: []string{"X-Actor", "ali\tce"}, status: bad, field: "X-Actor"},
		{name: "X-Actor with non-ASCII bytes → 400", method: "POST", path: "/v1/engagements", body: agreement("MOU"), header: []string{"X-Actor", "José"}, status: bad, field: "X-Actor"},
		{name: "X-Actor of 300 characters → 400", method: "POST", path: events(draft), body: note("x"), header: []string{"X-Actor", strings.Repeat("a", 300)}, status: bad, field: "X-Actor"},
		{name: "X-Correlation-ID with a space → 400", method: "POST", path: events(draft), body: note("x"), header: []string{"X-Correlation-ID", "a b"}, status: bad, field: "X-Correlation-ID"},

		// Limits on sizes.
		{name: "title of 301 characters → 422", method: "POST", path: "/v1/engagements", body: agreement(strings.Repeat("t", 301)), status: invalid, field: "title"},
		{name: "title of 301 multi-byte characters → 422", method: "POST", path: "/v1/engagements", body: agreement(strings.Repeat("é", 301)), status: invalid, field: "title"},
		{name: "note of 10 001 characters → 422", method: "POST", path: events(draft), body: note(strings.Repeat("n", 10_001)), status: invalid, field: "data.note"},
		{name: "51 parties → 422", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":"MOU","parties":[` + strings.Join(parties, ",") + `]}`, status: invalid, field: "parties"},
		{name: "party of 101 characters → 422", method: "POST", path: "/v1/engagements", body: `{"kind":"agreement","title":"MOU","parties":["` + strings.Repeat("p", 101) + `"]}`, status: invalid, field: "parties"},
		{name: "title of spaces only → 422", method: "POST", path: "/v1/engagements", body: agreement(" \t "), status: invalid, field: "title"},

		// Methods the API does not offer.
		{name: "DELETE an engagement → 405", method: "DELETE", path: "/v1/engagements/" + draft, status: notAllowed},
		{name: "PUT an engagement → 405", method: "PUT", path: "/v1/engagements/" + draft, body: agreement("MOU"), status: notAllowed},
		{name: "PATCH the collection → 405", method: "PATCH", path: "/v1/engagements", body: `{}`, status: notAllowed},
		{name: "GET the events of one engagement → 405", method: "GET", path: events(draft), status: notAllowed},
		{name: "TRACE the log → 405", method: "TRACE", path: "/v1/events", status: notAllowed},
	}

	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			var body io.Reader
			if row.body != "" {
				body = strings.NewReader(row.body)
			}
			req, err := ts.newRequest(row.method, row.path, body, row.header...)
			if err != nil {
				t.Fatal(err)
			}
			if row.chunked {
				req.ContentLength = -1
				req.Body = io.NopCloser(io.MultiReader(body)) // hides the length
			}
			r, err := ts.send(req)
			if err != nil {
				t.Fatalf("%s %s: %v", row.method, truncated(row.path), err)
			}
			want := row.statuses
			if want == nil {
				want = []int{row.status}
			}
			if r.status >= 500 || !slices.Contains(want, r.status) {
				t.Fatalf("status %d, want %v; body %s", r.status, want, truncated(string(r.body)))
			}
			checkProblem(t, r, row.field)
		})
	}

	if after := ts.lastSequence(t); after != before {
		t.Errorf("stream at sequence %d after hostile requests, want %d: something was stored", after, before)
	}
	for id, tag := range seeded {
		r := ts.get(t, "/v1/engagements/"+id)
		if r.status != http.StatusOK || r.header.Get("ETag") != tag {
			t.Errorf("engagement %s after hostile requests: %d ETag %s, want 200 ETag %s", id, r.status, r.header.Get("ETag"), tag)
		}
	}
}

func truncated(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
