package projections

import (
	"time"

	"github.com/iom-who/engagements/domain"
)

// Result is what an append produced, remembered per idempotency key so a
// retried request gets the first answer.
type Result struct {
	EngagementID string
	EventID      string
	Type         domain.EventType
	Sequence     uint64
	Version      int
	// RecordedAt is when the first append was stored; keys are forgotten
	// IdempotencyMemory after it.
	RecordedAt time.Time
}

// IdempotencyMemory is how long the projection remembers idempotency keys:
// a request retried within a day (and an hour's margin) gets the first
// answer. JetStream's own duplicate window (eventstore.DuplicateWindow) is
// far shorter: it only covers appends of one key in flight at once, and the
// command path relies on this memory for everything older.
const IdempotencyMemory = 25 * time.Hour

// pruneEvery is how many folded events pass between prunings of old keys.
const pruneEvery = 4096

// keys is the read model of the idempotency keys used within
// IdempotencyMemory, with what the append that used each one produced.
type keys struct {
	results map[string]Result
	folded  uint64 // events folded since the last pruning
}

func newKeys() keys { return keys{results: make(map[string]Result)} }

// Apply remembers ev's key, if it has one, and now and then forgets the
// keys first used more than IdempotencyMemory before ev was recorded.
func (k *keys) Apply(seq uint64, ev domain.Event) {
	if ev.IdempotencyKey != "" {
		k.results[ev.IdempotencyKey] = Result{EngagementID: ev.EngagementID, EventID: ev.ID, Type: ev.Type,
			Sequence: seq, Version: ev.Version, RecordedAt: ev.RecordedAt}
	}
	if k.folded++; k.folded == pruneEvery {
		k.folded = 0
		k.prune(ev.RecordedAt.Add(-IdempotencyMemory))
	}
}

// prune forgets idempotency keys first used before cutoff, so the map
// stays as large as a day's keyed writes, not all of history's.
func (k *keys) prune(cutoff time.Time) {
	for key, r := range k.results {
		if r.RecordedAt.Before(cutoff) {
			delete(k.results, key)
		}
	}
}

// savedKey is one idempotency key in the checkpoint.
type savedKey struct {
	Key    string
	Result Result
}

func (k *keys) save() saving {
	entries := make([]savedKey, 0, len(k.results))
	for key, r := range k.results {
		entries = append(entries, savedKey{Key: key, Result: r})
	}
	return saving{parts: chunks(len(entries)), part: func(i int) any {
		start, end := chunk(i, len(entries))
		return entries[start:end]
	}}
}

func (k *keys) load(n int) (loader, error) {
	return &keysLoader{k: k, parts: make([][]savedKey, n)}, nil
}

type keysLoader struct {
	k     *keys
	parts [][]savedKey
}

func (l *keysLoader) decode(i int, b []byte) error { return decodePart(b, &l.parts[i]) }

func (l *keysLoader) restore(uint64) {
	n := 0
	for _, part := range l.parts {
		n += len(part)
	}
	k := keys{results: make(map[string]Result, n)}
	for _, part := range l.parts {
		for _, e := range part {
			k.results[e.Key] = e.Result
		}
	}
	*l.k = k
}
