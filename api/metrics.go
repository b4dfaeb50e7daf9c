package api

import (
	"context"
	"crypto/subtle"
	"strconv"
	"time"

	"github.com/iom-who/engagements/webhooks"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the service's Prometheus metrics, on their own registry.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	appends  *prometheus.HistogramVec
	// batchCommands counts the commands of batches by outcome.
	batchCommands *prometheus.CounterVec
}

// WithMetricsToken puts /metrics behind `Authorization: Bearer <token>`;
// without it /metrics is open like /healthz.
func WithMetricsToken(token string) Option { return func(s *Server) { s.metricsToken = token } }

// Connected reports whether the NATS connection is up; eventstore.Store has it.
type Connected interface{ Connected() bool }

func (s *Server) newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engagements_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "engagements_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		appends: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "engagements_append_duration_seconds", Help: "Time from decision to a projected append, by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"outcome"}),
		batchCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engagements_batch_commands_total", Help: "Commands of POST /v1/batches by outcome: appended (or replayed) or the refusal's status.",
		}, []string{"outcome"}),
	}
	stat := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(m.requests, m.latency, m.appends, m.batchCommands,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		stat("engagements_events_applied_total", "Events folded into the projections.",
			func() float64 { return float64(s.proj.Stats().Events) }),
		stat("engagements_events_rejected_total", "Events on the stream that broke the domain rules (not applied).",
			func() float64 { return float64(s.proj.Stats().Rejected) }),
		stat("engagements_events_undecodable_total", "Messages on the stream that did not decode or failed their hash check.",
			func() float64 { return float64(s.proj.Stats().Undecodable) }),
		stat("engagements_event_streams_dropped_slow_total", "SSE clients disconnected for falling behind.",
			func() float64 { return float64(s.slowStreams.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "engagements_event_streams",
			Help: "Open SSE event streams."}, func() float64 { return float64(s.streams.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "engagements_projection_applied_sequence",
			Help: "Last stream sequence the projections applied."}, func() float64 { return float64(s.proj.Applied()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "engagements_projection_lag",
			Help: "Stream last sequence minus the sequence the projections applied (-1 when NATS does not answer)."},
			func() float64 {
				// Applied first: read after the stream's last sequence, it may
				// already be past it, which is no lag.
				applied := s.proj.Applied()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				last, err := s.stream.LastSequence(ctx)
				if err != nil {
					return -1
				}
				return float64(last - min(last, applied))
			}),
	)
	if w, ok := s.subs.(interface{ Stats() webhooks.Stats }); ok {
		for _, c := range []struct {
			name, help string
			get        func(webhooks.Stats) uint64
		}{
			{"engagements_webhook_deliveries_total", "Webhook deliveries a subscriber acknowledged with a 2xx.",
				func(s webhooks.Stats) uint64 { return s.Delivered }},
			{"engagements_webhook_attempts_failed_total", "Webhook delivery attempts without a 2xx (each retry counts).",
				func(s webhooks.Stats) uint64 { return s.AttemptsFailed }},
			{"engagements_webhook_failures_total", "Webhook events given up on and recorded as failures.",
				func(s webhooks.Stats) uint64 { return s.Failed }},
			{"engagements_webhook_consumers_recreated_total", "Webhook consumers found missing (deleted, or lost with a node) and made again.",
				func(s webhooks.Stats) uint64 { return s.Recreated }},
		} {
			m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
				func() float64 { return float64(c.get(w.Stats())) }))
		}
	}
	if w, ok := s.stream.(interface{ WriteFailures() uint64 }); ok {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "engagements_store_write_failures_total",
			Help: "Appends the event store failed (refused, e.g. on a full disk; timed out; lost with the connection)."},
			func() float64 { return float64(w.WriteFailures()) }))
	}
	if w, ok := s.stream.(WriteRefuser); ok {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "engagements_store_writes_refused",
			Help: "1 while the event store refuses writes (then /readyz is 503 and says why)."}, func() float64 {
			if w.WritesRefused() != nil {
				return 1
			}
			return 0
		}))
	}
	if c, ok := s.stream.(Connected); ok {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "engagements_nats_connected",
			Help: "1 when the NATS connection is up."}, func() float64 {
			if c.Connected() {
				return 1
			}
			return 0
		}))
	}
	return m
}

// observe records every request by its route pattern (never the raw path,
// which would make one series per id).
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = toProblem(err).Status
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(status)).Inc()
		s.metrics.latency.WithLabelValues(route, c.Request().Method).Observe(time.Since(start).Seconds())
		return err
	}
}

// serveMetrics serves GET /metrics in the Prometheus text format.
func (s *Server) serveMetrics(c echo.Context) error {
	if s.metricsToken != "" {
		got := c.Request().Header.Get(echo.HeaderAuthorization)
		if subtle.ConstantTimeCompare([]byte(got), []byte("Bearer "+s.metricsToken)) != 1 {
			return unauthorized("send Authorization: Bearer <metrics token>")
		}
	}
	promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(c.Response(), c.Request())
	return nil
}
