package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iom-who/engagements/eventstore"
)

// These benchmarks call the handler chain directly (no sockets), so ns/op and
// allocs/op show what the API itself costs per request on top of JetStream.

// BenchmarkAppendHandler appends engagement.noted events through the whole
// middleware chain and handler, with the benchmark's usual client count,
// each client on its own engagement.
func BenchmarkAppendHandler(b *testing.B) {
	ts := buildServer(b, setup{store: eventstore.Config{Sync: eventstore.SyncInterval}})
	parallelism, clients := benchClients()
	ids := make([]string, clients)
	for i := range ids {
		ids[i] = ts.create(b, agreement(fmt.Sprintf("Benchmark MOU %d", i)))
	}
	body := note(benchNote)
	var next atomic.Int64
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		path := "/v1/engagements/" + ids[int(next.Add(1)-1)%len(ids)] + "/events"
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			ts.api.ServeHTTP(w, req)
			if w.Code != http.StatusCreated {
				b.Errorf("append answered %d: %s", w.Code, w.Body)
				return
			}
		}
	})
	reportRate(b)
	reportCPU(b, cpu)
}

// BenchmarkGetEngagement reads one engagement while a writer appends to it
// (and so moves its version) as fast as it can: ns/op and allocs/op of a
// read, and its latency percentiles under the write load.
func BenchmarkGetEngagement(b *testing.B) {
	ts := buildServer(b, setup{store: eventstore.Config{Sync: eventstore.SyncInterval}})
	id := ts.create(b, agreement("Benchmark MOU"))
	for range 20 {
		ts.appendEvent(b, id, note(benchNote))
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			req := httptest.NewRequest(http.MethodPost, "/v1/engagements/"+id+"/events", strings.NewReader(note(benchNote)))
			req.Header.Set("Content-Type", "application/json")
			ts.api.ServeHTTP(httptest.NewRecorder(), req)
		}
	}()
	defer func() { close(stop); <-done }()

	path := "/v1/engagements/" + id
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		w := httptest.NewRecorder()
		ts.api.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		lat = append(lat, time.Since(start))
		if w.Code != http.StatusOK {
			b.Fatalf("get answered %d: %s", w.Code, w.Body)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
