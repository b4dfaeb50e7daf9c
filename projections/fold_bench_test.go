package projections_test

import (
	"fmt"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// BenchmarkFold folds 100k decoded events over 1k engagements (recorded,
// then notes round-robin, one in ten with an idempotency key) into a fresh
// projector, the projection's share of a rebuild without the stream.
func BenchmarkFold(b *testing.B) {
	const events, engagements = 100_000, 1_000
	ids := make([]string, engagements)
	for i := range ids {
		ids[i] = newID()
	}
	evs := make([]domain.Event, 0, events)
	for i := range events {
		id, version := ids[i%engagements], i/engagements+1
		ev := event(id, domain.KindAgreement, version, domain.EngagementNoted, fmt.Sprintf(`{"note":"note %d"}`, i))
		if version == 1 {
			ev = recorded(id, domain.KindAgreement, fmt.Sprintf("MOU %d", i), []string{"IOM", "WHO"}, []string{"mou"})
		}
		if i%10 == 0 {
			ev.IdempotencyKey = "k:" + ev.ID
		}
		evs = append(evs, ev)
	}
	for b.Loop() {
		p := projections.New(nil)
		for i, ev := range evs {
			p.Handle(uint64(i+1), ev, nil)
		}
		if st := p.Stats(); st.Events != events || st.Rejected != 0 {
			b.Fatalf("folded %+v", st)
		}
	}
	b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
}
