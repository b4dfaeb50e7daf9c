package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iom-who/engagements/eventstore"
	"go.uber.org/goleak"
)

// TestPostgresPeer starts the bench's own PostgreSQL server (skipped where
// PostgreSQL is not installed: `make postgres`), appends to one stream with
// optimistic concurrency — including a conflicting append, which the
// unique (stream_id, version) refuses — reads the events back in global
// order and as the stream's history, runs the measurements small, and
// stops the server: the postmaster is gone and its directory removed.
func TestPostgresPeer(t *testing.T) {
	if _, err := findPostgres(); err != nil {
		t.Skipf("PostgreSQL is not installed, the peer cannot be tested: %v", err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	srv, err := startPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid, dir := srv.Pid(), srv.dir
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.stop()
		}
	}()
	if pid == 0 {
		t.Fatal("no postmaster pid")
	}
	pool, err := openPool(ctx, srv, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := resetEvents(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var durable [2]string
	if err := pool.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).
		Scan(&durable[0], &durable[1]); err != nil {
		t.Fatal(err)
	}
	if durable != [2]string{"on", "on"} {
		t.Errorf("fsync, synchronous_commit = %v, want on, on", durable)
	}

	stream := newID()
	appendAt := func(version int) error {
		ev := noteEvent(stream, version)
		payload, err := eventstore.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		_, err = pool.Exec(ctx, pgInsert, stream, version, string(ev.Type), payload)
		return err
	}
	for v := 1; v <= 3; v++ {
		if err := appendAt(v); err != nil {
			t.Fatalf("append version %d: %v", v, err)
		}
	}
	if err := appendAt(3); !isConflict(err) {
		t.Fatalf("a second version 3: err = %v, want a unique violation", err)
	}
	var last int
	if err := pool.QueryRow(ctx, pgMaxVersion, stream).Scan(&last); err != nil || last != 3 {
		t.Fatalf("last version = %d, %v; want 3", last, err)
	}
	if err := appendAt(last + 1); err != nil {
		t.Fatalf("retry after the conflict: %v", err)
	}
	rows, err := pool.Query(ctx, `SELECT global_position, version FROM events ORDER BY global_position`)
	if err != nil {
		t.Fatal(err)
	}
	var versions []int
	var prev int64
	for rows.Next() {
		var pos int64
		var v int
		if err := rows.Scan(&pos, &v); err != nil {
			t.Fatal(err)
		}
		if pos <= prev {
			t.Errorf("global position %d after %d", pos, prev)
		}
		prev = pos
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(versions) != 4 || versions[0] != 1 || versions[3] != 4 {
		t.Errorf("versions in global order = %v, want [1 2 3 4]", versions)
	}
	// The harness's measurements, small: conflicts happen with 8 clients on 2 streams.
	res, err := pgAppends(ctx, pool, 8, 2, 300*time.Millisecond)
	if err != nil || res.Failed > 0 || res.Appended == 0 {
		t.Fatalf("pgAppends: %+v, %v", res, err)
	}
	t.Logf("8 clients on 2 streams: %d appended, %d conflicts", res.Appended, res.Conflicts)
	if err := resetEvents(ctx, pool); err != nil {
		t.Fatal(err)
	}
	ids, mean, err := pgGenerate(ctx, pool, 2000, 100)
	if err != nil {
		t.Fatal(err)
	}
	if mean < 300 || mean > 600 {
		t.Errorf("mean event size %.0f bytes, want about the generator's ~430", mean)
	}
	if _, size, err := pgReadAll(ctx, pool, 2000); err != nil || size == 0 {
		t.Fatalf("pgReadAll: %d bytes, %v", size, err)
	}
	if _, _, err := pgReadAll(ctx, pool, 2001); err == nil {
		t.Error("pgReadAll of more events than stored did not fail")
	}
	h := pgHistories(ctx, pool, ids, 200, 20, 300*time.Millisecond)
	if h.Failed > 0 || h.Reads == 0 || h.MinEvents < 20 {
		t.Fatalf("pgHistories: %+v", h)
	}
	pool.Close()

	stopped = true
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postmaster %d still there after stop (kill 0: %v)", pid, err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("processes of the server's group %d still there after stop (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", dir, err)
	}
}

// TestPeerWithoutPostgres: on a machine without PostgreSQL the peer says so
// in one line, measures nothing and lets the run go on.
func TestPeerWithoutPostgres(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := pgGlob
	pgGlob = filepath.Join(t.TempDir(), "*", "bin", "initdb")
	defer func() { pgGlob = old }()
	h := &harness{o: options{peer: true, clients: 4, streams: 2, events: 10, engagements: 2}, began: time.Now()}
	f, err := h.peer(context.Background())
	if err != nil {
		t.Fatalf("peer without PostgreSQL: %v, want the run to go on", err)
	}
	if f.own != nil || f.shared != nil || f.fullRead != nil || f.historyP99 != nil || h.peerVersion != "" {
		t.Errorf("figures without PostgreSQL: %+v, version %q", f, h.peerVersion)
	}
	if len(h.report.Extras) != 1 || !strings.Contains(h.report.Extras[0].Value, "not available") {
		t.Errorf("extras = %v, want one saying PostgreSQL is not available", h.report.Extras)
	}
}
