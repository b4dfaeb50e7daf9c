package projections_test

import (
	"fmt"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// TestDated: the open dated items of the current state, by day, with the
// filters a calendar feed uses; closed engagements have none.
func TestDated(t *testing.T) {
	p := projections.New(nil)
	var seq uint64
	add := func(ev domain.Event) {
		seq++
		p.Handle(seq, ev, nil)
	}
	mou, unhcr, ended, draft, wha := newID(), newID(), newID(), newID(), newID()
	add(recorded(mou, domain.KindAgreement, "IOM–WHO MOU", []string{"IOM", "WHO"}, nil))
	add(event(mou, domain.KindAgreement, 2, domain.AgreementSigned, `{"signed_on":"1999-01-01","expires_on":"2027-03-01"}`))
	add(recorded(unhcr, domain.KindAgreement, "IOM–UNHCR", []string{"IOM", "UNHCR"}, nil))
	add(event(unhcr, domain.KindAgreement, 2, domain.AgreementSigned, `{"signed_on":"2020-01-01","expires_on":"2031-01-01"}`))
	add(recorded(ended, domain.KindAgreement, "Ended", []string{"IOM", "WHO"}, nil))
	add(event(ended, domain.KindAgreement, 2, domain.AgreementSigned, `{"signed_on":"2020-01-01","expires_on":"2026-12-24"}`))
	add(event(ended, domain.KindAgreement, 3, domain.AgreementTerminated, `{"reason":"superseded"}`))
	add(recorded(draft, domain.KindAgreement, "Draft", []string{"IOM", "WHO"}, nil))
	add(recorded(wha, domain.KindMeeting, "WHA", []string{"IOM", "WHO"}, nil))
	add(event(wha, domain.KindMeeting, 2, domain.MeetingScheduled, `{"starts_on":"2027-05-18"}`))

	item := func(id string, k domain.DeadlineKind, on string) string { return id + " " + string(k) + " " + on }
	for _, tc := range []struct {
		name string
		f    projections.DatedFilter
		want []string
		more bool
	}{
		{"all, by day", projections.DatedFilter{}, []string{item(mou, domain.DeadlineExpiry, "2027-03-01"),
			item(wha, domain.DeadlineMeeting, "2027-05-18"), item(unhcr, domain.DeadlineExpiry, "2031-01-01")}, false},
		{"kind", projections.DatedFilter{Kind: domain.KindMeeting}, []string{item(wha, domain.DeadlineMeeting, "2027-05-18")}, false},
		{"party, any case", projections.DatedFilter{Party: "unhcr"}, []string{item(unhcr, domain.DeadlineExpiry, "2031-01-01")}, false},
		{"until, inclusive", projections.DatedFilter{Until: "2027-05-18"}, []string{item(mou, domain.DeadlineExpiry, "2027-03-01"),
			item(wha, domain.DeadlineMeeting, "2027-05-18")}, false},
		{"limit keeps the earliest", projections.DatedFilter{Limit: 1}, []string{item(mou, domain.DeadlineExpiry, "2027-03-01")}, true},
		{"kind and party", projections.DatedFilter{Kind: domain.KindAgreement, Party: "WHO"}, []string{item(mou, domain.DeadlineExpiry, "2027-03-01")}, false},
		{"nothing", projections.DatedFilter{Party: "UNICEF"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, more := p.Dated(tc.f)
			var got []string
			for _, it := range items {
				got = append(got, item(it.EngagementID, it.Deadline.Kind, it.On))
				if it.Title == "" || len(it.Parties) == 0 || it.Kind == "" {
					t.Errorf("item without its engagement: %+v", it)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || more != tc.more {
				t.Errorf("got %v (more %v), want %v (more %v)", got, more, tc.want, tc.more)
			}
		})
	}
}
