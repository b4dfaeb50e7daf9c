package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The two benchmarks compare what an append costs through the API (decode,
// domain rules, expected-sequence publish, waiting for the projection) with
// a bare JetStream publish of a payload the same size, under the same sync
// policy and the same number of concurrent clients. Each client writes to
// its own engagement, so there are no conflicts to retry.

// benchNote makes each stored CloudEvent about 380 bytes, through the API
// and raw alike.
const benchNote = "Discussed at the annual review."

var syncPolicies = []eventstore.Sync{eventstore.SyncAlways, eventstore.SyncInterval}

// benchClients picks RunParallel's parallelism so that about 64 clients run
// whatever GOMAXPROCS is (issue #8 measures at 64); it returns the
// parallelism and the client count.
func benchClients() (parallelism, clients int) {
	procs := runtime.GOMAXPROCS(0)
	parallelism = max(1, 64/procs)
	return parallelism, parallelism * procs
}

// reportRate reports the events stored per second of the timed run.
func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "events/s")
	}
}

// BenchmarkAppendAPI posts engagement.noted events to the real HTTP API.
func BenchmarkAppendAPI(b *testing.B) {
	for _, policy := range syncPolicies {
		b.Run("sync="+string(policy), func(b *testing.B) {
			ts := newTestServerWith(b, eventstore.Config{Sync: policy})
			parallelism, clients := benchClients()
			ids := make([]string, clients)
			for i := range ids {
				ids[i] = ts.create(b, agreement(fmt.Sprintf("Benchmark MOU %d", i)))
			}
			tr := &http.Transport{MaxIdleConnsPerHost: clients}
			b.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr}
			body := note(benchNote)

			b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
				var next atomic.Int64
				b.SetParallelism(parallelism)
				b.ResetTimer()
				cpu := processCPU()
				b.RunParallel(func(pb *testing.PB) {
					url := ts.URL + "/v1/engagements/" + ids[int(next.Add(1)-1)%len(ids)] + "/events"
					for pb.Next() {
						req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
						if err != nil {
							b.Error(err)
							return
						}
						req.Header.Set("Content-Type", "application/json")
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusCreated {
							b.Errorf("append answered %d", resp.StatusCode)
							return
						}
					}
				})
				reportRate(b)
				reportCPU(b, cpu)
			})
		})
	}
}

