package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// asofRate and asofDuration pace the as-of measurement: one engagement
// list page a request, each folding up to 101 engagements.
var (
	asofRate     = 10
	asofDuration = 10 * time.Second
)

// span is the first and last of the stream's events on both time axes.
type span struct {
	firstOccurred, lastOccurred time.Time
	firstRecorded, lastRecorded time.Time
}

// streamSpan reads the first and the last event of the generated stream
// through the API's global log.
func streamSpan(ctx context.Context, base, token string, events int) (span, error) {
	one := func(after int) (occurred, recorded time.Time, err error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			fmt.Sprintf("%s/v1/events?after=%d&limit=1", base, after), nil)
		if err != nil {
			return
		}
		req.Header = authHeader(token, false)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		var page struct {
			Events []struct {
				OccurredAt time.Time `json:"occurred_at"`
				RecordedAt time.Time `json:"recorded_at"`
			} `json:"events"`
		}
		if err = json.NewDecoder(resp.Body).Decode(&page); err == nil && len(page.Events) != 1 {
			err = fmt.Errorf("GET /v1/events?after=%d: %d events, status %s", after, len(page.Events), resp.Status)
		}
		if err != nil {
			return
		}
		return page.Events[0].OccurredAt, page.Events[0].RecordedAt, nil
	}
	var s span
	var err error
	if s.firstOccurred, s.firstRecorded, err = one(0); err != nil {
		return s, err
	}
	s.lastOccurred, s.lastRecorded, err = one(events - 1)
	return s, err
}

// between is a random time in [a, b].
func between(a, b time.Time) time.Time {
	if !b.After(a) {
		return a
	}
	return a.Add(time.Duration(rand.Int64N(int64(b.Sub(a)) + 1)))
}

// asOfLoad GETs the first page of 100 engagements as of a random date
// (as_of=YYYY-MM-DD within the stream's occurred_at span) or as known at a
// random instant (known_at within its recorded_at span), at asofRate per
// second for asofDuration.
func asOfLoad(ctx context.Context, base, token string, s span, axis string) *vegeta.Metrics {
	hdr := authHeader(token, false)
	return paced(ctx, asofRate, asofDuration, axis, func(t *vegeta.Target) {
		var v string
		if axis == "as_of" {
			v = between(s.firstOccurred, s.lastOccurred).Format(time.DateOnly)
		} else {
			v = between(s.firstRecorded, s.lastRecorded).Format(time.RFC3339Nano)
		}
		*t = vegeta.Target{Method: http.MethodGet, URL: base + "/v1/engagements?limit=100&" + axis + "=" + url.QueryEscape(v),
			Header: hdr}
	})
}

// asOf measures asof_p99: the portfolio page on either time axis, the
// worse of the two p99s.
func (h *harness) asOf(ctx context.Context, base, token string) Metric {
	m := Metric{Key: "asof_p99", Name: fmt.Sprintf("GET /v1/engagements?limit=100 as_of / known_at p99, %d events", h.o.events),
		Unit: "ms", Target: Target{Text: "< 50 ms", Below: 50}}
	s, err := streamSpan(ctx, base, token, h.o.events)
	if err != nil {
		m.Problems = append(m.Problems, "the stream's span: "+err.Error())
		return m
	}
	for _, axis := range []string{"as_of", "known_at"} {
		h.logf("GET /v1/engagements?limit=100&%s=<random> at %d/s for %s", axis, asofRate, asofDuration)
		r := asOfLoad(ctx, base, token, s, axis)
		h.logf("  p50 %.2f ms, p99 %.2f ms, max %.1f ms, success %.2f %%", ms(r.Latencies.P50), ms(r.Latencies.P99),
			ms(r.Latencies.Max), r.Success*100)
		h.extra("portfolio page "+axis+"=<random> p50 / p99 / max", "%.2f / %.2f / %.1f ms (%d requests, %.1f/s, bytes in %d)",
			ms(r.Latencies.P50), ms(r.Latencies.P99), ms(r.Latencies.Max), r.Requests, r.Rate, r.BytesIn.Total)
		m.Ours = max(m.Ours, ms(r.Latencies.P99))
		m.Problems = append(m.Problems, problems(axis+" pages", r)...)
	}
	return m
}

func init() {
	flag.IntVar(&asofRate, "asof-rate", asofRate, "portfolio pages per second in the as-of measurement (each axis)")
	flag.DurationVar(&asofDuration, "asof-duration", asofDuration, "length of the as-of measurement (each axis)")
}

// upcomingRate and upcomingDuration pace the upcoming measurement.
var (
	upcomingRate     = 100
	upcomingDuration = 10 * time.Second
)

// upcoming measures upcoming_p99: GET /v1/upcoming?within=90d (the first
// page of what is overdue or due in 90 days; every generated agreement has a
// deadline) under the write load of get_p99.
func (h *harness) upcoming(ctx context.Context, base, token string,
	underWrites func(time.Duration, func() *vegeta.Metrics) (reads, writes *vegeta.Metrics)) Metric {
	m := Metric{Key: "upcoming_p99", Name: fmt.Sprintf("GET /v1/upcoming?within=90d p99 at %d/s under %d writes/s, %d engagements",
		upcomingRate, h.o.writeRate, h.o.engagements), Unit: "ms", Target: Target{Text: "< 10 ms", Below: 10}}
	hdr := authHeader(token, false)
	h.logf("GET /v1/upcoming?within=90d at %d/s for %s, appends at %d/s alongside", upcomingRate, upcomingDuration, h.o.writeRate)
	r, w := underWrites(upcomingDuration, func() *vegeta.Metrics {
		return paced(ctx, upcomingRate, upcomingDuration, "upcoming", func(t *vegeta.Target) {
			*t = vegeta.Target{Method: http.MethodGet, URL: base + "/v1/upcoming?within=90d", Header: hdr}
		})
	})
	h.logf("  p50 %.2f ms, p99 %.2f ms, max %.1f ms, success %.2f %%", ms(r.Latencies.P50), ms(r.Latencies.P99),
		ms(r.Latencies.Max), r.Success*100)
	h.extra("upcoming p50 / p99 / max", "%.2f / %.2f / %.1f ms (%d requests, %.1f/s, bytes in %d); writes alongside %.0f/s, p99 %.1f ms",
		ms(r.Latencies.P50), ms(r.Latencies.P99), ms(r.Latencies.Max), r.Requests, r.Rate, r.BytesIn.Total,
		w.Throughput, ms(w.Latencies.P99))
	m.Ours = ms(r.Latencies.P99)
	m.Problems = append(m.Problems, problems("upcoming", r)...)
	m.Problems = append(m.Problems, problems("writes under upcoming", w)...)
	return m
}

func init() {
	flag.IntVar(&upcomingRate, "upcoming-rate", upcomingRate, "GET /v1/upcoming per second in the upcoming measurement")
	flag.DurationVar(&upcomingDuration, "upcoming-duration", upcomingDuration, "length of the upcoming measurement")
}
