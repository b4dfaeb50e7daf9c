package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/iom-who/engagements/api"
)

// Targets of FuzzRequestBody: the low bits of its first argument pick one,
// bit 6 hides the body's length (chunked), bit 7 repeats the body past MaxBody.
const (
	fuzzCreate = iota
	fuzzAgreement
	fuzzPolicy
	fuzzInitiative
	fuzzMeeting
	fuzzTargets

	fuzzChunked  = 1 << 6
	fuzzOversize = 1 << 7
)

// FuzzRequestBody sends arbitrary bodies and Content-Types to the two write
// routes of the real server (real store, projector and handlers; requests go
// to the handler directly, without a socket): recording an engagement, and
// appending an event to an engagement of each kind. Whatever arrives, the
// server must not panic or answer 5xx: it stores the event (201, JSON) or
// refuses it with 400, 413, 415 or 422 as a problem document whose status
// matches the response.
func FuzzRequestBody(f *testing.F) {
	ts := newTestServer(f)
	ids := []string{
		fuzzAgreement:  ts.create(f, agreement("Fuzzed MOU")),
		fuzzPolicy:     ts.create(f, `{"kind":"policy","title":"Fuzzed policy","parties":["IOM"],"instrument":"framework"}`),
		fuzzInitiative: ts.create(f, `{"kind":"initiative","title":"Fuzzed initiative","parties":["IOM"]}`),
		fuzzMeeting:    ts.create(f, `{"kind":"meeting","title":"Fuzzed meeting","parties":["IOM"],"level":"technical"}`),
	}
	for _, s := range []struct {
		target      byte
		contentType string
		body        string
	}{
		{fuzzCreate, "application/json", agreement("MOU")},
		{fuzzCreate, "application/json; charset=utf-8", `{"kind":"policy","title":"P","parties":["IOM"],"instrument":"report","occurred_at":"2024-03-01"}`},
		{fuzzCreate, "application/merge-patch+json", `{"kind":"meeting","title":"M","parties":["IOM","iom"]}`},
		{fuzzAgreement, "application/json", signed},
		{fuzzAgreement, "", `{"type":"engagement.linked","data":{"target_id":"` + ids[fuzzPolicy] + `","relation":"references"}}`},
		{fuzzPolicy, "application/json", `{"type":"policy.contributed","occurred_at":"2024-03-01T09:00:00+02:00","data":{"contribution":"para 3","role":"co-author"}}`},
		{fuzzInitiative, "application/json", `{"type":"initiative.joined","data":{"role":"member"}}`},
		{fuzzMeeting, "application/json", `{"type":"meeting.scheduled","data":{"starts_on":"2024-05-27"}}`},
		{fuzzAgreement, "application/json", `{"type":"engagement.corrected","data":{"corrects":"` + ids[fuzzAgreement] + `","reason":"r","fields":{"title":"T"}}}`},
		{fuzzAgreement, "text/plain", note("hi")},
		{fuzzAgreement | fuzzChunked, "application/json", note("chunked")},
		{fuzzCreate | fuzzOversize, "application/json", `{"kind":"agreement","title":"` + strings.Repeat("x", 64) + `"}`},
		{fuzzMeeting, "application/json", `{"type":"engagement.noted","data":{"note":"a"},"data":{"note":"b"}}`},
	} {
		f.Add(s.target, s.contentType, []byte(s.body))
	}
	handler := ts.Config.Handler
	f.Fuzz(func(t *testing.T, target byte, contentType string, body []byte) {
		path := "/v1/engagements"
		if i := int(target&0x3f) % fuzzTargets; i != fuzzCreate {
			path += "/" + ids[i] + "/events"
		}
		if target&fuzzOversize != 0 && len(body) > 0 {
			body = bytes.Repeat(body, api.MaxBody/len(body)+1)
		}
		var rd io.Reader = bytes.NewReader(body)
		if target&fuzzChunked != 0 {
			rd = io.MultiReader(rd) // hides the length, as a chunked request does
		}
		req := httptest.NewRequest(http.MethodPost, path, rd)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)

		status, got := rec.Code, rec.Body.Bytes()
		mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
		if status == http.StatusCreated {
			var v map[string]any
			if mt != "application/json" || json.Unmarshal(got, &v) != nil || v["id"] == nil {
				t.Fatalf("POST %s %q: 201 with %s %s", path, truncated(string(body)), mt, got)
			}
			return
		}
		allowed := []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity}
		if !slices.Contains(allowed, status) {
			t.Fatalf("POST %s (%q) %q: status %d, want 201 or one of %v: %s",
				path, contentType, truncated(string(body)), status, allowed, got)
		}
		var p api.Problem
		if mt != "application/problem+json" || json.Unmarshal(got, &p) != nil {
			t.Fatalf("POST %s %q: %d is not a problem document (%s): %s", path, truncated(string(body)), status, mt, got)
		}
		if p.Status != status || !strings.HasPrefix(p.Type, api.ProblemBase) || p.Title == "" {
			t.Fatalf("POST %s %q: %d answered with problem %+v", path, truncated(string(body)), status, p)
		}
	})
}
