package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The HTTP load is vegeta's (as a library): its attackers pace and time the
// requests and its Metrics give rates, success and latency quantiles.

// authHeader is what every /v1 request carries; json adds the body's type.
func authHeader(token string, json bool) http.Header {
	h := http.Header{"Authorization": {"Bearer " + token}}
	if json {
		h.Set("Content-Type", "application/json")
	}
	return h
}

// appendLoad runs one vegeta attacker per engagement in ids, each with a
// single worker at unbounded rate, for d: len(ids) clients, each posting
// engagement.noted events to its own engagement and waiting for the answer
// before the next, as the raw publishers do. All results go into one Metrics.
func appendLoad(ctx context.Context, url, token string, ids []string, d time.Duration) *vegeta.Metrics {
	var m vegeta.Metrics
	var mu sync.Mutex
	var wg sync.WaitGroup
	hdr := authHeader(token, true)
	for _, id := range ids {
		target := vegeta.Target{Method: http.MethodPost, URL: url + "/v1/engagements/" + id + "/events",
			Body: []byte(appendBody), Header: hdr}
		atk := vegeta.NewAttacker(vegeta.Workers(1), vegeta.MaxWorkers(1), vegeta.KeepAlive(true),
			vegeta.Timeout(30*time.Second))
		stop := context.AfterFunc(ctx, func() { atk.Stop() })
		defer stop()
		wg.Go(func() {
			for res := range atk.Attack(vegeta.NewStaticTargeter(target), vegeta.Rate{}, d, "append") {
				mu.Lock()
				m.Add(res)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	m.Close()
	return &m
}

// paced runs one vegeta attacker at a constant rate for d against targets
// made by next.
func paced(ctx context.Context, rate int, d time.Duration, name string, next func(*vegeta.Target)) *vegeta.Metrics {
	atk := vegeta.NewAttacker(vegeta.KeepAlive(true), vegeta.Timeout(10*time.Second))
	defer context.AfterFunc(ctx, func() { atk.Stop() })()
	var m vegeta.Metrics
	tr := func(t *vegeta.Target) error {
		next(t)
		return nil
	}
	for res := range atk.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, d, name) {
		m.Add(res)
	}
	m.Close()
	return &m
}

// getLoad GETs random engagements of ids at rate per second for d.
func getLoad(ctx context.Context, url, token string, ids []string, rate int, d time.Duration) *vegeta.Metrics {
	hdr := authHeader(token, false)
	return paced(ctx, rate, d, "get", func(t *vegeta.Target) {
		*t = vegeta.Target{Method: http.MethodGet, URL: url + "/v1/engagements/" + ids[rand.IntN(len(ids))], Header: hdr}
	})
}

// healthLoad GETs /healthz (no auth, no projection) at rate per second for
// d: the floor of the HTTP stack on this machine under the same writes.
func healthLoad(ctx context.Context, url string, rate int, d time.Duration) *vegeta.Metrics {
	return paced(ctx, rate, d, "healthz", func(t *vegeta.Target) {
		*t = vegeta.Target{Method: http.MethodGet, URL: url + "/healthz"}
	})
}

// writeLoad posts engagement.noted events to random engagements of ids at
// rate per second for d: the concurrent writes under the GET load.
func writeLoad(ctx context.Context, url, token string, ids []string, rate int, d time.Duration) *vegeta.Metrics {
	hdr := authHeader(token, true)
	body := []byte(appendBody)
	return paced(ctx, rate, d, "write", func(t *vegeta.Target) {
		*t = vegeta.Target{Method: http.MethodPost, URL: url + "/v1/engagements/" + ids[rand.IntN(len(ids))] + "/events",
			Body: body, Header: hdr}
	})
}

// problems lists what went wrong in a load: failed requests, by status and
// error, for the report.
func problems(what string, m *vegeta.Metrics) []string {
	if m.Requests == 0 {
		return []string{what + ": no request was made"}
	}
	if m.Success >= 1 {
		return nil
	}
	codes := make([]string, 0, len(m.StatusCodes))
	for code, n := range m.StatusCodes {
		codes = append(codes, fmt.Sprintf("%s×%d", code, n))
	}
	sort.Strings(codes)
	errs := m.Errors
	if len(errs) > 3 {
		errs = errs[:3]
	}
	return []string{fmt.Sprintf("%s: %.2f %% of %d requests succeeded (status %s; %s)", what, m.Success*100, m.Requests,
		strings.Join(codes, ", "), strings.Join(errs, "; "))}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
