package projections_test

import (
	"fmt"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// BenchmarkDated100k is a calendar feed's read at 100k engagements, a
// third of them active agreements with an expiry: the time the
// projection's read lock is held per fetch.
func BenchmarkDated100k(b *testing.B) {
	p := projections.New(nil)
	var seq uint64
	for i := range 100_000 {
		id := newID()
		kind := domain.KindPolicy
		if i%3 == 0 {
			kind = domain.KindAgreement
		}
		seq++
		p.Handle(seq, recorded(id, kind, fmt.Sprint("engagement ", i), []string{"IOM", "WHO"}, nil), nil)
		if kind == domain.KindAgreement {
			seq++
			p.Handle(seq, event(id, kind, 2, domain.AgreementSigned,
				fmt.Sprintf(`{"signed_on":"2020-01-01","expires_on":"2030-%02d-%02d"}`, i%12+1, i%28+1)), nil)
		}
	}
	for _, f := range []projections.DatedFilter{{}, {Kind: domain.KindAgreement, Until: "2030-02-01"}} {
		b.Run(fmt.Sprintf("kind=%q,until=%q", f.Kind, f.Until), func(b *testing.B) {
			for b.Loop() {
				items, _ := p.Dated(f)
				if len(items) == 0 {
					b.Fatal("no items")
				}
			}
		})
	}
}
