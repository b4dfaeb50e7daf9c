package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iom-who/engagements/eventstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgSchema is the peer's events table: one row per event, the global order
// a bigserial, optimistic concurrency a unique (stream_id, version). The
// data column holds the whole CloudEvent the service would store, so rows
// carry the same bytes as our messages.
var pgSchema = []string{
	`DROP TABLE IF EXISTS events`,
	`CREATE TABLE events (
		global_position bigserial PRIMARY KEY,
		stream_id uuid NOT NULL,
		version int NOT NULL,
		type text NOT NULL,
		data jsonb NOT NULL,
		recorded_at timestamptz NOT NULL DEFAULT now(),
		UNIQUE (stream_id, version))`,
}

// resetEvents (re)creates an empty events table.
func resetEvents(ctx context.Context, pool *pgxpool.Pool) error {
	for _, q := range pgSchema {
		if _, err := pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
	}
	return nil
}

// openPool connects a pool of up to conns connections to the server.
func openPool(ctx context.Context, s *pgServer, conns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(s.ConnString())
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(conns)
	cfg.MinConns = int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

const (
	pgInsert     = `INSERT INTO events (stream_id, version, type, data) VALUES ($1, $2, $3, $4)`
	pgMaxVersion = `SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1`
	pgHistory    = `SELECT global_position, version, type, data, recorded_at FROM events WHERE stream_id = $1 ORDER BY version`
	pgPage       = `SELECT global_position, stream_id, version, type, data, recorded_at FROM events
		WHERE global_position > $1 ORDER BY global_position LIMIT $2`
)

// isConflict says whether err is a unique violation: another client
// appended the version first.
func isConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// pgAppendResult is what a peer append run did.
type pgAppendResult struct {
	Appended  int64
	Conflicts int64 // unique violations, each followed by a re-read and a retry
	Failed    int64
	FirstErr  error
	Elapsed   time.Duration
	Payload   int // bytes of each event's data
}

// Rate is successful appends per second.
func (r pgAppendResult) Rate() float64 { return float64(r.Appended) / r.Elapsed.Seconds() }

// pgAppends lets clients goroutines append for d to streams streams (client
// c to stream c mod streams), each one autocommitted insert of the next
// version (a durable commit: fsync and synchronous_commit are on) waiting
// for its answer before the next. A unique violation is a conflict: the
// client re-reads the stream's last version and tries again with the one
// after. The events are the engagement.noted CloudEvents of raw publishes.
func pgAppends(ctx context.Context, pool *pgxpool.Pool, clients, streams int, d time.Duration) (pgAppendResult, error) {
	ids := make([]string, streams)
	for i := range ids {
		ids[i] = newID()
	}
	var res pgAppendResult
	sample, err := eventstore.Encode(noteEvent(ids[0], 2))
	if err != nil {
		return res, err
	}
	res.Payload = len(sample)
	var appended, conflicts, failed atomic.Int64
	var errOnce sync.Once
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	for c := range clients {
		id := ids[c%streams]
		wg.Go(func() {
			version := 0 // the last version this client knows of its stream
			for time.Now().Before(deadline) && ctx.Err() == nil {
				ev := noteEvent(id, version+1)
				payload, err := eventstore.Encode(ev)
				if err == nil {
					_, err = pool.Exec(ctx, pgInsert, id, version+1, string(ev.Type), payload)
					if isConflict(err) {
						conflicts.Add(1)
						err = pool.QueryRow(ctx, pgMaxVersion, id).Scan(&version)
						if err == nil {
							continue
						}
					}
				}
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						errOnce.Do(func() { res.FirstErr = err })
					}
					return
				}
				version++
				appended.Add(1)
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Appended, res.Conflicts, res.Failed = appended.Load(), conflicts.Load(), failed.Load()
	return res, ctx.Err()
}

// pgGenerate fills the events table with the generated stream's events
// (generatedEvent, round-robin over engagements streams) in one COPY and
// returns the stream ids and the mean data size.
func pgGenerate(ctx context.Context, pool *pgxpool.Pool, events, engagements int) ([]string, float64, error) {
	ids := make([]string, engagements)
	for i := range ids {
		ids[i] = newID()
	}
	occurred := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var bytes int64
	i := 0
	rows := pgx.CopyFromFunc(func() ([]any, error) {
		if i == events {
			return nil, nil
		}
		ev := generatedEvent(i, engagements, ids[i%engagements], occurred, today)
		payload, err := eventstore.Encode(ev)
		if err != nil {
			return nil, err
		}
		bytes += int64(len(payload))
		i++
		return []any{ev.EngagementID, ev.Version, string(ev.Type), payload}, nil
	})
	n, err := pool.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"stream_id", "version", "type", "data"}, rows)
	if err != nil {
		return nil, 0, fmt.Errorf("copy: %w", err)
	}
	if n != int64(events) {
		return nil, 0, fmt.Errorf("copied %d rows, want %d", n, events)
	}
	if _, err := pool.Exec(ctx, `ANALYZE events`); err != nil {
		return nil, 0, err
	}
	return ids, float64(bytes) / float64(events), nil
}

// pgReadAll reads the first n events in global order by keyset pagination
// (pages of 1024, as the ordered consumer's pull batches), scanning every
// column, and checks the order. It returns the data bytes read.
func pgReadAll(ctx context.Context, pool *pgxpool.Pool, n int) (time.Duration, int64, error) {
	start := time.Now()
	var after int64
	var size int64
	read := 0
	for read < n {
		rows, err := pool.Query(ctx, pgPage, after, min(1024, n-read))
		if err != nil {
			return 0, 0, err
		}
		page := 0
		for rows.Next() {
			var (
				pos      int64
				stream   [16]byte
				version  int
				typ      string
				data     []byte
				recorded time.Time
			)
			if err := rows.Scan(&pos, &stream, &version, &typ, &data, &recorded); err != nil {
				rows.Close()
				return 0, 0, err
			}
			if pos <= after {
				rows.Close()
				return 0, 0, fmt.Errorf("global position %d after %d", pos, after)
			}
			after = pos
			size += int64(len(data))
			page++
		}
		if err := rows.Err(); err != nil {
			return 0, 0, err
		}
		if page == 0 {
			return 0, 0, fmt.Errorf("the table ends after %d events, want %d", read, n)
		}
		read += page
	}
	return time.Since(start), size, nil
}

// pgHistoryResult is what the history reads did.
type pgHistoryResult struct {
	Reads     int
	Failed    int
	FirstErr  error
	P50, P99  time.Duration
	Rate      float64 // reads per second achieved
	MinEvents int     // fewest events one read returned
	Writes    int64   // appends under the reads
}

// pgHistories reads one random stream's whole history (ORDER BY version, on
// the unique index) at rate per second for d, each read started on the
// clock whether or not the previous one finished, while another goroutine
// appends to random streams at writeRate per second (the writes of
// get_p99). Each read must return the stream's versions 1, 2, … in order.
func pgHistories(ctx context.Context, pool *pgxpool.Pool, ids []string, rate, writeRate int, d time.Duration) pgHistoryResult {
	rate, writeRate = max(1, rate), max(0, writeRate)
	var res pgHistoryResult
	var mu sync.Mutex
	var lat []time.Duration
	res.MinEvents = math.MaxInt
	var writes atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if writeRate > 0 {
		wg.Go(func() {
			tick := time.NewTicker(time.Second / time.Duration(writeRate))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				id := ids[rand.IntN(len(ids))]
				var v int
				if err := pool.QueryRow(ctx, pgMaxVersion, id).Scan(&v); err != nil {
					continue
				}
				ev := noteEvent(id, v+1)
				if payload, err := eventstore.Encode(ev); err == nil {
					if _, err := pool.Exec(ctx, pgInsert, id, v+1, string(ev.Type), payload); err == nil {
						writes.Add(1)
					}
				}
			}
		})
	}
	read := func(id string) {
		began := time.Now()
		rows, err := pool.Query(ctx, pgHistory, id)
		n := 0
		if err == nil {
			for rows.Next() {
				var (
					pos      int64
					version  int
					typ      string
					data     []byte
					recorded time.Time
				)
				if err = rows.Scan(&pos, &version, &typ, &data, &recorded); err != nil {
					break
				}
				if n++; version != n {
					err = fmt.Errorf("stream %s: version %d at place %d", id, version, n)
					break
				}
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		took := time.Since(began)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return // cut off by the end of the window
			}
			res.Failed++
			if res.FirstErr == nil {
				res.FirstErr = err
			}
			return
		}
		lat = append(lat, took)
		res.MinEvents = min(res.MinEvents, n)
	}
	// The i-th read is due at began + i/rate: a late start (a busy machine)
	// is caught up, not dropped, as vegeta's pacer does.
	began := time.Now()
	timer := time.NewTimer(0)
	for i := 0; ctx.Err() == nil; i++ {
		timer.Reset(time.Until(began.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		select {
		case <-ctx.Done():
		case <-timer.C:
			id := ids[rand.IntN(len(ids))]
			wg.Go(func() { read(id) })
		}
	}
	timer.Stop()
	elapsed := time.Since(began)
	wg.Wait()
	slices.Sort(lat)
	res.Reads = len(lat)
	res.Rate = float64(len(lat)) / elapsed.Seconds()
	res.Writes = writes.Load()
	if len(lat) > 0 {
		res.P50 = quantile(lat, 0.5)
		res.P99 = quantile(lat, 0.99)
	} else {
		res.MinEvents = 0
	}
	return res
}

// quantile is the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// peerFigures are the peer's figures for the table; nil where it was not
// measured.
type peerFigures struct {
	own, shared, fullRead, historyP99 *float64
}

// peer starts the PostgreSQL server and measures the peer: appends by
// o.clients clients each on its own stream, then on o.streams streams,
// the ordered read of o.events generated events and history reads under
// writes; then stops the server, so that it takes nothing from the rest
// of the run. Without PostgreSQL, or when a step of it fails, it says so
// in one line and the run goes on without (the rest of) the peer.
func (h *harness) peer(ctx context.Context) (peerFigures, error) {
	o := h.o
	var f peerFigures
	if !o.peer || !o.want("peer") {
		h.logf("PostgreSQL peer: off (-peer=false or -only without peer)")
		return f, nil
	}
	unavailable := func(what string, err error) (peerFigures, error) {
		if ctx.Err() != nil {
			return f, ctx.Err()
		}
		line := strings.SplitN(err.Error(), "\n", 2)[0]
		h.logf("PostgreSQL peer: %s (%s); the bench runs without it", what, line)
		h.extra("PostgreSQL peer", "%s: %s", what, line)
		return f, nil
	}
	if _, err := findPostgres(); err != nil {
		return unavailable("not available", err)
	}
	h.logf("PostgreSQL peer: initdb in a temporary directory, start on a free port (fsync, synchronous_commit on)")
	srv, err := startPostgres(ctx)
	if err != nil {
		return unavailable("cannot start", err)
	}
	h.pg = srv
	defer func() {
		if err := srv.stop(); err != nil {
			h.logf("PostgreSQL peer: stop: %v", err)
		}
		h.pg = nil
	}()
	pool, err := openPool(ctx, srv, o.clients+2)
	if err != nil {
		return unavailable("cannot connect", err)
	}
	defer pool.Close()
	var version string
	if err := pool.QueryRow(ctx, `SHOW server_version`).Scan(&version); err != nil {
		return unavailable("cannot query", err)
	}
	h.logf("  PostgreSQL %s on 127.0.0.1:%d (pid %d)", version, srv.Port, srv.Pid())
	h.peerVersion = version

	measure := func(streams int) (*float64, error) {
		if err := resetEvents(ctx, pool); err != nil {
			return nil, err
		}
		h.logf("PostgreSQL appends: %d clients on %d streams, optimistic concurrency, for %s", o.clients, streams, o.duration)
		r, err := pgAppends(ctx, pool, o.clients, streams, o.duration)
		if err != nil {
			return nil, err
		}
		h.logf("  %d appended (%.0f/s), %d conflicts, %d failed, %d-byte events", r.Appended, r.Rate(), r.Conflicts,
			r.Failed, r.Payload)
		failed := ""
		if r.Failed > 0 {
			failed = fmt.Sprintf("; %d clients failed, the first: %v", r.Failed, r.FirstErr)
		}
		h.extra(fmt.Sprintf("PostgreSQL appends, %d clients on %d streams", o.clients, streams),
			"%d in %.1f s, %d conflicts (re-read and retried), %d-byte events%s", r.Appended, r.Elapsed.Seconds(),
			r.Conflicts, r.Payload, failed)
		rate := r.Rate()
		return &rate, nil
	}
	if f.own, err = measure(o.clients); err != nil {
		return unavailable("appends failed", err)
	}
	if len(o.only) > 0 && !o.want("append_contended") && !o.want("rebuild") {
		return f, nil // -only: the appends on own streams are all that is compared
	}
	if f.shared, err = measure(min(o.streams, o.clients)); err != nil {
		return unavailable("appends on shared streams failed", err)
	}
	if len(o.only) > 0 && !o.want("rebuild") {
		return f, nil
	}

	if err := resetEvents(ctx, pool); err != nil {
		return unavailable("schema", err)
	}
	h.logf("PostgreSQL: COPY %d generated events over %d streams", o.events, o.engagements)
	began := time.Now()
	ids, mean, err := pgGenerate(ctx, pool, o.events, o.engagements)
	if err != nil {
		return unavailable("generating the events failed", err)
	}
	copyTook := time.Since(began)
	h.logf("  %.1f s, mean event %.0f bytes", copyTook.Seconds(), mean)
	h.logf("PostgreSQL: ordered read of %d events (keyset pages of 1024)", o.events)
	took, size, err := pgReadAll(ctx, pool, o.events)
	if err != nil {
		return unavailable("the ordered read failed", err)
	}
	rate := float64(o.events) / took.Seconds()
	f.fullRead = &rate
	h.logf("  %.2f s (%.0f events/s, %.0f MiB of data)", took.Seconds(), rate, float64(size)/(1<<20))
	h.extra("PostgreSQL ordered read / COPY of the generated events", "%.2f s / %.1f s (%d events, mean %.0f bytes)",
		took.Seconds(), copyTook.Seconds(), o.events, mean)

	h.logf("PostgreSQL: one stream's history at %d reads/s for %s, appends at %d/s alongside", o.getRate, o.duration, o.writeRate)
	hr := pgHistories(ctx, pool, ids, o.getRate, o.writeRate, o.duration)
	if ctx.Err() != nil {
		return f, ctx.Err()
	}
	h.logf("  p50 %.2f ms, p99 %.2f ms, %d reads (%.0f/s), %d failed, ≥ %d events each; %d writes",
		ms(hr.P50), ms(hr.P99), hr.Reads, hr.Rate, hr.Failed, hr.MinEvents, hr.Writes)
	failed := ""
	if hr.Failed > 0 {
		failed = fmt.Sprintf("; %d failed, the first: %v", hr.Failed, hr.FirstErr)
	}
	h.extra("PostgreSQL history read p50 / p99", "%.2f / %.2f ms (%d reads, %.0f/s, ≥ %d events each, %d appends alongside)%s",
		ms(hr.P50), ms(hr.P99), hr.Reads, hr.Rate, hr.MinEvents, hr.Writes, failed)
	if hr.Reads > 0 && hr.Failed == 0 {
		p99 := ms(hr.P99)
		f.historyP99 = &p99
	}
	return f, nil
}
