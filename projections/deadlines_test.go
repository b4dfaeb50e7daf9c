package projections_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/iom-who/engagements/domain"
)

// WithDeadlines lists the engagements with open deadlines, soonest first,
// each once; one that has none is not listed.
func TestWithDeadlinesSoonestFirst(t *testing.T) {
	p := newTestProjector()
	seq := uint64(0)
	handle := func(ev domain.Event) {
		t.Helper()
		seq++
		p.Handle(seq, ev, nil)
	}
	agreement := func(expires string) string {
		id := newID()
		handle(recorded(id, domain.KindAgreement, "MOU "+expires, []string{"IOM", "WHO"}, nil))
		handle(event(id, domain.KindAgreement, 2, domain.AgreementSigned,
			fmt.Sprintf(`{"signed_on":"2020-01-01","expires_on":%q,"notice_days":30}`, expires)))
		return id
	}
	late, soon, middle := agreement("2031-06-30"), agreement("2027-01-15"), agreement("2029-03-01")
	none := newID()
	handle(recorded(none, domain.KindAgreement, "Unsigned MOU", []string{"IOM"}, nil))

	if got, want := p.WithDeadlines(), []string{soon, middle, late}; !slices.Equal(got, want) {
		t.Errorf("WithDeadlines() = %v, want %v (soonest first; not the unsigned %s)", got, want, none)
	}
}
