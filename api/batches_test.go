package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/iom-who/engagements/api"
)

// batchResult is one command's result in a batch's answer.
type batchResult struct {
	Index        int       `json:"index"`
	Status       int       `json:"status"`
	EngagementID string    `json:"engagement_id"`
	Event        *appended `json:"event"`
	Replayed     bool      `json:"replayed"`
	Problem      *struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	} `json:"problem"`
}

type batchAnswer struct {
	Results  []batchResult `json:"results"`
	Appended int           `json:"appended"`
	Replayed int           `json:"replayed"`
	Refused  int           `json:"refused"`
}

const ndjson = "application/x-ndjson"

// batch posts lines as an NDJSON batch and decodes the 200 answer.
func (ts *testServer) batch(t *testing.T, lines ...string) batchAnswer {
	t.Helper()
	r := ts.post(t, "/v1/batches", strings.Join(lines, "\n")+"\n", "Content-Type", ndjson)
	if r.status != http.StatusOK {
		t.Fatalf("batch: %s", r)
	}
	a := decode[batchAnswer](t, r)
	if len(a.Results) != len(lines) {
		t.Fatalf("%d results for %d commands: %s", len(a.Results), len(lines), r)
	}
	for i, res := range a.Results {
		if res.Index != i {
			t.Fatalf("result %d has index %d", i, res.Index)
		}
	}
	return a
}

func appendCmd(id, event string, more ...string) string {
	extra := ""
	for i := 0; i+1 < len(more); i += 2 {
		extra += fmt.Sprintf(",%q:%s", more[i], more[i+1])
	}
	return fmt.Sprintf(`{"op":"append","engagement_id":%q%s,%s`, id, extra, strings.TrimPrefix(event, "{"))
}

func createCmd(body string, more ...string) string {
	extra := ""
	for i := 0; i+1 < len(more); i += 2 {
		extra += fmt.Sprintf(",%q:%s", more[i], more[i+1])
	}
	return `{"op":"create"` + extra + "," + strings.TrimPrefix(body, "{")
}

