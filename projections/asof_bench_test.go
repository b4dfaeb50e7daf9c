package projections_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
)

// BenchmarkListAsOf lists the first 100 engagements within a window on a
// real embedded stream of 10k events over 1k engagements (recorded, then
// notes round-robin, occurred a minute apart): as_of half-way through the
// stream (every engagement shown has about half its events inside, read
// from the stream: pipelined, one event at a time, or from the window
// cache once the first page read them), and as_of after the last event
// (none read).
func BenchmarkListAsOf(b *testing.B) {
	const events, engagements = 10_000, 1_000
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: b.TempDir(), Sync: eventstore.SyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ids := make([]string, engagements)
	hashes := make([]string, engagements)
	seqs := make([]uint64, engagements)
	for i := range ids {
		ids[i] = newID()
	}
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range events {
		k, version := i%engagements, i/engagements+1
		ev := event(ids[k], domain.KindAgreement, version, domain.EngagementNoted, fmt.Sprintf(`{"note":"note %d"}`, i))
		if version == 1 {
			ev = recorded(ids[k], domain.KindAgreement, fmt.Sprintf("MOU %d", i), []string{"IOM", "WHO"}, []string{"mou"})
		}
		ev.OccurredAt, ev.PrevHash = start.Add(time.Duration(i)*time.Minute), hashes[k]
		seq, _, err := store.Append(ctx, ev, seqs[k])
		if err != nil {
			b.Fatal(err)
		}
		stored, err := store.Event(ctx, seq)
		if err != nil {
			b.Fatal(err)
		}
		hashes[k], seqs[k] = stored.Hash, seq
	}
	p := projections.New(nil)
	p.UseReader(store)
	if err := p.Fold(ctx, store, nil); err != nil || p.Stats().Events != events {
		b.Fatalf("fold: %v, %+v", err, p.Stats())
	}
	half := start.Add(events / 2 * time.Minute)
	for _, c := range []struct {
		name   string
		at     time.Time
		reader projections.Reader
		cold   bool // the window cache emptied before each page
	}{
		{"half-way, cached", half, store, false},
		{"half-way, pipelined", half, store, true},
		// The store hidden behind an interface without Events: the events
		// are read one direct get at a time, 8 engagements at once, as
		// before the pipelined reads.
		{"half-way, one event at a time", half, struct{ projections.Reader }{store}, true},
		{"after the last", start.Add(events * time.Minute), store, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			p.UseReader(c.reader)
			f := projections.Filter{Limit: 100, Window: domain.Window{AsOf: c.at}, Now: c.at}
			for b.Loop() {
				if c.cold {
					p.UseReader(c.reader) // a new reader: nothing cached
				}
				items, more, err := p.List(ctx, f)
				if err != nil || len(items) != 100 || !more {
					b.Fatalf("List = %d items, more %v, %v", len(items), more, err)
				}
			}
		})
	}
}
