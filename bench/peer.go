package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
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
	began := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			id := ids[rand.IntN(len(ids))]
			wg.Go(func() { read(id) })
		}
	}
	tick.Stop()
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
