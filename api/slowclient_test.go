package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuckWriter is a ResponseWriter whose client never reads: every write
// after the first blocks until the test ends.
type stuckWriter struct {
	header  http.Header
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (w *stuckWriter) Header() http.Header { return w.header }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) Flush()              {}
func (w *stuckWriter) Write(p []byte) (int, error) {
	first := false
	w.once.Do(func() { first = true; close(w.started) })
	if !first {
		<-w.release
	}
	return len(p), nil
}

// TestSlowStreamClientIsDisconnected: a client that stops reading falls more
// than the buffer behind and is dropped (and counted), while writers carry on.
func TestSlowStreamClientIsDisconnected(t *testing.T) {
	b := buildServer(t, setup{})
	ts := b.testServer
	id := decode[struct{ ID string }](t, ts.post(t, "/v1/engagements", `{"kind":"initiative","title":"WG","parties":["IOM"]}`)).ID
	for i := 0; i < 300; i++ { // more than the stream's 256-event buffer
		if r := ts.post(t, "/v1/engagements/"+id+"/events", fmt.Sprintf(`{"type":"engagement.noted","data":{"note":"n%d"}}`, i)); r.status != 201 {
			t.Fatal(r)
		}
	}
	srv := b.api // served here too, by hand, to a client that cannot write
	w := &stuckWriter{header: http.Header{}, started: make(chan struct{}), release: make(chan struct{})}
	req := httptest.NewRequest(http.MethodGet, "/v1/events/stream?after=0", nil).WithContext(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeHTTP(w, req)
	}()
	<-w.started
	// The handler cannot write, so the replay overflows the buffer: the
	// stream must end by itself. Writers are not held up meanwhile.
	if r := ts.post(t, "/v1/engagements/"+id+"/events", `{"type":"engagement.noted","data":{"note":"still writing"}}`); r.status != 201 {
		t.Errorf("a write while a stream client is stuck: %s", r)
	}
	// The drop happens while the client is still stuck; wait for it
	// (bounded), then let the handler's blocked write return.
	dropped := false
	var metrics string
	for i := 0; i < 1000 && !dropped; i++ {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		metrics = rec.Body.String()
		dropped = strings.Contains(metrics, "engagements_event_streams_dropped_slow_total 1")
		if !dropped {
			time.Sleep(10 * time.Millisecond)
		}
	}
	close(w.release)
	<-done // the stream ended by itself
	if !dropped {
		t.Errorf("the stuck client was not dropped and counted:\n%s", grep(metrics, "event_streams"))
	}
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