// TestBatchStatusesInOrder sends valid, invalid and conflicting commands in
// one batch: each gets its own status in order, a refusal makes the later
// commands for its engagement 424 and stores none of them, and the other
// engagements' commands are stored.
func TestBatchStatusesInOrder(t *testing.T) {
	ts := newTestServer(t)
	a := ts.create(t, agreement("A"))
	b := ts.create(t, agreement("B"))
	c := ts.create(t, agreement("C"))
	before := ts.lastSequence(t)

	ans := ts.batch(t,
		createCmd(agreement("new one")),                                                 // 0: 201
		appendCmd(a, signed),                                                            // 1: 201, A at version 2
		appendCmd(a, note("stale"), "if_match", "1"),                                    // 2: 412
		appendCmd(a, note("after the stale one")),                                       // 3: 424 (2)
		appendCmd(b, `{"type":"agreement.renewed","data":{"renewed_on":"2021-01-01"}}`), // 4: 422, a draft is not renewed
		appendCmd(b, note("after the refused renewal")),                                 // 5: 424 (4)
		createCmd(`{"kind":"agreement","parties":["IOM"]}`),                             // 6: 422, no title
		appendCmd(newID(), note("nobody")),                                              // 7: 404
		appendCmd(c, signed, "if_match", "1"),                                           // 8: 201
		appendCmd(a, note("still after the stale one")),                                 // 9: 424 (2)
		appendCmd(c, note("after signing")),                                             // 10: 201
		appendCmd(b, `{"type":"agreement.torn_up"}`),                                    // 11: 424 (4)
		createCmd(`{"kind":"treaty","title":"x","parties":["IOM"]}`),                    // 12: 422
		appendCmd(c, `{"type":"agreement.torn_up"}`),                                    // 13: 422 unknown type
		appendCmd(c, note("after the unknown type")),                                    // 14: 424 (13)
		createCmd(`{"kind":"agreement","title":7,"parties":["IOM"]}`),                   // 15: 400, as the single request
	)
	want := []struct {
		status int
		typ    string
		detail string
	}{
		{201, "", ""}, {201, "", ""}, {412, "version-mismatch", ""}, {424, "failed-dependency", "command 2,"},
		{422, "invalid-transition", ""}, {424, "failed-dependency", "command 4,"}, {422, "validation-error", ""},
		{404, "not-found", ""}, {201, "", ""}, {424, "failed-dependency", "command 2,"}, {201, "", ""},
		{424, "failed-dependency", "command 4,"}, {422, "validation-error", ""}, {422, "unknown-event-type", ""},
		{424, "failed-dependency", "command 13,"}, {400, "malformed-request", ""},
	}
	for i, w := range want {
		res := ans.Results[i]
		if res.Status != w.status {
			t.Errorf("command %d: status %d, want %d (%+v)", i, res.Status, w.status, res.Problem)
			continue
		}
		if w.status == 201 {
			if res.Event == nil || res.Problem != nil || res.EngagementID == "" || res.Replayed {
				t.Errorf("command %d: 201 without its event: %+v", i, res)
			}
			continue
		}
		if res.Problem == nil || res.Problem.Type != api.ProblemBase+w.typ || res.Problem.Status != w.status ||
			!strings.Contains(res.Problem.Detail, w.detail) || res.Event != nil {
			t.Errorf("command %d: problem %+v, want %s (%q)", i, res.Problem, w.typ, w.detail)
		}
	}
	if ans.Appended != 4 || ans.Refused != 12 || ans.Replayed != 0 {
		t.Errorf("appended %d, refused %d, replayed %d; want 4, 12, 0", ans.Appended, ans.Refused, ans.Replayed)
	}
	if got := ts.lastSequence(t); got != before+4 {
		t.Errorf("the stream grew by %d, want 4 (the 201s only)", got-before)
	}
	// A: recorded and signed, nothing after the stale If-Match.
	if h := ts.history(t, a); len(h) != 2 || h[1].Type != "agreement.signed" {
		t.Errorf("A's history: %+v", h)
	}
	if h := ts.history(t, b); len(h) != 1 {
		t.Errorf("B's history has %d events, want only its recording", len(h))
	}
	// C: signed, then noted, in that order.
	h := ts.history(t, c)
	if len(h) != 3 || h[1].Type != "agreement.signed" || h[2].Type != "engagement.noted" ||
		ans.Results[8].Event.Sequence >= ans.Results[10].Event.Sequence {
		t.Errorf("C's history: %+v", h)
	}
	if e := ts.state(t, ans.Results[0].EngagementID); e.Title != "new one" || e.Version != 1 {
		t.Errorf("the engagement the batch recorded: %+v", e)
	}
}

// TestBatchOneEngagementInOrder appends many events to one engagement among
// others in one batch: they are stored in the order sent.
func TestBatchOneEngagementInOrder(t *testing.T) {
	ts := newTestServer(t)
	one := ts.create(t, agreement("one"))
	others := make([]string, 20)
	for i := range others {
		others[i] = ts.create(t, agreement(fmt.Sprint("other ", i)))
	}
	var lines []string
	for i := range 200 {
		lines = append(lines, appendCmd(one, note(fmt.Sprint("note ", i))))
		lines = append(lines, appendCmd(others[i%len(others)], note(fmt.Sprint("other note ", i))))
	}
	ans := ts.batch(t, lines...)
	if ans.Appended != len(lines) {
		t.Fatalf("appended %d of %d", ans.Appended, len(lines))
	}
	for i := range 200 {
		if v := ans.Results[2*i].Event.Version; v != i+2 {
			t.Fatalf("note %d got version %d, want %d", i, v, i+2)
		}
	}
	h := ts.history(t, one)
	if len(h) != 201 {
		t.Fatalf("%d events, want 201", len(h))
	}
	for i, ev := range h[1:] {
		var d struct{ Note string }
		if err := json.Unmarshal(ev.Data, &d); err != nil || d.Note != fmt.Sprint("note ", i) {
			t.Fatalf("event %d is %s, want note %d", i+1, ev.Data, i)
		}
	}
}

