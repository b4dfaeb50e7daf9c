package api_test

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// countingReader is the projection's Reader, counting the events it reads.
type countingReader struct {
	projections.Reader
	events, walks atomic.Int64
}

func (r *countingReader) Event(ctx context.Context, seq uint64) (domain.Event, error) {
	r.events.Add(1)
	return r.Reader.Event(ctx, seq)
}

func (r *countingReader) Read(ctx context.Context, after uint64, f domain.Filter) iter.Seq2[domain.Message, error] {
	r.walks.Add(1)
	return r.Reader.Read(ctx, after, f)
}

// History is paged by version when asked (after, before, limit), reading
// only the page's events from the stream; without those parameters it is
// the whole history, as it always was.
func TestHistoryPages(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("Paged MOU"))
	const notes = 120
	for range notes {
		ts.appendEvent(t, id, note("again"))
	}
	all := ts.history(t, id)
	if len(all) != notes+1 {
		t.Fatalf("%d events, want %d", len(all), notes+1)
	}
	stream := &countingReader{Reader: ts.store}
	ts.proj.UseReader(stream)

	for _, c := range []struct {
		query      string
		first, n   int // versions first … first+n-1
		maxReads   int64
		windowRead bool
	}{
		{"limit=50", 1, 50, 50, false},
		{"after=50&limit=50", 51, 50, 50, false},
		{"after=100&limit=50", 101, 21, 21, false},
		{"before=122&limit=10", 112, 10, 10, false},
		{"before=51&limit=50", 1, 50, 50, false},
		{"after=10&before=15", 11, 4, 4, false},
		{"after=121", 0, 0, 0, false},
		{"after=100&limit=5&known_at=" + url.QueryEscape(time.Now().UTC().Add(time.Hour).Format(time.RFC3339)), 101, 5, 22, true},
	} {
		before := stream.events.Load()
		r := ts.get(t, "/v1/engagements/"+id+"/history?"+c.query)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %s", c.query, r)
		}
		var body struct {
			Events []event `json:"events"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || body.Events == nil {
			t.Fatalf("%s: %v %s", c.query, err, r.body)
		}
		if len(body.Events) != c.n {
			t.Fatalf("%s: %d events, want %d", c.query, len(body.Events), c.n)
		}
		for i, ev := range body.Events {
			if want := all[c.first-1+i]; ev.Version != c.first+i || ev.ID != want.ID || ev.Sequence != want.Sequence {
				t.Errorf("%s: event %d is version %d (%s), want %d (%s)", c.query, i, ev.Version, ev.ID, c.first+i, want.ID)
			}
		}
		if n := stream.events.Load() - before; n > c.maxReads {
			t.Errorf("%s read %d events from the stream, want at most %d", c.query, n, c.maxReads)
		}
	}
	if w := stream.walks.Load(); w != 0 {
		t.Errorf("paged history walked the stream %d times", w)
	}

	// Without paging parameters: every event, as before.
	if h := ts.history(t, id); len(h) != notes+1 {
		t.Errorf("unpaged history: %d events, want %d", len(h), notes+1)
	}
	// Before it existed: 404, paged or not.
	for _, q := range []string{"as_of=1990-01-01", "as_of=1990-01-01&after=5&limit=5"} {
		if r := ts.get(t, "/v1/engagements/"+id+"/history?"+q); r.status != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", q, r)
		}
	}
	for _, bad := range []struct{ query, field string }{
		{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=x", "limit"},
		{"after=-1", "after"}, {"after=1.5", "after"}, {"before=0", "before"},
	} {
		r := ts.get(t, "/v1/engagements/"+id+"/history?"+bad.query)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %s, want 400", bad.query, r)
			continue
		}
		checkProblem(t, r, bad.field)
	}
}
