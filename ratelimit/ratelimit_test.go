package ratelimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/iom-who/engagements/ratelimit"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestBurstThenWait(t *testing.T) {
	k := ratelimit.New(2, 3, 0) // 3 at once, then one every 500 ms
	for i := range 3 {
		if _, ok := k.Allow("a", t0); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	wait, ok := k.Allow("a", t0)
	if ok || wait != 500*time.Millisecond {
		t.Errorf("4th: ok %v wait %v, want refused, 500ms", ok, wait)
	}
	if got := ratelimit.RetryAfter(wait); got != "1" {
		t.Errorf("Retry-After %q, want 1 (rounded up)", got)
	}
	if _, ok := k.Allow("b", t0); !ok {
		t.Error("another key shares the first one's bucket")
	}
	if _, ok := k.Allow("a", t0.Add(500*time.Millisecond)); !ok {
		t.Error("refused after the wait it was told")
	}
	k.Forget("a")
	if _, ok := k.Allow("a", t0.Add(500*time.Millisecond)); !ok {
		t.Error("a forgotten key does not start with a full bucket")
	}
}

func TestNilAllowsEverything(t *testing.T) {
	k := ratelimit.New(0, 10, 0)
	if k != nil {
		t.Fatal("rate 0 should mean no limiter")
	}
	for range 1000 {
		if _, ok := k.Allow("a", t0); !ok {
			t.Fatal("a nil limiter refused")
		}
	}
	k.Forget("a")
	if k.PerSecond() != 0 || k.Burst() != 0 {
		t.Error("a nil limiter reports limits")
	}
}

func TestKeysAreBounded(t *testing.T) {
	k := ratelimit.New(1, 2, 100)
	// A key in use keeps its empty bucket while new keys arrive, unless
	// every bucket is in use.
	k.Allow("busy", t0)
	k.Allow("busy", t0)
	for i := range 99 {
		k.Allow(fmt.Sprint("idle", i), t0.Add(-time.Hour)) // full again by t0
	}
	for i := range 50 {
		k.Allow(fmt.Sprint("new", i), t0)
	}
	if _, ok := k.Allow("busy", t0); ok {
		t.Error("a busy bucket was dropped while full ones could go")
	}
	// Beyond maxKeys of busy keys memory stays bounded all the same.
	for i := range 10_000 {
		k.Allow(fmt.Sprint("flood", i), t0)
		k.Allow(fmt.Sprint("flood", i), t0)
	}
	if n := k.Len(); n > 100 {
		t.Errorf("%d buckets kept, want at most 100", n)
	}
}
