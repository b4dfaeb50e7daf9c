// Command bench is `make bench`: in one run on one machine it measures the
// service against what NATS JetStream itself does on the same machine, side
// by side, and checks the figures against the targets of issue #8:
//
//   - append_always, append_interval: API appends over HTTP (64 clients, each
//     on its own engagement) against raw JetStream publishes by 64 publishers
//     on a stream with the same configuration and sync policy;
//   - append_contended: the 64 clients on 8 engagements;
//   - rebuild: projection rebuild from the generated stream (1M events) against
//     a raw ordered consumer reading the same stream;
//   - get_p99: GET /v1/engagements/{id} latency at a constant 1000 req/s while
//     writes run, with /healthz at the same rate as the anchor;
//   - asof_p99: the portfolio's first 100 engagements as of a random date
//     and as known at a random instant (bench/asof.go);
//   - upcoming_p99: GET /v1/upcoming?within=90d under the writes of get_p99
//     (every generated agreement is signed with an expiry; bench/asof.go);
//   - proof_bytes, proof_verify: one engagement's proof against a signed
//     checkpoint, its size beyond the events and its offline check
//     (bench/proof.go);
//   - restart: SIGTERM, start again, time to /readyz 200 with 1M events;
//   - rss: the serve process's peak resident set size (VmHWM) through all that.
//
// Beside them stands the PostgreSQL peer (bench/peer.go, bench/postgres.go),
// the store teams usually pick instead: an events table with a unique
// (stream_id, version) on a server the harness starts for itself, measured
// for durable appends (own streams and shared ones, with conflicts), the
// ordered full read and one stream's history read.
//
// It exists because the go test micro benchmarks (api/bench_test.go,
// eventstore/rebuild_bench_test.go) each measure one thing in isolation, at
// sizes go test can afford, with no targets: this harness runs the real
// binary as a subprocess, on data it generates, measures everything in the
// same run (so the anchors share the machine's state of the moment), stops
// by itself in a few minutes, and writes bench/results.md and
// bench/results.json. The HTTP load is vegeta's, as a library.
//
// The in-process parts (raw publishes, data generation, raw consumer,
// rebuild) use eventstore and projections directly: the harness may import
// every package, and nothing imports it.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/iom-who/engagements/eventstore"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// options are the harness's flags.
type options struct {
	events      int
	engagements int
	clients     int
	duration    time.Duration // each append measurement, raw and API
	getRate     int
	writeRate   int
	getDuration time.Duration
	warmup      time.Duration
	restarts    int
	out         string
	keep        bool
	streams     int  // streams the contended appends share
	peer        bool // measure the PostgreSQL peer
	// only, when set, names the metrics to measure (and what they need);
	// empty means all of them.
	only map[string]bool
	// outSet: -out was given (a run with -only writes results only then).
	outSet bool
	// readyTimeout bounds serve's starts on the big stream.
	readyTimeout time.Duration
}

// groups are the measurements -only chooses from, by the metric keys
// each one yields.
var groups = map[string][]string{
	"appends": {"append_always", "append_contended", "import_rate", "import_rate_raw", "append_interval"},
	"peer":    {"peer"},
	"big":     {"rebuild", "get_p99", "asof_p99", "upcoming_p99", "proof_bytes", "proof_verify", "restart", "rss"},
	"backup":  {"backup", "restore"},
}

// want says whether any of keys is to be measured.
func (o options) want(keys ...string) bool {
	if len(o.only) == 0 {
		return true
	}
	for _, k := range keys {
		if o.only[k] {
			return true
		}
	}
	return false
}

// aliases are names -only also takes for several metric keys at once.
var aliases = map[string][]string{
	"appends":  groups["appends"],
	"backup":   groups["backup"],
	"get":      {"get_p99"},
	"asof":     {"asof_p99"},
	"upcoming": {"upcoming_p99"},
	"proofs":   {"proof_bytes", "proof_verify"},
	"restart":  {"restart", "rss"},
	"serve":    {"get_p99", "asof_p99", "upcoming_p99", "proof_bytes", "proof_verify", "restart", "rss"},
}

// parseOnly reads -only: comma-separated metric keys of groups, or aliases
// of several; nil for none (everything is measured).
func parseOnly(s string) (map[string]bool, error) {
	known := make(map[string]bool)
	for _, keys := range groups {
		for _, k := range keys {
			known[k] = true
		}
	}
	var only map[string]bool
	for k := range strings.SplitSeq(s, ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		keys, ok := aliases[k]
		if !ok && known[k] {
			keys, ok = []string{k}, true
		}
		if !ok {
			return nil, fmt.Errorf("-only %q: not a metric (%v) nor an alias (%v)", k, groups, slices.Sorted(maps.Keys(aliases)))
		}
		if only == nil {
			only = make(map[string]bool)
		}
		for _, k := range keys {
			only[k] = true
		}
	}
	return only, nil
}

