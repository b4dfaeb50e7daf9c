package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	id    uint64
	event string
	data  string
}

// openStream connects to the event stream and parses events onto a channel
// until the response ends or ctx is cancelled.
func openStream(t *testing.T, ctx context.Context, ts *testServer, query string, header ...string) (<-chan sseEvent, *http.Response) {
	t.Helper()
	req, err := ts.newRequest(http.MethodGet, "/v1/events/stream"+query, nil, header...)
	if err != nil {
		t.Fatal(err)
	}
	req = req.WithContext(ctx)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan sseEvent, 1024)
	if resp.StatusCode != http.StatusOK {
		close(out)
		return out, resp
	}
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id, _ = strconv.ParseUint(line[4:], 10, 64)
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data += line[6:]
			}
		}
	}()
	return out, resp
}

func TestEventStreamReplaysThenGoesLiveWithoutGapsOrDuplicates(t *testing.T) {
	ts := newTestServer(t)
	ids := make([]string, 4)
	for i := range ids {
		r := ts.post(t, "/v1/engagements", fmt.Sprintf(`{"kind":"initiative","title":"WG %d","parties":["IOM"]}`, i))
		if r.status != http.StatusCreated {
			t.Fatal(r)
		}
		ids[i] = decode[struct{ ID string }](t, r).ID
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, resp := openStream(t, ctx, ts, "?after=0")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	// A burst of concurrent appends while the stream replays.
	const perEngagement = 25
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perEngagement; j++ {
				if r, err := ts.do("POST", "/v1/engagements/"+id+"/events", `{"type":"engagement.noted","data":{"note":"n"}}`); err != nil || r.status != 201 {
					t.Errorf("append: %v %v", r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := len(ids) * (1 + perEngagement)
	var last uint64
	for n := 0; n < total; n++ {
		ev, ok := <-events
		if !ok {
			t.Fatalf("stream ended after %d of %d events", n, total)
		}
		if ev.id != last+1 {
			t.Fatalf("event %d has id %d after %d: a gap or a duplicate", n, ev.id, last)
		}
		last = ev.id
		var ce map[string]any
		if err := json.Unmarshal([]byte(ev.data), &ce); err != nil {
			t.Fatalf("data is not JSON: %v", err)
		}
		if ce["specversion"] != "1.0" || ce["type"] != ev.event || ce["source"] != "/engagements" {
			t.Errorf("event %d: %s %v", ev.id, ev.event, ce)
		}
	}
	cancel()

	// Resuming with Last-Event-ID replays only what came after it.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	resumed, _ := openStream(t, ctx2, ts, "?type=engagement.noted", "Last-Event-ID", strconv.FormatUint(last-3, 10))
	for want := last - 2; want <= last; want++ {
		ev := <-resumed
		if ev.id != want || ev.event != "engagement.noted" {
			t.Fatalf("resumed event %d %s, want %d", ev.id, ev.event, want)
		}
	}
}

func TestEventStreamFiltersAndRefusesBadParameters(t *testing.T) {
	ts := newTestServer(t)
	mou := decode[struct{ ID string }](t, ts.post(t, "/v1/engagements", `{"kind":"agreement","title":"MOU","parties":["IOM"]}`)).ID
	ts.post(t, "/v1/engagements", `{"kind":"meeting","title":"HLM","parties":["IOM"]}`)
	ts.post(t, "/v1/engagements/"+mou+"/events", `{"type":"agreement.signed","data":{"signed_on":"2019-01-01"}}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, _ := openStream(t, ctx, ts, "?after=0&kind=agreement&engagement="+mou)
	for _, want := range []string{"engagement.recorded", "agreement.signed"} {
		if ev := <-events; ev.event != want {
			t.Fatalf("got %s, want %s", ev.event, want)
		}
	}
	for _, q := range []string{"?kind=treaty", "?type=agreement.>", "?engagement=not-a-uuid", "?after=x"} {
		if r := ts.get(t, "/v1/events/stream"+q); r.status != http.StatusBadRequest {
			t.Errorf("%s: %s", q, r)
		}
	}
}
