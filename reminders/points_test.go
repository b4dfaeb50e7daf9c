package reminders

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
)

func TestParseOffsets(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		err  bool
	}{
		{"90,30,7", []int{90, 30, 7}, false},
		{"7, 30 ,90,30", []int{90, 30, 7}, false},
		{"1", []int{1}, false},
		{"", nil, true},
		{"0", nil, true},
		{"-7", nil, true},
		{"7.5", nil, true},
		{"7d", nil, true},
		{"90,,7", nil, true},
		{"36501", nil, true},
		{"1,2,3,4,5,6,7,8,9,10,11", nil, true},
		{"1,2,3,4,5,6,7,8,9,10", []int{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseOffsets(tt.in)
			if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
				t.Fatalf("ParseOffsets(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

// TestClock: real days start at midnight UTC; short days count from the
// origin's whole second.
func TestClock(t *testing.T) {
	noon := time.Date(2026, 12, 3, 12, 30, 0, 0, time.UTC)
	real := newClock(0, noon)
	d := time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)
	if got := real.start(d); !got.Equal(d) {
		t.Errorf("real start of %s = %s", d, got)
	}
	if got := real.today(time.Date(2027, 1, 15, 23, 59, 0, 0, time.UTC)); !got.Equal(d) {
		t.Errorf("real today = %s, want %s", got, d)
	}
	origin := noon.Add(300 * time.Millisecond)
	short := newClock(2*time.Second, origin)
	today := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		at   time.Duration // after noon
		days int
	}{{0, 0}, {1999 * time.Millisecond, 0}, {2 * time.Second, 1}, {7 * time.Second, 3}, {-time.Millisecond, -1}} {
		if got := short.today(noon.Add(tt.at)); !got.Equal(today.AddDate(0, 0, tt.days)) {
			t.Errorf("short today at noon%+v = %s, want day %+d", tt.at, got, tt.days)
		}
	}
	if got := short.start(today.AddDate(0, 0, 3)); !got.Equal(noon.Add(6 * time.Second)) {
		t.Errorf("short start of day 3 = %s, want %s", got, noon.Add(6*time.Second))
	}
}

// agreementView is an active agreement expiring on exp, with the reminders
// recorded so far folded in.
func agreementView(t *testing.T, exp string, reminded ...int) *domain.View {
	t.Helper()
	e := &domain.Engagement{}
	id := uuid.Must(uuid.NewV7()).String()
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	apply := func(typ domain.EventType, actor string, data any) {
		b, _ := json.Marshal(data)
		ev := domain.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, EngagementID: id, Kind: domain.KindAgreement,
			Version: e.Version() + 1, OccurredAt: at, RecordedAt: at, Actor: actor, Data: b, PrevHash: e.Hash()}
		if err := e.Apply(ev); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	apply(domain.EngagementRecorded, "test", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})
	apply(domain.AgreementSigned, "test", map[string]any{"signed_on": "2023-01-01", "expires_on": exp})
	for _, n := range reminded {
		apply(domain.AgreementExpiring, domain.SystemActor, map[string]any{"expires_on": exp, "days_left": n, "deadline": "expiry"})
	}
	v := e.View()
	return &v
}

// TestDecide: what a due reminder records on the agreement as it is on a
// day: the latest reminder due after a pause, never one recorded or
// superseded, expired only once the day is over.
func TestDecide(t *testing.T) {
	offsets := []int{90, 30, 7}
	const exp = "2025-06-30"
	on := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	tests := []struct {
		name     string
		reminded []int
		offset   int
		today    string
		want     string // "type:days_left", "" nothing; "later" not due yet
	}{
		{"90 days before, on time", nil, 90, "2025-04-01", "agreement.expiring:90"},
		{"90 days before, not yet", nil, 90, "2025-03-31", "later"},
		{"90 days before, late but before 30", nil, 90, "2025-04-10", "agreement.expiring:81"},
		{"90 days before, superseded by 30", nil, 90, "2025-06-05", ""},
		{"30 days before, late by a day", []int{90}, 30, "2025-06-01", "agreement.expiring:29"},
		{"30 days before, recorded already", []int{90, 30}, 30, "2025-05-31", ""},
		{"7 days before, on the day of expiry", []int{90, 30}, 7, "2025-06-30", "agreement.expiring:0"},
		{"7 days before, after expiry", []int{90, 30}, 7, "2025-07-01", ""},
		{"expired, on the last day", nil, after, "2025-06-30", "later"},
		{"expired, the day after", []int{90, 30, 7}, after, "2025-07-01", "agreement.expired"},
		{"expired, years after", nil, after, "2031-01-01", "agreement.expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := agreementView(t, exp, tt.reminded...)
			p := point{Engagement: v.ID, Kind: domain.DeadlineExpiry, On: exp, Offset: tt.offset}
			r, why, notYet := decide(v, p, offsets, on(tt.today))
			got := ""
			switch {
			case notYet:
				got = "later"
			case r.typ != "":
				got = string(r.typ)
				if d, ok := r.data.(domain.ExpiringData); ok {
					got += fmt.Sprintf(":%d", d.DaysLeft)
				}
			}
			if got != tt.want {
				t.Errorf("decide = %q (%s), want %q", got, why, tt.want)
			}
		})
	}
	t.Run("a moved expiry", func(t *testing.T) {
		v := agreementView(t, exp)
		p := point{Engagement: v.ID, Kind: domain.DeadlineExpiry, On: "2025-05-31", Offset: 30}
		if r, why, _ := decide(v, p, offsets, on("2025-05-01")); r.typ != "" || !strings.Contains(why, "moved") {
			t.Errorf("decide on a moved expiry = %v (%s), want nothing", r.typ, why)
		}
	})
}

// TestPointSubjectsAndKeys: one schedule subject per deadline and offset,
// the same whatever the day (so a moved deadline replaces its schedule);
// the key names the day too; references are hashed, never put in a
// subject as they are.
func TestPointSubjectsAndKeys(t *testing.T) {
	id := uuid.Must(uuid.NewV7()).String()
	a := point{Engagement: id, Kind: domain.DeadlineAction, Ref: "fix.*.>", On: "2025-06-30", Offset: after}
	b := a
	b.On = "2025-07-31"
	if a.scheduleSubject() != b.scheduleSubject() {
		t.Errorf("subjects differ by day: %s, %s", a.scheduleSubject(), b.scheduleSubject())
	}
	if a.idempotencyKey() == b.idempotencyKey() {
		t.Errorf("keys equal across days: %s", a.idempotencyKey())
	}
	if strings.ContainsAny(strings.TrimPrefix(a.scheduleSubject(), scheduleRoot+"."), "*> ") || strings.Count(a.scheduleSubject(), ".") != 5 {
		t.Errorf("subject %s carries the reference", a.scheduleSubject())
	}
	for _, bad := range []point{
		{Engagement: "not-an-id", Kind: domain.DeadlineExpiry, On: "2025-06-30"},
		{Engagement: id, Kind: "soon", On: "2025-06-30"},
		{Engagement: id, Kind: domain.DeadlineExpiry, On: "30/06/2025"},
		{Engagement: id, Kind: domain.DeadlineExpiry, On: "2025-06-30", Offset: -2},
	} {
		if bad.valid() == nil {
			t.Errorf("%+v is valid", bad)
		}
	}
}
