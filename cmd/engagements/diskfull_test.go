//go:build linux

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size MiB on a fresh directory and unmounts it
// when the test ends; it skips the test where mounting is not allowed (the
// file builds on Linux only).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the full-disk test mounts a tmpfs and needs root (CI runs it as root)")
	}
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0700", size))
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("the full-disk test mounts a tmpfs; not allowed here: %v", err)
	}
	if err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fullDiskWrite is one write the load sent and how it was answered.
type fullDiskWrite struct {
	status     int
	retryAfter string
	took       time.Duration
	eventID    string
	// engagementID is set when the write recorded an engagement.
	engagementID string
}

// A full data volume: writes are refused at once with 503 and Retry-After,
// /readyz says why, and once space is freed the same process takes writes
// again; nothing acknowledged is lost. The embedded server sizes its file
// store at start-up to 75% of the free space, so a filler file written
// first and removed later plays the other tenant of the volume.
func TestFullDiskRefusesWritesFastAndHealsWithoutRestart(t *testing.T) {
	vol := mountTmpfs(t, 16)
	filler := filepath.Join(vol, "filler")
	if err := os.WriteFile(filler, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatalf("filler: %v", err)
	}
	m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: filepath.Join(vol, "data"), Sync: "always", Replicas: 1}}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	c := newOpsClient(t, m)
	note := strings.Repeat("full disk ", 300) // 3 KB

	// Writers fill the store: each records an engagement and notes it until
	// its writes have been refused a few times.
	const writers, refusalsEach, maxWrites = 8, 5, 4000
	var (
		mu     sync.Mutex
		writes []fullDiskWrite
		wg     sync.WaitGroup
	)
	send := func(path, body string) fullDiskWrite {
		start := time.Now()
		r, err := c.do(http.MethodPost, path, body)
		w := fullDiskWrite{took: time.Since(start)}
		if err != nil {
			t.Errorf("POST %s: %v", path, err)
			return w
		}
		w.status, w.retryAfter = r.status, r.header.Get("Retry-After")
		if r.status == http.StatusCreated {
			var ev opsEvent
			r.decode(t, &ev)
			w.eventID = ev.ID
			if path == "/v1/engagements" {
				// The answer is the engagement; its recorded event is the
				// first of its history.
				var h struct{ Events []opsEvent }
				c.must(t, http.MethodGet, "/v1/engagements/"+ev.ID+"/history", "").decode(t, &h)
				if len(h.Events) != 1 {
					t.Errorf("history of a new engagement: %d events", len(h.Events))
					return w
				}
				w.eventID, w.engagementID = h.Events[0].ID, ev.ID
			}
		}
		mu.Lock()
		writes = append(writes, w)
		mu.Unlock()
		return w
	}
	for i := range writers {
		wg.Go(func() {
			id := ""
			for refused, n := 0, 0; refused < refusalsEach && n < maxWrites/writers; n++ {
				var w fullDiskWrite
				if id == "" {
					w = send("/v1/engagements", fmt.Sprintf(`{"kind":"initiative","title":"Writer %d","parties":["IOM"]}`, i))
					id = w.engagementID
				} else {
					w = send("/v1/engagements/"+id+"/events", `{"type":"engagement.noted","data":{"note":"`+note+`"}}`)
				}
				if w.status == http.StatusServiceUnavailable {
					refused++
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	var (
		acked       []string
		refusedTook []time.Duration
		id          string // an engagement to note once space is back
	)
	for _, w := range writes {
		switch w.status {
		case http.StatusCreated:
			acked = append(acked, w.eventID)
			id = cmp.Or(w.engagementID, id)
		case http.StatusServiceUnavailable:
			if w.retryAfter == "" {
				t.Errorf("a refused write answered 503 without Retry-After")
			}
			refusedTook = append(refusedTook, w.took)
		default:
			t.Errorf("a write on a filling disk answered %d; want 201 or 503", w.status)
		}
	}
	if len(refusedTook) == 0 {
		t.Fatalf("%d writes (%d acknowledged), none refused: the volume did not fill", len(writes), len(acked))
	}
	slices.Sort(refusedTook)
	t.Logf("%d writes: %d acknowledged, %d refused (503) in %v median, %v at most",
		len(writes), len(acked), len(refusedTook), refusedTook[len(refusedTook)/2], refusedTook[len(refusedTook)-1])
	// Timing is not what this test asserts; this is a safety net against a
	// refusal that waits for a publish timeout (5 s and more before).
	if slowest := refusedTook[len(refusedTook)-1]; slowest > 3*time.Second {
		t.Errorf("the slowest refused write took %v; want a refusal at once", slowest)
	}

	// While the store refuses writes, /readyz is not ready and says why.
	r := c.must(t, http.MethodGet, "/readyz", "")
	if r.status != http.StatusServiceUnavailable || !bytes.Contains(r.body, []byte("writes refused")) {
		t.Errorf("/readyz while the store refuses writes = %s; want 503 saying writes are refused", r)
	}
	if r.header.Get("Retry-After") == "" {
		t.Errorf("/readyz 503 without Retry-After")
	}
	if n := metricValue(t, c, "engagements_store_write_failures_total"); n < float64(len(refusedTook)) {
		t.Errorf("engagements_store_write_failures_total = %v; want at least the %d refused writes", n, len(refusedTook))
	}
	if n := metricValue(t, c, "engagements_store_writes_refused"); n != 1 {
		t.Errorf("engagements_store_writes_refused = %v while refused; want 1", n)
	}

	// Free the space: the same process takes writes again, within seconds.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	attempts := 0
	waitUntil(t, 30*time.Second, "a write after space was freed", func() bool {
		attempts++
		w := send("/v1/engagements/"+id+"/events", `{"type":"engagement.noted","data":{"note":"after the disk was freed"}}`)
		switch w.status {
		case http.StatusCreated:
			acked = append(acked, w.eventID)
			return true
		case http.StatusServiceUnavailable:
			if w.retryAfter == "" {
				t.Errorf("a refused write answered 503 without Retry-After")
			}
		default:
			t.Fatalf("a write after space was freed answered %d", w.status)
		}
		return false
	})
	t.Logf("writes taken again after %d attempts", attempts)
	waitUntil(t, 10*time.Second, "/readyz 200 after space was freed", func() bool {
		return c.must(t, http.MethodGet, "/readyz", "").status == http.StatusOK
	})
	if n := metricValue(t, c, "engagements_store_writes_refused"); n != 0 {
		t.Errorf("engagements_store_writes_refused = %v after healing; want 0", n)
	}

	// Every acknowledged write is in the log, once.
	seen := map[string]int{}
	log := c.logEvents(t)
	for _, ev := range log {
		seen[ev.ID]++
	}
	var missing, twice []string
	for _, id := range acked {
		switch seen[id] {
		case 1:
		case 0:
			missing = append(missing, id)
		default:
			twice = append(twice, id)
		}
	}
	if len(missing)+len(twice) > 0 {
		last, err := m.Store.LastSequence(context.Background())
		t.Errorf("of %d acknowledged events, %d are not in the log (e.g. %q) and %d more than once (%q); the log has %d events, the stream ends at %d (%v)",
			len(acked), len(missing), missing[:min(3, len(missing))], len(twice), twice[:min(3, len(twice))], len(log), last, err)
	}
}

// metricValue reads one unlabelled metric from /metrics.
func metricValue(t *testing.T, c *opsClient, name string) float64 {
	t.Helper()
	r := c.must(t, http.MethodGet, "/metrics", "")
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return f
		}
	}
	t.Errorf("/metrics has no %s", name)
	return math.NaN()
}