func main() {
	var o options
	flag.IntVar(&o.events, "events", 1_000_000, "events in the generated stream (rebuild, GET, restart, RSS)")
	flag.IntVar(&o.engagements, "engagements", 100_000, "engagements the generated events are spread over")
	flag.IntVar(&o.clients, "clients", 64, "concurrent append clients, API and raw alike")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each append measurement")
	flag.IntVar(&o.getRate, "get-rate", 1000, "GET requests per second")
	flag.IntVar(&o.writeRate, "write-rate", 200, "appends per second running under the GET load")
	flag.DurationVar(&o.getDuration, "get-duration", 32*time.Second,
		"length of the GET measurement and of its /healthz anchor")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "GET and write load before the GET measurement, not counted")
	flag.IntVar(&o.restarts, "restarts", 3, "restarts timed (the median is reported)")
	flag.StringVar(&o.out, "out", "bench", "directory for results.md and results.json")
	flag.IntVar(&o.streams, "streams", 8, "engagements (streams) the contended appends of the clients share")
	flag.BoolVar(&o.peer, "peer", true, "measure the PostgreSQL peer (a server of the bench's own; skipped with one line when PostgreSQL is not installed)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data and serve logs) and print where it is")
	only := flag.String("only", "", "measure only these metrics, comma-separated keys (e.g. import_rate; backup,restore; peer) and what they need; results go to -out as usual")
	flag.DurationVar(&o.readyTimeout, "ready-timeout", 5*time.Minute, "how long serve may take to be ready on the big stream (first start and restarts)")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) { o.outSet = o.outSet || f.Name == "out" })
	var err error
	if o.only, err = parseOnly(*only); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	if o.events < o.engagements || o.engagements < 1 || o.clients < 1 || o.restarts < 1 || o.streams < 1 {
		fmt.Fprintln(os.Stderr, "bench: need events ≥ engagements ≥ 1, clients ≥ 1, restarts ≥ 1, streams ≥ 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// harness holds what a run needs everywhere: the temporary directory, the
// services it started (killed on the way out whatever happens) and the
// start time for progress lines.
type harness struct {
	o        options
	load0    string // /proc/loadavg when the run began
	tmp      string
	bin      string
	began    time.Time
	services []*service
	pg       *pgServer // the PostgreSQL peer's server while it runs
	report   Report
	// peerVersion is the PostgreSQL server's version, "" when the peer did
	// not run.
	peerVersion string
	// imported is the import_rate metric, for import_rate_raw.
	imported *Metric
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(h.began).Seconds(), fmt.Sprintf(format, args...))
}

func (h *harness) extra(name, format string, args ...any) {
	h.report.Extras = append(h.report.Extras, Extra{Name: name, Value: fmt.Sprintf(format, args...)})
}

// start starts serve on data and registers it for cleanup.
func (h *harness) start(data, sync, name string) (*service, error) {
	s, err := startService(h.bin, data, filepath.Join(h.tmp, name+".log"), sync)
	if err != nil {
		return nil, err
	}
	h.services = append(h.services, s)
	return s, nil
}

func run(ctx context.Context, o options) error {
	h := &harness{o: o, began: time.Now(), load0: loadAverage()}
	h.logf("load average before the run: %s (other processes on this machine move the figures)", h.load0)
	var err error
	if h.tmp, err = os.MkdirTemp("", "engagements-bench-"); err != nil {
		return err
	}
	defer func() {
		for _, s := range h.services {
			s.kill()
		}
		if h.pg != nil { // an error or an interrupt inside the peer
			_ = h.pg.stop()
		}
		if o.keep {
			h.logf("kept %s", h.tmp)
		} else {
			_ = os.RemoveAll(h.tmp)
		}
	}()

	h.bin = filepath.Join(h.tmp, "engagements")
	h.logf("building ./cmd/engagements")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", h.bin, "./cmd/engagements").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}

	var always, interval, big, reads []Metric
	if o.want(groups["appends"]...) {
		if always, err = h.appends(ctx, eventstore.SyncAlways); err != nil {
			return err
		}
		if interval, err = h.appends(ctx, eventstore.SyncInterval); err != nil {
			return err
		}
		// import_rate_raw: the import against the raw sync-interval
		// publish of the same run.
		if im := h.imported; im != nil {
			raw := *interval[0].Anchor
			if !o.want("append_interval") {
				interval = nil
			}
			interval = append(interval, Metric{Key: "import_rate_raw", Name: im.Name + ", against the raw sync-interval publish",
				Unit: "events/s", Ours: im.Ours, Anchor: &raw, Target: Target{Text: "≥ 0.5× raw sync interval", MinRatio: 0.5},
				Problems: im.Problems})
		}
	}
	var peer peerFigures
	if o.want("peer") {
		if peer, err = h.peer(ctx); err != nil {
			return err
		}
	}
	if o.want(slices.Concat(groups["big"], groups["backup"])...) {
		rebuild, ids, err := h.rebuild(ctx)
		if err != nil {
			return err
		}
		rebuild.Peer = peer.fullRead
		if o.want("rebuild") {
			big = append(big, rebuild)
		}
		if o.want(groups["backup"]...) {
			ms, err := h.backupRestore(ctx)
			if err != nil {
				return err
			}
			big = append(big, ms...)
		}
		if o.want(groups["big"]...) {
			if reads, err = h.serveBig(ctx, ids); err != nil {
				return err
			}
		}
	}
	for i := range always {
		switch always[i].Key {
		case "append_always":
			always[i].Peer = peer.own
		case "append_contended":
			always[i].Peer = peer.shared
		}
	}
	for i := range reads {
		if reads[i].Key == "get_p99" {
			reads[i].Peer = peer.historyP99
		}
	}
	h.report.Metrics = slices.Concat(always, interval, big, reads)
	return h.write()
}

// appends measures raw publishes, then API appends, on fresh stores with the
// same sync policy, each for o.duration. Under SyncAlways the raw anchor is a
// plain PublishMsg; under SyncInterval it carries the expected last subject
// sequence, as eventstore.Append does.
//
// Under SyncAlways it also measures the contended appends on the same serve:
// the o.clients clients on o.streams of the engagements (append_contended).
func (h *harness) appends(ctx context.Context, policy eventstore.Sync) ([]Metric, error) {
	o := h.o
	expect := policy == eventstore.SyncInterval
	kind := "plain PublishMsg"
	if expect {
		kind = "PublishMsg with expected last subject sequence"
	}
	h.logf("raw publish, sync %s: %d publishers, %s, for %s", policy, o.clients, kind, o.duration)
	raw, err := rawPublish(ctx, filepath.Join(h.tmp, "raw-"+string(policy)), policy, o.clients, o.duration, expect)
	if err != nil {
		return nil, fmt.Errorf("raw publish: %w", err)
	}
	h.logf("  %d acknowledged (%.0f/s), %d failed, %d-byte payloads", raw.Published, raw.Rate(), raw.Failed, raw.Payload)
	if expect && !o.want("append_interval") { // only the anchor of import_rate_raw
		rate := raw.Rate()
		h.extra(fmt.Sprintf("raw publish, sync %s (%s)", policy, kind), "%d in %.1f s, %d-byte CloudEvents",
			raw.Published, raw.Elapsed.Seconds(), raw.Payload)
		return []Metric{{Key: "append_interval", Anchor: &rate}}, nil
	}

	h.logf("API append, serve --sync %s: %d clients for %s", policy, o.clients, o.duration)
	svc, err := h.start(filepath.Join(h.tmp, "api-"+string(policy)), string(policy), "serve-append-"+string(policy))
	if err != nil {
		return nil, err
	}
	if _, err := svc.waitReady(ctx, time.Minute); err != nil {
		return nil, err
	}
	token, err := svc.adminToken()
	if err != nil {
		return nil, err
	}
	ids, err := svc.createEngagements(ctx, token, o.clients)
	if err != nil {
		return nil, err
	}
	cpu0, cpuErr := svc.cpuTime()
	m := appendLoad(ctx, svc.URL, token, ids, o.duration)
	cpu1, err := svc.cpuTime()
	cpuPerAppend := "unknown"
	if err = cmp.Or(cpuErr, err); err == nil && m.Requests > 0 {
		cpuPerAppend = fmt.Sprintf("%.0f µs", float64((cpu1-cpu0).Microseconds())/float64(m.Requests))
	}
	h.logf("  %d requests, %.0f appends/s, success %.2f %%, p50 %.1f ms, p99 %.1f ms, serve CPU %s per append", m.Requests, m.Throughput,
		m.Success*100, ms(m.Latencies.P50), ms(m.Latencies.P99), cpuPerAppend)
	var contended []Metric
	if !expect && o.want("append_contended") {
		shared := ids[:min(o.streams, len(ids))]
		spread := make([]string, o.clients)
		for i := range spread {
			spread[i] = shared[i%len(shared)]
		}
		h.logf("API append, serve --sync %s: %d clients on %d engagements for %s", policy, o.clients, len(shared), o.duration)
		c := appendLoad(ctx, svc.URL, token, spread, o.duration)
		h.logf("  %d requests, %.0f appends/s, success %.2f %%, p50 %.1f ms, p99 %.1f ms", c.Requests, c.Throughput,
			c.Success*100, ms(c.Latencies.P50), ms(c.Latencies.P99))
		contended = append(contended, Metric{Key: "append_contended",
			Name: fmt.Sprintf("API append, --sync always, %d clients on %d engagements", o.clients, len(shared)),
			Unit: "events/s", Ours: c.Throughput, Target: Target{Text: "—"}, Problems: problems("API appends", c)})
		h.extra(fmt.Sprintf("API append latency, --sync %s, %d clients on %d engagements", policy, o.clients, len(shared)),
			"p50 %.2f ms, p99 %.2f ms (%d requests)", ms(c.Latencies.P50), ms(c.Latencies.P99), c.Requests)
	}
	if !expect && o.want("import_rate", "import_rate_raw") {

		h.logf("import through POST /v1/batches, serve --sync %s: %d events over %d engagements, %d batches at a time",
			policy, importEvents, importEngagements, importInFlight)
		rate, stored, refused, took, err := importRate(ctx, svc.URL, token)
		single := m.Throughput
		im := Metric{Key: "import_rate", Name: fmt.Sprintf("import through POST /v1/batches, --sync always, %d events over %d engagements",
			importEvents, importEngagements), Unit: "events/s", Ours: rate, Anchor: &single,
			Target: Target{Text: "≥ 4.0× append_always", MinRatio: 4}}
		if err != nil {
			im.Problems = append(im.Problems, err.Error())
		} else {
			h.logf("  %d stored, %d refused in %.1f s: %.0f events/s", stored, refused, took.Seconds(), rate)
			if refused > 0 {
				im.Problems = append(im.Problems, fmt.Sprintf("%d commands refused", refused))
			}
		}
		h.extra("import through batches (anchor: append_always)", "%d events stored in %.1f s, %d refused; 1000 commands a batch, each with an idempotency key, %d batches in flight",
			stored, took.Seconds(), refused, importInFlight)
		h.imported = &im
		contended = append(contended, im)
	}
	stopErr := svc.stop(time.Minute)

	key, target := "append_always", Target{Text: "≥ 2.0× raw", MinRatio: 2}
	name := "API append, --sync always, 64 clients"
	if expect {
		key, target = "append_interval", Target{Text: "≥ 0.70× raw", MinRatio: 0.7}
		name = "API append, --sync interval, 64 clients"
	}
	name = strings.Replace(name, "64", fmt.Sprint(o.clients), 1)
	rate := raw.Rate()
	metric := Metric{Key: key, Name: name, Unit: "events/s", Ours: m.Throughput, Anchor: &rate, Target: target,
		Problems: problems("API appends", m)}
	if raw.Failed > 0 {
		metric.Problems = append(metric.Problems, fmt.Sprintf("%d raw publishes failed: %v", raw.Failed, raw.FirstErr))
	}
	if stopErr != nil {
		metric.Problems = append(metric.Problems, stopErr.Error())
	}
	h.extra(fmt.Sprintf("raw publish, sync %s (%s)", policy, kind), "%d in %.1f s, %d-byte CloudEvents",
		raw.Published, raw.Elapsed.Seconds(), raw.Payload)
	h.extra(fmt.Sprintf("API append latency, --sync %s", policy), "p50 %.2f ms, p99 %.2f ms (%d requests)",
		ms(m.Latencies.P50), ms(m.Latencies.P99), m.Requests)
	h.extra(fmt.Sprintf("serve CPU (user + system) per API append, --sync %s", policy), "%s", cpuPerAppend)
	return append([]Metric{metric}, contended...), nil
}

// rebuild generates the big stream, reads it with a raw ordered consumer and
// rebuilds the projections from it, all in process on one store. It returns
// the engagement ids for the GET load.
func (h *harness) rebuild(ctx context.Context) (Metric, []string, error) {
	o := h.o
	dir := filepath.Join(h.tmp, "big")
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: dir, Sync: eventstore.SyncInterval})
	if err != nil {
		return Metric{}, nil, err
	}
	defer store.Close()
	h.logf("generating %d chained events over %d engagements (async publish, sync interval)", o.events, o.engagements)
	ds, err := generate(ctx, store, o.events, o.engagements, func(done int) { h.logf("  %d published", done) })
	if err != nil {
		return Metric{}, nil, fmt.Errorf("generate: %w", err)
	}
	h.logf("  %d events in %.1f s (%.0f/s), mean payload %.0f bytes", ds.Events, ds.Elapsed.Seconds(),
		float64(ds.Events)/ds.Elapsed.Seconds(), ds.MeanPayload)
	h.extra("generated stream", "%d events over %d engagements, mean CloudEvent %.0f bytes, written in %.1f s",
		ds.Events, len(ds.IDs), ds.MeanPayload, ds.Elapsed.Seconds())
	if !o.want("rebuild") {
		return Metric{}, ds.IDs, nil
	}
	h.logf("raw ordered consumer over %d events", o.events)
	rawTook, _, err := readRaw(ctx, store, o.events)
	if err != nil {
		return Metric{}, nil, err
	}
	h.logf("  %.2f s (%.0f events/s)", rawTook.Seconds(), float64(o.events)/rawTook.Seconds())

	h.logf("rebuild: store.Read into fresh projections (in process)")
	took, st, count, err := rebuildInProcess(ctx, store)
	if err != nil {
		return Metric{}, nil, fmt.Errorf("rebuild: %w", err)
	}
	h.logf("  %.2f s (%.0f events/s), %d engagements", took.Seconds(), float64(o.events)/took.Seconds(), count)
	rawRate := float64(o.events) / rawTook.Seconds()
	m := Metric{Key: "rebuild", Name: fmt.Sprintf("rebuild from %d events", o.events), Unit: "events/s",
		Ours: float64(o.events) / took.Seconds(), Anchor: &rawRate,
		Target: Target{Text: "≥ 0.55× raw and ≥ 200k events/s (1M in < 5 s)", MinRatio: 0.55, AtLeast: 200_000}}
	if st.Events != uint64(o.events) || st.Rejected != 0 || st.Undecodable != 0 || count != o.engagements {
		m.Problems = append(m.Problems, fmt.Sprintf("the rebuild folded %d events (%d rejected, %d undecodable) into %d engagements, want %d over %d",
			st.Events, st.Rejected, st.Undecodable, count, o.events, o.engagements))
	}
	h.extra("rebuild in process / raw ordered consumer", "%.2f s / %.2f s", took.Seconds(), rawTook.Seconds())
	return m, ds.IDs, nil
}

