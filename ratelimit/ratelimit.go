// Package ratelimit keeps one token bucket per key (a token's name, a
// session, a client address), on golang.org/x/time/rate. The API limits
// tokens with it and the web pages limit sessions and sign-ins; each maps a
// refusal to its own answer (problem+json or a page) with Retry-After.
//
// It imports nothing of this module.
package ratelimit

import (
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds the buckets a Keyed keeps when New is given 0.
const DefaultMaxKeys = 100_000

// Keyed is a set of token buckets, one per key, each filling at the same
// rate up to the same burst. A nil *Keyed allows everything.
//
// It keeps at most maxKeys buckets: beyond that it first drops the buckets
// that are full again (forgetting them loses nothing), then, if every one
// is in use, an arbitrary one, whose key starts afresh with a full bucket.
// So memory stays bounded whoever invents new keys.
type Keyed struct {
	limit   rate.Limit
	burst   int
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time // when full buckets were last dropped
}

// New returns buckets of burst tokens refilled at perSecond per key, or nil
// (no limit) when perSecond is 0 or less. burst is at least 1; maxKeys 0
// means DefaultMaxKeys.
func New(perSecond float64, burst, maxKeys int) *Keyed {
	if perSecond <= 0 {
		return nil
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Keyed{limit: rate.Limit(perSecond), burst: max(burst, 1), maxKeys: maxKeys,
		buckets: make(map[string]*rate.Limiter)}
}

// PerSecond is the rate each bucket refills at (0 for a nil Keyed).
func (k *Keyed) PerSecond() float64 {
	if k == nil {
		return 0
	}
	return float64(k.limit)
}

// Burst is the size of each bucket (0 for a nil Keyed).
func (k *Keyed) Burst() int {
	if k == nil {
		return 0
	}
	return k.burst
}

// Allow takes a token from key's bucket at now. When the bucket is empty it
// takes nothing and returns false with how long until a token is there.
func (k *Keyed) Allow(key string, now time.Time) (wait time.Duration, ok bool) {
	if k == nil {
		return 0, true
	}
	k.mu.Lock()
	b, found := k.buckets[key]
	if !found {
		k.makeRoom(now)
		b = rate.NewLimiter(k.limit, k.burst)
		k.buckets[key] = b
	}
	k.mu.Unlock()
	r := b.ReserveN(now, 1)
	wait = r.DelayFrom(now)
	if wait == 0 {
		return 0, true
	}
	r.CancelAt(now)
	return wait, false
}

// Forget drops key's bucket, as when a session ends.
func (k *Keyed) Forget(key string) {
	if k == nil {
		return
	}
	k.mu.Lock()
	delete(k.buckets, key)
	k.mu.Unlock()
}

// makeRoom keeps the buckets under maxKeys before one is added. Full
// buckets are looked for at most once per refill time, so a flood of new
// keys costs O(1) per key on average.
func (k *Keyed) makeRoom(now time.Time) {
	if len(k.buckets) < k.maxKeys {
		return
	}
	refill := time.Duration(float64(k.burst) / float64(k.limit) * float64(time.Second))
	if now.Sub(k.swept) >= refill {
		k.swept = now
		for key, b := range k.buckets {
			if b.TokensAt(now) >= float64(k.burst) {
				delete(k.buckets, key)
			}
		}
	}
	for key := range k.buckets {
		if len(k.buckets) < k.maxKeys {
			break
		}
		delete(k.buckets, key)
	}
}

// RetryAfter is wait as a Retry-After value: whole seconds, at least 1.
func RetryAfter(wait time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
}

// Len is how many buckets are kept.
func (k *Keyed) Len() int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}
