package eventstore

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
)

// stagingLink is the stream's batches directory under dir, and where it
// points ("" when it is no link).
func stagingLink(t *testing.T, dir string) (link, target string) {
	t.Helper()
	links := stagingLinks(dir)
	if len(links) != 1 {
		t.Fatalf("batches directories under %s: %v, want one", dir, links)
	}
	target, _ = os.Readlink(links[0])
	return links[0], target
}

// appendConcurrently appends n recorded engagements at once and checks
// that each was stored under a sequence of its own.
func appendConcurrently(t *testing.T, s *Store, n int) {
	t.Helper()
	seqs := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ev := domain.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: domain.EngagementRecorded,
				EngagementID: uuid.Must(uuid.NewV7()).String(), Kind: domain.KindAgreement, Version: 1,
				OccurredAt: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), RecordedAt: time.Now().UTC(), Actor: "test",
				Data: json.RawMessage(`{"kind":"agreement","title":"T","parties":["IOM"]}`)}
			seqs[i], _, errs[i] = s.Append(t.Context(), ev, 0)
		})
	}
	wg.Wait()
	seen := make(map[uint64]bool)
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("append %d: %v", i, errs[i])
		}
		if seqs[i] == 0 || seen[seqs[i]] {
			t.Fatalf("append %d stored at %d, which is 0 or another's", i, seqs[i])
		}
		seen[seqs[i]] = true
	}
}

// TestStagingInMemory: under SyncAlways the embedded server stages the
// group commit's batches in a tmpfs directory of the store's, through a link
// from the stream's batches directory; batches go through it, Close removes
// both, a directory left by a process that stopped without Close is removed
// at the next Open, and a restart of JetStream (which removes the link)
// links it again.
func TestStagingInMemory(t *testing.T) {
	if !isTmpfs(stagingRoot) {
		t.Skipf("%s is not tmpfs here: batches are staged on disk", stagingRoot)
	}
	dir := t.TempDir()
	s, err := Open(t.Context(), Config{DataDir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if s.staging == "" || s.committer == nil || s.committer.minBatch != minBatchInMemory {
		t.Fatalf("staging %q, committer %v: want batches staged in memory", s.staging, s.committer)
	}
	if link, target := stagingLink(t, dir); target != s.staging {
		t.Fatalf("%s points at %q, want %q", link, target, s.staging)
	}
	appendConcurrently(t, s, 40)
	if _, target := stagingLink(t, dir); target != s.staging {
		t.Fatalf("after appends the batches directory points at %q, want %q", target, s.staging)
	}

	// A restart of JetStream (the watcher's, after the disk filled)
	// recovers the stream, which removes the link: it is made again.
	first := s.staging
	if err := s.restartJetStream(); err != nil {
		t.Fatalf("restartJetStream: %v", err)
	}
	if _, target := stagingLink(t, dir); s.staging == "" || target != s.staging {
		t.Fatalf("after a JetStream restart the batches directory points at %q, staging %q", target, s.staging)
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Fatalf("the staging directory before the restart, %s: %v, want removed", first, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !s.Connected() || s.Ping(t.Context()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not answer after the JetStream restart")
		}
		time.Sleep(10 * time.Millisecond)
	}
	appendConcurrently(t, s, 40)

	// Stopped without Close, as by a kill: the link and the directory stay.
	left := s.staging
	s.stopWatcher()
	s.committer.stop()
	s.nc.Close()
	s.shutdownServer()
	if _, target := stagingLink(t, dir); target != left {
		t.Fatalf("after a stop without Close the batches directory points at %q, want %q", target, left)
	}
	s, err = Open(t.Context(), Config{DataDir: dir})
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("the staging directory left behind, %s: %v, want removed", left, err)
	}
	if s.staging == "" || s.staging == left {
		t.Fatalf("staging %q after the new Open, want a new directory", s.staging)
	}
	appendConcurrently(t, s, 10)
	staging := s.staging
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(staging); !os.IsNotExist(err) {
		t.Fatalf("staging directory %s after Close: %v, want removed", staging, err)
	}
	if links := stagingLinks(dir); len(links) != 0 {
		t.Fatalf("batches link after Close: %v", links)
	}
	if leftover, _ := filepath.Glob(filepath.Join(stagingRoot, stagingPrefix+"*")); len(leftover) > 0 {
		t.Logf("other staging directories on this machine (other processes'): %v", leftover)
	}
}

// TestStagingNotForInterval: under SyncInterval there is no group commit
// and nothing is staged in memory.
func TestStagingNotForInterval(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), Config{DataDir: dir, Sync: SyncInterval})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if s.staging != "" || s.committer != nil {
		t.Fatalf("staging %q, committer %v under SyncInterval", s.staging, s.committer)
	}
}
