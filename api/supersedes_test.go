package api_test

import (
	"fmt"
	"net/http"
	"testing"
)

// Supersedes links may not form a cycle, of two engagements or more, by a
// link or by the correction of one: 422 on data.target_id (on
// data.fields.target_id or data.fields.relation for a correction), nothing
// stored. Other relations
// and supersedes links that only converge are fine.
func TestSupersedesLinksFormNoCycle(t *testing.T) {
	ts := newTestServer(t)
	a := ts.create(t, agreement("A"))
	b := ts.create(t, agreement("B"))
	c := ts.create(t, agreement("C"))
	d := ts.create(t, agreement("D"))
	link := func(target, relation string) string {
		return fmt.Sprintf(`{"type":"engagement.linked","data":{"target_id":%q,"relation":%q}}`, target, relation)
	}
	events := map[string]string{} // link event ids by row name
	correct := func(row, field, value string) string {
		return fmt.Sprintf(`{"type":"engagement.corrected","data":{"corrects":%q,"reason":"wrong link","fields":{%q:%q}}}`,
			events[row], field, value)
	}

	for _, row := range []struct {
		name  string
		on    string
		body  func() string
		want  int
		field string
	}{
		{"A supersedes B → 201", a, func() string { return link(b, "supersedes") }, http.StatusCreated, ""},
		{"B supersedes A → 422", b, func() string { return link(a, "supersedes") }, http.StatusUnprocessableEntity, "data.target_id"},
		{"B supersedes C → 201", b, func() string { return link(c, "supersedes") }, http.StatusCreated, ""},
		{"C supersedes A (A→B→C→A) → 422", c, func() string { return link(a, "supersedes") }, http.StatusUnprocessableEntity, "data.target_id"},
		{"A supersedes C (converging, no cycle) → 201", a, func() string { return link(c, "supersedes") }, http.StatusCreated, ""},
		{"C references A (not supersedes) → 201", c, func() string { return link(a, "references") }, http.StatusCreated, ""},
		{"correcting C's reference to A into supersedes → 422", c,
			func() string { return correct("C references A (not supersedes) → 201", "relation", "supersedes") },
			http.StatusUnprocessableEntity, "data.fields.relation"},
		{"D supersedes A → 201", d, func() string { return link(a, "supersedes") }, http.StatusCreated, ""},
		{"correcting B's link to C to point at D (B→D→A→B) → 422", b,
			func() string { return correct("B supersedes C → 201", "target_id", d) },
			http.StatusUnprocessableEntity, "data.fields.target_id"},
		{"C supersedes D (C→D→A→B→C) → 422", c, func() string { return link(d, "supersedes") }, http.StatusUnprocessableEntity, "data.target_id"},
		{"D supersedes C (converging) → 201", d, func() string { return link(c, "supersedes") }, http.StatusCreated, ""},
	} {
		t.Run(row.name, func(t *testing.T) {
			before := ts.lastSequence(t)
			r := ts.post(t, "/v1/engagements/"+row.on+"/events", row.body())
			if r.status != row.want {
				t.Fatalf("%s, want %d", r, row.want)
			}
			if row.want == http.StatusCreated {
				events[row.name] = decode[appended](t, r).ID
				return
			}
			checkProblem(t, r, row.field)
			if after := ts.lastSequence(t); after != before {
				t.Errorf("the stream moved from %d to %d on a refusal", before, after)
			}
		})
	}
}