// BenchmarkPublishRaw publishes CloudEvent payloads straight to JetStream
// through a nats.go client connected to the store's embedded server.
// "plain" is a bare publish; "expect" publishes as eventstore.Append does,
// which is what the API can at best approach: the chain-hash headers, the
// expected stream and the engagement's expected last subject sequence (each
// client follows its own engagement's sequence from the acks).
func BenchmarkPublishRaw(b *testing.B) {
	for _, policy := range syncPolicies {
		b.Run("sync="+string(policy), func(b *testing.B) {
			store, err := eventstore.Open(context.Background(), eventstore.Config{
				DataDir: b.TempDir(), NATSListen: "127.0.0.1:-1", Sync: policy,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = store.Close() })
			nc, err := nats.Connect(store.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}

			parallelism, clients := benchClients()
			// target is one client's engagement; last and prev follow its
			// sequence and hash across the runs of the benchmark function.
			type target struct {
				subject, filter string
				payload         []byte
				last            uint64
				prev            string
			}
			newTargets := func() []*target {
				targets := make([]*target, clients)
				for i := range targets {
					ev := domain.Event{
						ID: newID(), Type: domain.EngagementNoted, EngagementID: newID(), Kind: domain.KindAgreement,
						Version: 2, OccurredAt: time.Now(), RecordedAt: time.Now(), Actor: "anonymous",
						Data: []byte(fmt.Sprintf(`{"note":%q}`, benchNote)),
					}
					subject, err := eventstore.Subject(ev.Kind, ev.EngagementID, ev.Type)
					if err != nil {
						b.Fatal(err)
					}
					payload, err := eventstore.Encode(ev)
					if err != nil {
						b.Fatal(err)
					}
					targets[i] = &target{subject: subject, filter: "engagements.*." + ev.EngagementID + ".*", payload: payload}
				}
				return targets
			}

			for _, expect := range []bool{false, true} {
				name := fmt.Sprintf("plain/clients=%d", clients)
				if expect {
					name = fmt.Sprintf("expect/clients=%d", clients)
				}
				targets := newTargets()
				b.Run(name, func(b *testing.B) {
					var next atomic.Int64
					b.SetParallelism(parallelism)
					b.ResetTimer()
					cpu := processCPU()
					b.RunParallel(func(pb *testing.PB) {
						t := targets[int(next.Add(1)-1)%len(targets)]
						ctx := context.Background()
						for pb.Next() {
							msg := nats.NewMsg(eventstore.IntakeSubject(t.subject))
							msg.Data = t.payload
							var opts []jetstream.PublishOpt
							if expect {
								if t.prev != "" {
									msg.Header.Set(eventstore.HeaderPrevHash, t.prev)
								}
								t.prev = eventstore.ChainHash(t.prev, t.subject, t.payload)
								msg.Header.Set(eventstore.HeaderHash, t.prev)
								opts = []jetstream.PublishOpt{
									jetstream.WithExpectStream(eventstore.StreamName),
									jetstream.WithExpectLastSequenceForSubject(t.last, t.filter),
								}
							}
							ack, err := js.PublishMsg(ctx, msg, opts...)
							if err != nil {
								b.Error(err)
								return
							}
							t.last = ack.Sequence
						}
					})
					reportRate(b)
					reportCPU(b, cpu)
				})
			}
		})
	}
}

// BenchmarkGetUnderAppends reads one engagement over HTTP at a steady 1000
// requests per second while benchClients writers append to their own
// engagements, at most writes per second in all (0: as fast as they can),
// and reports the reads' latency percentiles. Run it with a fixed count,
// e.g. -benchtime 3000x (3 s).
func BenchmarkGetUnderAppends(b *testing.B) {
	for _, writes := range []int{2000, 0} {
		name := fmt.Sprintf("writes=%d/s", writes)
		if writes == 0 {
			name = "writes=max"
		}
		b.Run(name, func(b *testing.B) { benchGetUnderAppends(b, writes) })
	}
}

func benchGetUnderAppends(b *testing.B, writes int) {
	ts := newTestServerWith(b, eventstore.Config{Sync: eventstore.SyncInterval})
	_, clients := benchClients()
	tr := &http.Transport{MaxIdleConnsPerHost: clients + 1}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	read := ts.create(b, agreement("Read MOU"))
	for range 20 {
		ts.appendEvent(b, read, note(benchNote))
	}
	ids := make([]string, clients)
	for i := range ids {
		ids[i] = ts.create(b, agreement(fmt.Sprintf("Written MOU %d", i)))
	}
	ctx, stop := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	var appended atomic.Int64
	var tokens <-chan time.Time // nil: no limit
	if writes > 0 {
		t := time.NewTicker(time.Second / time.Duration(writes))
		defer t.Stop()
		tokens = t.C
	}
	for _, id := range ids {
		writers.Go(func() {
			for ctx.Err() == nil {
				if tokens != nil {
					select {
					case <-tokens:
					case <-ctx.Done():
						return
					}
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/engagements/"+id+"/events",
					strings.NewReader(note(benchNote)))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					continue // cancelled at the end
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				appended.Add(1)
			}
		})
	}
	defer func() { stop(); writers.Wait() }()

	url := ts.URL + "/v1/engagements/" + read
	lat := make([]time.Duration, 0, b.N)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := appended.Load()
	b.ResetTimer()
	for range b.N {
		<-tick.C
		t0 := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("get answered %d", resp.StatusCode)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(appended.Load()-start)/b.Elapsed().Seconds(), "appends/s")
}