// serveBig starts serve on the big stream (first start: no checkpoint),
// runs the GET and /healthz loads under writes, reads the peak RSS, then
// stops and restarts it o.restarts times.
func (h *harness) serveBig(ctx context.Context, ids []string) ([]Metric, error) {
	o := h.o
	dir := filepath.Join(h.tmp, "big")
	h.logf("serve on the %d-event stream, first start (no checkpoint: serve rebuilds)", o.events)
	svc, err := h.start(dir, string(eventstore.SyncAlways), "serve-first")
	if err != nil {
		return nil, err
	}
	first, err := svc.waitReady(ctx, o.readyTimeout)
	if err != nil {
		return nil, err
	}
	h.logf("  ready after %.2f s", first.Seconds())
	h.extra("first start without checkpoint: process start → /readyz 200", "%.2f s (%.0f events/s)",
		first.Seconds(), float64(o.events)/first.Seconds())
	token, err := svc.adminToken()
	if err != nil {
		return nil, err
	}

	loadUnderWrites := func(d time.Duration, load func() *vegeta.Metrics) (reads, writes *vegeta.Metrics) {
		done := make(chan *vegeta.Metrics)
		go func() { done <- writeLoad(ctx, svc.URL, token, ids, o.writeRate, d) }()
		reads = load()
		return reads, <-done
	}
	h.logf("warm-up: GET %d/s and writes %d/s for %s (not counted)", o.getRate, o.writeRate, o.warmup)
	loadUnderWrites(o.warmup, func() *vegeta.Metrics { return getLoad(ctx, svc.URL, token, ids, o.getRate, o.warmup) })
	var metrics []Metric
	if o.want("get_p99") {
		metrics = append(metrics, h.gets(ctx, svc, token, ids, loadUnderWrites))
	}
	if o.want("asof_p99") {
		metrics = append(metrics, h.asOf(ctx, svc.URL, token))
	}
	if o.want("upcoming_p99") {
		metrics = append(metrics, h.upcoming(ctx, svc.URL, token, loadUnderWrites))
	}
	var proofMetrics []Metric
	if o.want("proof_bytes", "proof_verify") {
		proofMetrics = h.proofs(ctx, svc.URL, token, ids)
	}

	peak, current, err := svc.memory()
	if err != nil {
		return nil, err
	}
	h.logf("  serve RSS now %.0f MiB, peak %.0f MiB", current, peak)
	reminders := "not in the log (off, or not done by the end of the load)"
	if rec, ok := svc.logRecord("reminders: first pass scheduled the engagements with deadlines"); ok {
		took, _ := rec["took"].(float64)
		reminders = fmt.Sprintf("first pass: %v engagements scheduled in %.1f s", rec["engagements"], took/1e9)
	}
	if rec, ok := svc.logRecord("reminders caught up"); ok {
		reminders += fmt.Sprintf("; catch-up: %v reminders due at the start recorded", rec["due"])
	}
	h.extra("reminders at the first start (serve log)", "%s", reminders)
	errorsLogged, errorSamples := svc.logLevel("ERROR")
	warnsLogged, warnSamples := svc.logLevel("WARN")
	h.logf("SIGTERM (serve writes its checkpoint)")
	stopStart := time.Now()
	stopErr := svc.stop(2 * time.Minute)
	h.extra("SIGTERM → exit (first serve, writes the checkpoint)", "%.2f s", time.Since(stopStart).Seconds())
	cp, cpErr := os.Stat(filepath.Join(dir, "projections.checkpoint"))

	h.extra("serve log lines at ERROR / WARN (first start and load, /readyz polls left out)", "%d / %d %s", errorsLogged, warnsLogged,
		strings.Join(slices.Concat(errorSamples, warnSamples), "; "))
	restartMetric := Metric{Key: "restart", Name: fmt.Sprintf("restart to ready, %d events, checkpoint present", o.events),
		Unit: "s", Target: Target{Text: "< 1 s", Below: 1}}
	rssMetric := Metric{Key: "rss", Name: fmt.Sprintf("peak RSS, %d events / %d engagements", o.events, o.engagements),
		Unit: "MiB", Ours: peak, Target: Target{Text: "< 300 MiB", Below: 300}}
	if stopErr != nil {
		restartMetric.Problems = append(restartMetric.Problems, "first serve: "+stopErr.Error())
	}
	if cpErr != nil {
		restartMetric.Problems = append(restartMetric.Problems, "no checkpoint after SIGTERM: "+cpErr.Error())
	} else {
		h.extra("checkpoint size", "%.1f MiB", float64(cp.Size())/(1<<20))
	}

	var took []float64
	var loads []string
	restartPeak := 0.0
	restarts := o.restarts
	if !o.want("restart", "rss") {
		restarts = 0
	}
	for i := range restarts {
		h.logf("restart %d/%d: start → /readyz 200", i+1, o.restarts)
		s, err := h.start(dir, string(eventstore.SyncAlways), fmt.Sprintf("serve-restart-%d", i+1))
		if err != nil {
			return nil, err
		}
		ready, err := s.waitReady(ctx, o.readyTimeout)
		if err != nil {
			return nil, err
		}
		took = append(took, ready.Seconds())
		load := "not in the log"
		if rec, ok := s.logRecord("projection checkpoint loaded"); ok {
			if ns, ok := rec["took"].(float64); ok {
				load = fmt.Sprintf("%.2f s", ns/1e9)
			}
		} else if _, ok := s.logRecord("projection checkpoint not used; rebuilding from the stream"); ok {
			restartMetric.Problems = append(restartMetric.Problems, "the checkpoint was not used")
		}
		loads = append(loads, load)
		p, _, err := s.memory()
		if err != nil {
			return nil, err
		}
		restartPeak = max(restartPeak, p)
		h.logf("  ready after %.2f s (checkpoint load: %s), peak RSS %.0f MiB", ready.Seconds(), load, p)
		if err := s.stop(2 * time.Minute); err != nil {
			restartMetric.Problems = append(restartMetric.Problems, fmt.Sprintf("restart %d: %v", i+1, err))
		}
	}
	rssMetric.Ours = max(peak, restartPeak)
	if restarts > 0 {
		restartMetric.Ours = median(took)
		h.extra("restarts: process start → /readyz 200", "%s s (median reported); checkpoint load per the log: %s",
			joinFloats(took), strings.Join(loads, ", "))
		metrics = append(metrics, restartMetric)
	}
	h.extra("serve peak RSS: first start + load / restarts", "%.0f / %.0f MiB", peak, restartPeak)
	return append(append(metrics, rssMetric), proofMetrics...), nil
}

