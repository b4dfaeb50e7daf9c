package domain

import (
	"testing"
	"time"
)

func TestDeadlines(t *testing.T) {
	now := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		v    View
		want []Deadline
	}{
		{"active agreement", View{Kind: KindAgreement, Status: StatusActive, ExpiresOn: "2027-01-31"},
			[]Deadline{{Kind: DeadlineExpiry, On: "2027-01-31"}}},
		{"open-ended agreement", View{Kind: KindAgreement, Status: StatusActive}, nil},
		{"terminated agreement", View{Kind: KindAgreement, Status: StatusTerminated, ExpiresOn: "2027-01-31"}, nil},
		{"scheduled meeting", View{Kind: KindMeeting, Status: StatusScheduled, StartsOn: "2026-12-10"},
			[]Deadline{{Kind: DeadlineMeeting, On: "2026-12-10"}}},
		{"attended meeting", View{Kind: KindMeeting, Status: StatusAttended, StartsOn: "2026-12-10"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.v.Deadlines()
			if len(got) != len(c.want) {
				t.Fatalf("Deadlines() = %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("Deadlines()[%d] = %v, want %v", i, got[i], c.want[i])
				}
			}
		})
	}
	for on, want := range map[string]int{"2026-12-02": 0, "2026-12-03": 1, "2026-11-30": -2, "2027-12-02": 365} {
		if got := (Deadline{On: on}).DaysLeft(now); got != want {
			t.Errorf("DaysLeft(%s) = %d, want %d", on, got, want)
		}
	}
}