// TestBatchIdempotentReplay sends a batch with idempotency keys twice (once
// as NDJSON, once as a JSON array): the second time every command answers
// with the first result, replayed, and nothing new is stored.
func TestBatchIdempotentReplay(t *testing.T) {
	ts := newTestServer(t)
	a := ts.create(t, agreement("A"))
	lines := []string{
		createCmd(agreement("keyed"), "idempotency_key", `"row-1"`),
		appendCmd(a, signed, "idempotency_key", `"row-2"`),
		appendCmd(a, note("keyed note"), "idempotency_key", `"row-3"`),
	}
	first := ts.batch(t, lines...)
	if first.Appended != 3 {
		t.Fatalf("first run: %+v", first)
	}
	seq := ts.lastSequence(t)
	r := ts.post(t, "/v1/batches", "["+strings.Join(lines, ",")+"]")
	if r.status != http.StatusOK {
		t.Fatalf("second run: %s", r)
	}
	second := decode[batchAnswer](t, r)
	if second.Replayed != 3 || second.Appended != 0 {
		t.Fatalf("second run: %+v", second)
	}
	for i := range lines {
		f, s := first.Results[i], second.Results[i]
		if s.Status != 201 || !s.Replayed || s.EngagementID != f.EngagementID || *s.Event != *f.Event {
			t.Errorf("command %d: second %+v, first %+v", i, s, f)
		}
	}
	if got := ts.lastSequence(t); got != seq {
		t.Errorf("the replay stored %d messages", got-seq)
	}
	if h := ts.history(t, a); len(h) != 3 {
		t.Errorf("A has %d events, want 3", len(h))
	}
}

// TestBatchRefusedWhole holds the batch's limits: a body that is not a
// batch of well-formed commands is refused whole, names what is wrong,
// and stores nothing.
func TestBatchRefusedWhole(t *testing.T) {
	ts := newTestServer(t)
	a := ts.create(t, agreement("A"))
	ok := appendCmd(a, note("fine"))
	many := strings.Repeat(ok+"\n", 1001)
	big := createCmd(`{"kind":"agreement","title":"x","parties":["IOM"],"description":"` +
		strings.Repeat("a", 900<<10) + `"}`)
	huge := strings.Repeat(big+"\n", 19) // 19 × 900 KiB > 16 MiB
	for _, tc := range []struct {
		name, body, ct string
		header         []string
		status         int
		field          string // a field error the answer must name
	}{
		{"1001 commands", many, ndjson, nil, 413, ""},
		{"1001 commands in an array", "[" + strings.TrimSuffix(strings.ReplaceAll(many, "\n", ","), ",") + "]",
			"application/json", nil, 413, ""},
		{"over 16 MiB", huge, ndjson, nil, 413, ""},
		{"a command over 1 MiB", createCmd(`{"kind":"agreement","title":"x","parties":["IOM"],"description":"` +
			strings.Repeat("a", api.MaxBody) + `"}`), ndjson, nil, 400, "line 1"},
		{"a bad JSON line", ok + "\n" + ok + "\n" + `{"op":"append",` + "\n" + ok, ndjson, nil, 400, "line 3"},
		{"a line that is no object", ok + "\n\n" + `["op"]`, ndjson, nil, 400, "line 3"},
		{"duplicate keys", `{"op":"append","op":"create"}`, ndjson, nil, 400, "line 1"},
		{"an unknown op", ok + "\n" + `{"op":"delete","engagement_id":"` + a + `"}`, ndjson, nil, 400, "line 2: op"},
		{"no op", `{"engagement_id":"` + a + `","type":"engagement.noted","data":{"note":"x"}}`, ndjson, nil, 400, "line 1: op"},
		{"an unknown field", appendCmd(a, note("x"), "status", `"x"`), ndjson, nil, 400, "line 1: status"},
		{"a bad engagement id", appendCmd("../x", note("x")), ndjson, nil, 400, "line 1: engagement_id"},
		{"no engagement id", `{"op":"append","type":"engagement.noted","data":{"note":"x"}}`, ndjson, nil, 400, "line 1: engagement_id"},
		{"if_match on a create", createCmd(agreement("x"), "if_match", "1"), ndjson, nil, 400, "line 1: if_match"},
		{"a bad if_match", appendCmd(a, note("x"), "if_match", `"1"`), ndjson, nil, 400, "line 1: if_match"},
		{"a bad idempotency key", appendCmd(a, note("x"), "idempotency_key", `"a b"`), ndjson, nil, 400, "line 1: idempotency_key"},
		{"an array element that is no object", "[" + ok + ",7]", "application/json", nil, 400, "[1]"},
		{"a broken array", "[" + ok + ",{]", "application/json", nil, 400, "[1]"},
		{"an object, not an array", ok, "application/json", nil, 400, ""},
		{"an empty batch", "\n\n", ndjson, nil, 400, ""},
		{"an empty array", "[]", "application/json", nil, 400, ""},
		{"the Idempotency-Key header", ok, ndjson, []string{"Idempotency-Key", "k"}, 400, "Idempotency-Key"},
		{"text/plain", ok, "text/plain", nil, 415, ""},
		{"no Content-Type", ok, "", nil, 415, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.lastSequence(t)
			header := append([]string{"Content-Type", tc.ct}, tc.header...)
			req, err := ts.newRequest(http.MethodPost, "/v1/batches", strings.NewReader(tc.body), header...)
			if err != nil {
				t.Fatal(err)
			}
			if tc.ct == "" {
				req.Header.Del("Content-Type")
			}
			r, err := ts.send(req)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != tc.status || mediaType(r.header) != "application/problem+json" {
				t.Fatalf("got %s, want %d problem", r, tc.status)
			}
			var p struct {
				Errors []struct{ Field, Message string }
			}
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			if tc.field != "" && !slices.ContainsFunc(p.Errors, func(e struct{ Field, Message string }) bool {
				return e.Field == tc.field
			}) {
				t.Errorf("the problem does not name %q: %s", tc.field, r.body)
			}
			if got := ts.lastSequence(t); got != before {
				t.Errorf("a refused batch stored %d messages", got-before)
			}
		})
	}
	// 1000 commands are taken.
	r := ts.post(t, "/v1/batches", strings.Repeat(ok+"\n", 1000), "Content-Type", ndjson)
	if r.status != http.StatusOK || decode[batchAnswer](t, r).Appended != 1000 {
		t.Fatalf("1000 commands: %.300s", r)
	}
}

