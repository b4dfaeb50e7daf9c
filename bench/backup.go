package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/iom-who/engagements/backup"
	"github.com/iom-who/engagements/eventstore"
)

// backupRestore times a backup of the generated store (what `engagements
// backup --data DIR --out PATH` does, in process) and its restore into a
// fresh directory with the verification restore makes (the head must be
// the backup's, every document must match). The backup and the restored
// store are removed afterwards.
func (h *harness) backupRestore(ctx context.Context) ([]Metric, error) {
	o := h.o
	dir := filepath.Join(h.tmp, "big")
	out := filepath.Join(h.tmp, "backup")
	restored := filepath.Join(h.tmp, "restored")
	defer os.RemoveAll(out)
	defer os.RemoveAll(restored)

	bm := Metric{Key: "backup", Name: fmt.Sprintf("backup of the %d-event store (engagements backup)", o.events), Unit: "s",
		Target: Target{Text: "—"}}
	rm := Metric{Key: "restore", Name: "restore of that backup into an empty store, with its verification (engagements restore)",
		Unit: "s", Target: Target{Text: "—"}}

	h.logf("backup of the %d-event store", o.events)
	src, err := eventstore.Open(ctx, eventstore.Config{DataDir: dir, Sync: eventstore.SyncInterval})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	m, err := backup.Backup(ctx, src, out)
	bm.Ours = time.Since(start).Seconds()
	src.Close()
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if m.Events != uint64(o.events) {
		bm.Problems = append(bm.Problems, fmt.Sprintf("the backup holds %d events, want %d", m.Events, o.events))
	}
	size := dirSize(out)
	h.logf("  %.1f s, %.0f MB", bm.Ours, float64(size)/1e6)

	h.logf("restore into a fresh directory, then verify")
	dst, err := eventstore.Open(ctx, eventstore.Config{DataDir: restored, Sync: eventstore.SyncInterval})
	if err != nil {
		return nil, err
	}
	start = time.Now()
	res, err := backup.Restore(ctx, dst, out, nil)
	rm.Ours = time.Since(start).Seconds()
	dst.Close()
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if !res.OK() {
		rm.Problems = append(rm.Problems, fmt.Sprintf("the restore differs from the backup: %v", res.Differences))
	}
	h.logf("  %.1f s, head %s (the backup's: %v)", rm.Ours, res.Report.Head, res.Report.Head == m.Head)
	h.extra("backup / restore (incl. verify) of the generated store", "%.1f s / %.1f s for %d events; the backup is %.0f MB (NDJSON), the restore's head equals the backup's: %v",
		bm.Ours, rm.Ours, m.Events, float64(size)/1e6, res.Report.Head == m.Head)
	return []Metric{bm, rm}, nil
}

// dirSize is the bytes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
