package eventstore

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// The embedded server's watcher. JetStream limits its file store to 75% of
// the disk's free space at start-up (plus what it already holds); at that
// limit it refuses every write ("insufficient resources"), and freeing
// space does not raise it. A write that fails on the disk itself (ENOSPC
// when another tenant filled the volume, EIO) stops the stream's writes for
// good, and a permission error shuts JetStream down. The server heals from
// none of these by itself. So the store sets the limit itself, as JetStream
// would (initialStoreLimit; not with tokens, see startServer), and the
// watcher checks every probeInterval:
// while the store refuses it puts the refusal in force; once space is back
// it raises the limit (a config reload, which JetStream takes while it
// runs), or, when the file store itself failed, restarts JetStream on the
// same directory, which recovers the stream from its files.
//
// Seen in testing after such a restart (not after a reload): reads to the
// stream's end (Read without Live) sometimes stopped early, as if the new
// consumers' pending counts were wrong. The
// stored messages were all there. So a restart is the last resort.
const (
	probeInterval = 500 * time.Millisecond
	// headroom is the space the store must have left, under its limit and
	// on the disk, to count as taking writes: one message fits (MaxMsgSize).
	headroom = 1 << 20
	// restartEvery bounds how often the watcher restarts JetStream.
	restartEvery = 5 * time.Second
)

// watcher is the goroutine that watches the embedded server.
type watcher struct {
	quit, done  chan struct{}
	stopOnce    sync.Once
	lastRestart time.Time
}

func (s *Store) startWatcher() {
	s.watcher = &watcher{quit: make(chan struct{}), done: make(chan struct{})}
	go s.watch()
}

func (s *Store) stopWatcher() {
	if w := s.watcher; w != nil {
		w.stopOnce.Do(func() { close(w.quit) }) // Close may be called twice
		<-w.done
	}
}

func (s *Store) watch() {
	w := s.watcher
	defer close(w.done)
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-t.C:
		case <-s.guard.poke:
		}
		s.probe()
	}
}

// probe checks the embedded server once, puts a refusal in force or ends
// it, and restarts JetStream when that would heal the store.
func (s *Store) probe() {
	reason, heal := s.check()
	if reason == "" {
		if s.guard.clear() {
			s.log.Info("the event store takes writes again")
		}
		return
	}
	if s.guard.refuse(reason, 0) {
		s.log.Warn("the event store refuses writes", "reason", reason)
	}
	w := s.watcher
	if !heal || time.Since(w.lastRestart) < restartEvery {
		return
	}
	if s.raiseLimit() {
		if reason, _ := s.check(); reason == "" && s.guard.clear() {
			s.log.Info("the event store takes writes again")
		}
		return
	}
	w.lastRestart = time.Now()
	s.log.Warn("restarting the embedded JetStream to take writes again", "reason", reason)
	start := time.Now()
	if err := s.restartJetStream(); err != nil {
		s.log.Error("restart of the embedded JetStream failed", "err", err)
		return
	}
	s.log.Info("embedded JetStream restarted", "took", time.Since(start))
	if reason, _ := s.check(); reason == "" && s.guard.clear() {
		s.log.Info("the event store takes writes again")
	}
}

// check says why the embedded server refuses writes ("" when it does
// not), and whether a restart of JetStream would heal it now.
func (s *Store) check() (reason string, heal bool) {
	free, statErr := diskFree(s.cfg.DataDir)
	roomy := statErr != nil || free >= 2*headroom // unknown: try
	if !s.ns.JetStreamEnabled() {
		if s.ns.JetStreamConfig() != nil {
			return "JetStream is shutting down after a failed write", false
		}
		return "JetStream stopped after a failed write", roomy
	}
	info, err := s.ns.Jsz(nil)
	if err != nil || info.Disabled {
		return "JetStream does not answer", false
	}
	used, limit := int64(info.Store), info.Config.MaxStore
	if used+headroom > limit {
		r := fmt.Sprintf("the file store is at its limit (%s of %s used", mib(used), mib(limit))
		if statErr == nil {
			r += fmt.Sprintf(", %s free on the data volume", mib(free))
		}
		r += ")"
		return r, statErr == nil && storeLimit(free, used) > used+2*headroom
	}
	if statErr == nil && free < headroom {
		return fmt.Sprintf("the data volume is full (%s free)", mib(free)), false
	}
	// Users without an account (natsauth) are in the global one.
	h := s.ns.Healthz(&server.HealthzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Stream: StreamName})
	if h != nil && h.Error != "" {
		return "JetStream reports " + h.Error, roomy
	}
	return "", false
}

// storeLimit is the file store limit JetStream would set itself at
// start-up (dynJetStreamConfig, finalizeDynamicMaxStore): 75% of the free
// space plus 75% of what the store holds.
func storeLimit(free, used int64) int64 { return free/4*3 + used/4*3 }

// initialStoreLimit is storeLimit for dir before the server starts, or 0
// (JetStream then sizes the store itself, and the limit cannot be raised
// while it runs).
func initialStoreLimit(dir string) int64 {
	free, err := diskFree(dir)
	if err != nil {
		return 0
	}
	var used int64
	_ = filepath.WalkDir(filepath.Join(dir, server.JetStreamStoreDir), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				used += info.Size()
			}
		}
		return nil
	})
	return storeLimit(free, used)
}

// raiseLimit raises the file store's limit, when the server's
// configuration allows it, to what free space allows now. JetStream takes a
// larger limit while it runs (a config reload); a smaller one never.
func (s *Store) raiseLimit() bool {
	if s.opts.JetStreamMaxStore <= 0 {
		return false
	}
	free, err := diskFree(s.cfg.DataDir)
	if err != nil {
		return false
	}
	info, err := s.ns.Jsz(nil)
	if err != nil || info.Disabled {
		return false
	}
	next := storeLimit(free, int64(info.Store))
	if next <= info.Config.MaxStore {
		return false
	}
	o := s.opts.Clone()
	o.JetStreamMaxStore = next
	if err := s.ns.ReloadOptions(o); err != nil {
		s.log.Warn("raising the file store's limit failed", "err", err)
		return false
	}
	s.opts.JetStreamMaxStore = next
	s.log.Info("file store limit raised", "limit", mib(next), "free", mib(free))
	return true
}

// restartJetStream shuts JetStream down and enables it again with the
// configuration the server started with.
func (s *Store) restartJetStream() error {
	if err := s.ns.ShutdownJetStream(); err != nil {
		return fmt.Errorf("shut JetStream down: %w", err)
	}
	o := s.opts
	cfg := &server.JetStreamConfig{
		StoreDir:     o.StoreDir,
		SyncInterval: o.SyncInterval,
		SyncAlways:   o.SyncAlways,
		Strict:       !o.NoJetStreamStrict,
		MaxMemory:    o.JetStreamMaxMemory,
		MaxStore:     o.JetStreamMaxStore,
		Domain:       o.JetStreamDomain,
		CompressOK:   true,
		UniqueTag:    o.JetStreamUniqueTag,
	}
	if err := s.ns.EnableJetStream(cfg); err != nil {
		return fmt.Errorf("enable JetStream: %w", err)
	}
	if s.staging != "" {
		// The server removed the link as it recovered the stream.
		var err error
		if s.staging, err = s.stageInMemory(s.staging); err != nil {
			s.log.Warn("group commit batches are staged on disk", "err", err)
		}
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