// BenchmarkBatch appends 1000 events over 100 engagements per batch (under
// --sync always, so through group commit) and reports events per second,
// next to the same events as single requests from 64 clients.
func BenchmarkBatch(b *testing.B) {
	ts := newTestServer(b)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = ts.create(b, agreement(fmt.Sprint("bench ", i)))
	}
	lines := make([]string, 1000)
	for i := range lines {
		lines[i] = appendCmd(ids[i%len(ids)], note(fmt.Sprint("note ", i)))
	}
	body := strings.Join(lines, "\n")
	b.Run("batch", func(b *testing.B) {
		for b.Loop() {
			r := ts.post(b, "/v1/batches", body, "Content-Type", ndjson)
			if r.status != http.StatusOK || decode[batchAnswer](b, r).Appended != len(lines) {
				b.Fatalf("batch: %.300s", r)
			}
		}
		b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "events/s")
	})
	// spread is the shape of an import: each command to an engagement of
	// its own, each with an idempotency key.
	spread := make([]string, 1000)
	for i := range spread {
		spread[i] = ts.create(b, agreement(fmt.Sprint("spread ", i)))
	}
	b.Run("spread", func(b *testing.B) {
		n := 0
		for b.Loop() {
			for i := range lines {
				n++
				lines[i] = appendCmd(spread[i], note(fmt.Sprint("note ", n)), "idempotency_key", fmt.Sprintf(`"k%d"`, n))
			}
			r := ts.post(b, "/v1/batches", strings.Join(lines, "\n"), "Content-Type", ndjson)
			if r.status != http.StatusOK || decode[batchAnswer](b, r).Appended != len(lines) {
				b.Fatalf("batch: %.300s", r)
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("single", func(b *testing.B) {
		for b.Loop() {
			work := make(chan int)
			done := make(chan error)
			for range 64 {
				go func() {
					var err error
					for i := range work {
						r, e := ts.do(http.MethodPost, "/v1/engagements/"+ids[i%len(ids)]+"/events", note("single"))
						if e == nil && r.status != http.StatusCreated {
							e = fmt.Errorf("append: %s", r)
						}
						if err == nil {
							err = e
						}
					}
					done <- err
				}()
			}
			for i := range lines {
				work <- i
			}
			close(work)
			for range 64 {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "events/s")
	})
}
