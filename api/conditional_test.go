package api_test

import (
	"net/http"
	"testing"
)

// If-None-Match on GET /v1/engagements/{id} as RFC 9110 says: "*" matches
// an engagement that exists, entity-tags compare weakly (W/"3" is "3"), a
// list matches when any of its tags does, over one field line or several.
func TestGetIfNoneMatchForms(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("Cached MOU"))
	ts.appendEvent(t, id, note("two"))
	ts.appendEvent(t, id, note("three")) // at version 3
	path := "/v1/engagements/" + id

	for _, row := range []struct {
		name  string
		lines []string // the If-None-Match field lines
		want  int
	}{
		{"the current ETag → 304", []string{`"3"`}, http.StatusNotModified},
		{"the current ETag, weak → 304", []string{`W/"3"`}, http.StatusNotModified},
		{"* → 304", []string{`*`}, http.StatusNotModified},
		{"a list holding the current ETag → 304", []string{`"2", "3"`}, http.StatusNotModified},
		{"a list without spaces → 304", []string{`"1","3"`}, http.StatusNotModified},
		{"a list of weak ETags → 304", []string{`W/"1", W/"3"`}, http.StatusNotModified},
		{"a list with empty elements → 304", []string{` , "2" ,, "3" `}, http.StatusNotModified},
		{"the current ETag on a second field line → 304", []string{`"1"`, `"3"`}, http.StatusNotModified},
		{"an old ETag → 200", []string{`"2"`}, http.StatusOK},
		{"an old ETag, weak → 200", []string{`W/"2"`}, http.StatusOK},
		{"a list of other ETags → 200", []string{`"2", "4"`}, http.StatusOK},
		{"another spelling of the number → 200", []string{`"03"`}, http.StatusOK},
		{"an unquoted version → 200", []string{`3`}, http.StatusOK},
		{"an unterminated ETag → 200", []string{`"3`}, http.StatusOK},
		{"a tag after something that is no ETag → 200", []string{`3, "3"`}, http.StatusOK},
		{"empty → 200", []string{``}, http.StatusOK},
	} {
		t.Run(row.name, func(t *testing.T) {
			req, err := ts.newRequest(http.MethodGet, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range row.lines {
				req.Header.Add("If-None-Match", l)
			}
			r, err := ts.send(req)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != row.want || r.header.Get("ETag") != `"3"` {
				t.Fatalf("If-None-Match %q: %s with ETag %s, want %d with ETag \"3\"", row.lines, r, r.header.Get("ETag"), row.want)
			}
			if row.want == http.StatusNotModified && len(r.body) != 0 {
				t.Errorf("304 with a body: %s", r.body)
			}
			if row.want == http.StatusOK && decode[engagement](t, r).Version != 3 {
				t.Errorf("200 not at version 3: %s", r)
			}
		})
	}

	// * matches only what exists.
	if r := ts.get(t, "/v1/engagements/"+newID(), "If-None-Match", "*"); r.status != http.StatusNotFound {
		t.Errorf("If-None-Match * on a missing engagement: %s, want 404", r)
	}
}