// gets measures get_p99: GETs of random engagements under writes, then
// its anchor, /healthz, at the same rate under the same writes.
func (h *harness) gets(ctx context.Context, svc *service, token string, ids []string,
	loadUnderWrites func(time.Duration, func() *vegeta.Metrics) (reads, writes *vegeta.Metrics)) Metric {
	o := h.o
	h.logf("GET /v1/engagements/{random id} at %d/s for %s, appends at %d/s alongside", o.getRate, o.getDuration, o.writeRate)
	getBegan := time.Now()
	get, writes := loadUnderWrites(o.getDuration, func() *vegeta.Metrics {
		return getLoad(ctx, svc.URL, token, ids, o.getRate, o.getDuration)
	})
	getEnded := time.Now()
	checkpointSaved := "none"
	if fi, err := os.Stat(filepath.Join(svc.Data, "projections.checkpoint")); err == nil &&
		fi.ModTime().After(getBegan) && fi.ModTime().Before(getEnded) {
		checkpointSaved = fmt.Sprintf("at +%.1f s", fi.ModTime().Sub(getBegan).Seconds())
	}
	h.logf("  GET p50 %.2f ms, p99 %.2f ms, max %.1f ms, success %.2f %%; writes %.0f/s, p99 %.1f ms, success %.2f %%",
		ms(get.Latencies.P50), ms(get.Latencies.P99), ms(get.Latencies.Max), get.Success*100,
		writes.Throughput, ms(writes.Latencies.P99), writes.Success*100)
	hd := o.getDuration
	h.logf("GET /healthz at %d/s for %s, appends at %d/s alongside", o.getRate, hd, o.writeRate)
	health, hwrites := loadUnderWrites(hd, func() *vegeta.Metrics { return healthLoad(ctx, svc.URL, o.getRate, hd) })
	h.logf("  /healthz p50 %.2f ms, p99 %.2f ms", ms(health.Latencies.P50), ms(health.Latencies.P99))

	healthP99 := ms(health.Latencies.P99)
	getMetric := Metric{Key: "get_p99", Name: fmt.Sprintf("GET engagement p99 at %d/s under %d writes/s", o.getRate, o.writeRate),
		Unit: "ms", Ours: ms(get.Latencies.P99), Anchor: &healthP99, Target: Target{Text: "< 2 ms", Below: 2}}
	getMetric.Problems = append(getMetric.Problems, problems("GETs", get)...)
	getMetric.Problems = append(getMetric.Problems, problems("writes under the GETs", writes)...)
	h.extra("GET engagement p50 / p90 / p99 / max", "%.2f / %.2f / %.2f / %.1f ms (%d requests, %.1f/s); projection save (serve's checkpoint file written) within the window: %s",
		ms(get.Latencies.P50), ms(get.Latencies.P90), ms(get.Latencies.P99), ms(get.Latencies.Max), get.Requests, get.Rate,
		checkpointSaved)
	// The anchor's own failures are shown, but do not decide whether the
	// GETs met their target.
	h.extra("/healthz p50 / p99 (anchor of get_p99)", "%.2f / %.2f ms %s", ms(health.Latencies.P50), healthP99,
		strings.Join(problems("/healthz", health), "; "))
	h.extra("writes under the GET load", "%.0f/s achieved of %d/s, p50 %.1f ms, p99 %.1f ms, success %.2f %% (under /healthz: %.2f %%)",
		writes.Throughput, o.writeRate, ms(writes.Latencies.P50), ms(writes.Latencies.P99), writes.Success*100, hwrites.Success*100)
	return getMetric
}

