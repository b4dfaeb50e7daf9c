package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// A write must say its body is JSON: a body without a Content-Type, or with
// an empty one, is a 415 problem and nothing is stored, as with any other
// media type; application/json and +json types are taken. Without a body
// it is the missing body that is wrong (400), as before.
func TestWritesWithoutContentType(t *testing.T) {
	b := buildServer(t, setup{tokens: true})
	ts := b.testServer
	auth := "Bearer " + b.admin
	id := ts.create(t, agreement("Typed MOU"), "Authorization", auth)
	events := "/v1/engagements/" + id + "/events"

	for _, row := range []struct {
		name string
		path string
		body string
		ct   []string // Content-Type field lines; none when empty
		want int
	}{
		{"a new engagement without Content-Type → 415", "/v1/engagements", agreement("Untyped"), nil, http.StatusUnsupportedMediaType},
		{"an event without Content-Type → 415", events, note("untyped"), nil, http.StatusUnsupportedMediaType},
		{"an event with an empty Content-Type → 415", events, note("empty type"), []string{""}, http.StatusUnsupportedMediaType},
		{"no body and no Content-Type → 400 (the body is missing)", events, "", nil, http.StatusBadRequest},
		{"a token without Content-Type → 415", "/v1/tokens", `{"name":"untyped","role":"auditor"}`, nil, http.StatusUnsupportedMediaType},
		{"an event as application/json → 201", events, note("typed"), []string{"application/json"}, http.StatusCreated},
		{"an event as a +json type → 201", events, note("merge"), []string{"application/merge-patch+json"}, http.StatusCreated},
	} {
		t.Run(row.name, func(t *testing.T) {
			before := ts.lastSequence(t)
			req, err := http.NewRequest(http.MethodPost, ts.URL+row.path, strings.NewReader(row.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", auth)
			for _, v := range row.ct {
				req.Header.Add("Content-Type", v)
			}
			r, err := ts.send(req)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != row.want {
				t.Fatalf("%s, want %d", r, row.want)
			}
			if row.want == http.StatusCreated {
				return
			}
			checkProblem(t, r, "")
			if after := ts.lastSequence(t); after != before {
				t.Errorf("the stream moved from %d to %d on a refusal", before, after)
			}
		})
	}
	if r := ts.get(t, "/v1/tokens", "Authorization", auth); strings.Contains(string(r.body), "untyped") {
		t.Errorf("the token without Content-Type was created: %s", r)
	}
}
