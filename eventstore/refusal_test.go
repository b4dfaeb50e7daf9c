//go:build linux

package eventstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// tmpfs mounts a tmpfs of size MiB for the test, or skips it where that is
// not allowed.
func tmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0700", size))
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("mounting a tmpfs is not allowed here: %v", err)
	}
	if err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return dir
}

// Another tenant fills the volume after the store started: the file store
// fails a write (ENOSPC), which JetStream never recovers from by itself.
// Appends are refused at once with ErrUnavailable, WritesRefused says so,
// and once the space is freed the store takes appends again.
func TestVolumeFilledByAnotherTenantRefusesThenHeals(t *testing.T) {
	vol := tmpfs(t, 16)
	s := openStore(t, eventstore.Config{DataDir: filepath.Join(vol, "data")})
	stored := mustAppend(t, s, newEvent(newID()), 0)

	filler := filepath.Join(vol, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 64<<10); ; {
		if _, err := f.Write(buf); err != nil {
			break // full
		}
	}
	f.Close()

	// Appends fail; once the store knows, at once.
	var refused error
	for i := 0; i < 100 && refused == nil; i++ {
		start := time.Now()
		_, _, err := s.Append(t.Context(), newEvent(newID()), 0)
		if err == nil {
			stored++
			continue
		}
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("append on a full volume: %v; want ErrUnavailable", err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("append on a full volume took %v", took)
		}
		refused = s.WritesRefused()
	}
	if refused == nil {
		t.Fatal("the store does not refuse writes on a full volume")
	}
	var re *eventstore.RefusedError
	if !errors.As(refused, &re) || !errors.Is(refused, domain.ErrUnavailable) {
		t.Errorf("WritesRefused = %v; want a *RefusedError that is ErrUnavailable", refused)
	}
	start := time.Now()
	if _, _, err := s.Append(t.Context(), newEvent(newID()), 0); !errors.As(err, &re) || time.Since(start) > time.Second {
		t.Errorf("append while refused: %v after %v; want the refusal at once", err, time.Since(start))
	}
	if s.WriteFailures() == 0 {
		t.Error("WriteFailures = 0 after refused appends")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var healed bool
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, _, err := s.Append(t.Context(), newEvent(newID()), 0); err == nil {
			healed = true
			break
		}
	}
	if !healed {
		t.Fatalf("no append taken within 30 s of freeing the volume; refused: %v", s.WritesRefused())
	}
	if err := s.WritesRefused(); err != nil {
		t.Errorf("WritesRefused after an append was taken: %v", err)
	}
	if last := lastSequence(t, s); last < stored+1 {
		t.Errorf("last sequence %d after healing; %d were acknowledged before", last, stored)
	}
}