// write fills the report's header and notes, prints it and writes
// results.md and results.json.
func (h *harness) write() error {
	o := h.o
	total := time.Since(h.began)
	h.report.Header = []string{
		"date: " + time.Now().UTC().Format(time.RFC3339),
		fmt.Sprintf("machine: %d CPUs (%s), %s, %s/%s", runtime.NumCPU(), cpuModel(), memTotal(), runtime.GOOS, runtime.GOARCH),
		"Go: " + runtime.Version(),
		"commit: " + gitCommit(),
		strings.TrimSpace("command: go run ./bench " + strings.Join(os.Args[1:], " ")),
		fmt.Sprintf("total run time: %.0f s", total.Seconds()),
		fmt.Sprintf("load average (1, 5, 15 min) before / after the run: %s / %s", h.load0, loadAverage()),
	}
	if h.peerVersion != "" {
		h.report.Header = append(h.report.Header, "PostgreSQL peer: "+h.peerVersion)
	} else {
		h.report.Header = append(h.report.Header, "PostgreSQL peer: not measured (see the other figures)")
	}
	h.report.Notes = []string{
		fmt.Sprintf("Appends: each measurement runs %s. API: `engagements serve --sync <policy> --rate-limit 0` (built from this commit, a subprocess on a fresh data directory), %d vegeta attackers of one worker each at unbounded rate, each posting `engagement.noted` to its own engagement (recorded first) and waiting for the 201; ours = successful appends/s. Raw: a fresh store opened in process with eventstore.Open and the same sync policy (same stream configuration), %d goroutines on the store's in-process NATS connection (the kind the service uses), each publishing CloudEvents of the API's size to its own engagement subject and waiting for the ack. The `--sync always` anchor is a plain PublishMsg; the `--sync interval` anchor passes WithExpectStream and WithExpectLastSequenceForSubject (filter `engagements.*.<id>.*`) with the hash-chain headers, as eventstore.Append does.", o.duration, o.clients, o.clients),
		"Rebuild: the generated stream (engagement.recorded agreements, then engagement.noted round-robin, real hash-chain headers, async publish on a sync-interval store) is read in process twice on the same store: a nats.go ordered consumer (pull batches of 1024, no decoding) as the anchor, then store.Read into projections.New (what `engagements rebuild` does); rates are events / wall time. The serve first start on the same stream (no checkpoint) is listed separately: it also starts NATS and HTTP.",
		fmt.Sprintf("GET: serve (`--sync always`, the default) on the generated stream; %s of warm-up, then vegeta at a constant %d GET/s for %s on random generated engagements, while another vegeta attacker appends notes to random engagements at %d/s; p50/p99 are vegeta's estimates over all requests. Serve saves its projections (the checkpoint file) right after the first start caught up, then every 100k events or 10 min (its defaults); at 200 writes/s the windows hold no save unless the table says so (it says when the file was written within the GET window). Anchor: /healthz (no auth, no projection) at the same rate, as long, under the same writes.", o.warmup, o.getRate, o.getDuration, o.writeRate),
		fmt.Sprintf("Restart: SIGTERM (exit 0 and a written projections.checkpoint are checked), then %d starts, each timed from process start to the first /readyz 200 (polled every 5 ms; /readyz waits for the projection) and stopped again; ours is the median.", o.restarts),
		fmt.Sprintf("PostgreSQL (the peer column): a server the bench starts for itself from the installed package (`make postgres`), initdb in a temporary directory (as the postgres user when the bench runs as root), on a free 127.0.0.1 port, fsync=on and synchronous_commit=on, otherwise the package's defaults; stopped with `pg_ctl stop -m fast` and removed before the rebuild, so it takes nothing from the later rows. Table `events(global_position bigserial primary key, stream_id uuid, version int, type text, data jsonb, recorded_at timestamptz default now(), unique(stream_id, version))` (the Marten / Message DB pattern); data is the CloudEvent our raw publishes store, so rows carry the same bytes. Clients: pgx v5, a pgxpool of %d connections over TCP, in process. Appends (`append_always`, `append_contended`): %d clients for %s, each an autocommitted INSERT of its stream's next version (a durable commit), waiting for it; a unique violation is a conflict, counted, the client re-reads max(version) and retries; figure = successful appends/s. `append_always`: each client its own stream; `append_contended`: %d streams shared. (Our `append_contended` posts without If-Match, so the service orders the appends and has no conflicts.) `rebuild`: the generated events (same generator, same engagements) loaded with one COPY, then read in global order by keyset pagination (`WHERE global_position > $last ORDER BY global_position LIMIT 1024`), every column scanned, no decoding of data: the counterpart of the raw ordered consumer. `get_p99`: the p99 of reading one random stream's whole history (`WHERE stream_id = $1 ORDER BY version`, %d events each) at %d reads/s for %s, each read started on the clock, while appends to random streams run at %d/s — what loading an aggregate costs without projections, in process (ours goes through HTTP to a projection). `append_interval`, restart, RSS and the as-of reads have no PostgreSQL equivalent here.",
			o.clients+2, o.clients, o.duration, o.streams, o.events/o.engagements, o.getRate, o.duration, o.writeRate),
		"RSS: VmHWM of the serve process from /proc/<pid>/status: after the first start (its rebuild) and the GET/write load, and after each restart; ours is the largest.",
		"The harness, vegeta and the service share the machine; anything else running on it at the same time (other builds or tests) moves the figures.",
	}
	md := h.report.Markdown()
	if len(o.only) > 0 && !o.outSet {
		fmt.Print(md)
		h.logf("-only without -out: results.md and results.json not written")
		return nil
	}
	js, err := resultsJSON(h.report.Metrics)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "results.json"), js, 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	h.logf("wrote %s and %s", filepath.Join(o.out, "results.md"), filepath.Join(o.out, "results.json"))
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func joinFloats(v []float64) string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = fmt.Sprintf("%.2f", f)
	}
	return strings.Join(parts, ", ")
}

// gitCommit is HEAD's hash, marked dirty when the work tree has changes.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		commit += " (with uncommitted changes)"
	}
	return commit
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// loadAverage is the first three fields of /proc/loadavg: how busy the
// machine was besides the run.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "memory unknown"
	}
	var kb int
	for line := range strings.Lines(string(b)) {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return "memory unknown"
}
