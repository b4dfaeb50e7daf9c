package projections_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// benchCheckpointEngagements is how many engagements BenchmarkLoadCheckpoint's file holds.
const benchCheckpointEngagements = 100_000

// BenchmarkLoadCheckpoint loads a checkpoint of 100k engagements, each
// recorded, signed and noted (with an idempotency key on the first), what a
// restart of a large deployment does before it follows the stream.
func BenchmarkLoadCheckpoint(b *testing.B) {
	p, last := benchCheckpointProjector(b)
	path := filepath.Join(b.TempDir(), "cp")
	if _, err := p.Checkpoint(path); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		q := projections.New(nil)
		if _, err := q.LoadCheckpoint(context.Background(), path, streamOf(last)); err != nil {
			b.Fatal(err)
		}
		if q.Count() != benchCheckpointEngagements {
			b.Fatalf("loaded %d engagements", q.Count())
		}
	}
}

// BenchmarkCheckpoint saves the same 100k engagements: what serve's periodic
// save costs the process (CPU and allocations) while it serves.
func BenchmarkCheckpoint(b *testing.B) {
	p, _ := benchCheckpointProjector(b)
	path := filepath.Join(b.TempDir(), "cp")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Checkpoint(path); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCheckpointProjector folds benchCheckpointEngagements engagements and
// returns it with the stream's last event.
func benchCheckpointProjector(b *testing.B) (*projections.Projector, memReader) {
	b.Helper()
	p := projections.New(nil)
	last := memReader{} // the stream as the check sees it: its last event only
	var seq uint64
	for i := range benchCheckpointEngagements {
		id := newID()
		rec := recorded(id, domain.KindAgreement, fmt.Sprintf("MOU %d", i), []string{"IOM", "WHO", fmt.Sprintf("P%d", i%500)},
			[]string{"mou", fmt.Sprintf("t%d", i%50)})
		rec.IdempotencyKey = "new:" + id
		seq++
		p.Handle(seq, rec, nil)
		seq++
		p.Handle(seq, event(id, domain.KindAgreement, 2, domain.AgreementSigned, `{"signed_on":"2019-01-01"}`), nil)
		seq++
		note := event(id, domain.KindAgreement, 3, domain.EngagementNoted, `{"note":"a note"}`)
		p.Handle(seq, note, nil)
		last = memReader{seq: note}
	}
	return p, last
}
