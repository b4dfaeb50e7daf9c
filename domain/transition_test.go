package domain

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// fixture is an engagement in a named state.
type fixture struct {
	name   string // "a terminated agreement"
	kind   Kind
	status Status // StatusAt(occurred)
	steps  []step
}

var (
	signed         = step{typ: AgreementSigned}
	signedExpiring = step{typ: AgreementSigned, data: obj{"signed_on": "2019-01-01", "expires_on": "2021-12-31"}}
	renewed        = step{typ: AgreementRenewed, data: obj{"renewed_on": "2023-01-15", "term": TermOpenEnded}}
	assigned       = step{typ: EngagementActionAssigned}
	focalAssigned  = step{typ: EngagementFocalPointAssigned}
	terminated     = step{typ: AgreementTerminated}
	contributed    = step{typ: PolicyContributed}
	adopted        = step{typ: PolicyAdopted}
	committed      = step{typ: PolicyCommitted}
	joined         = step{typ: InitiativeJoined}
	roleChanged    = step{typ: InitiativeRoleChanged, data: obj{"role": "co-chair"}}
	left           = step{typ: InitiativeLeft}
	scheduled      = step{typ: MeetingScheduled}
	attended       = step{typ: MeetingAttended}
	concluded      = step{typ: MeetingConcluded}
)

var fixtures = []fixture{
	{"a draft agreement", KindAgreement, StatusDraft, nil},
	{"a signed agreement", KindAgreement, StatusActive, []step{signed}},
	{"a renewed agreement", KindAgreement, StatusActive, []step{signed, renewed}},
	{"an expired agreement", KindAgreement, StatusExpired, []step{signedExpiring}},
	{"an agreement renewed after it expired", KindAgreement, StatusActive, []step{signedExpiring, renewed}},
	{"a terminated agreement", KindAgreement, StatusTerminated, []step{signed, terminated}},
	{"a renewed then terminated agreement", KindAgreement, StatusTerminated, []step{signed, renewed, terminated}},

	{"an in-progress policy", KindPolicy, StatusInProgress, nil},
	{"an in-progress policy with a contribution", KindPolicy, StatusInProgress, []step{contributed}},
	{"an adopted policy", KindPolicy, StatusAdopted, []step{contributed, adopted}},
	{"an implementing policy", KindPolicy, StatusImplementing, []step{adopted, committed}},

	{"a recorded initiative", KindInitiative, StatusRecorded, nil},
	{"an initiative we joined", KindInitiative, StatusMember, []step{joined}},
	{"an initiative whose role changed", KindInitiative, StatusMember, []step{joined, roleChanged}},
	{"an initiative we left", KindInitiative, StatusLeft, []step{joined, left}},
	{"an initiative we rejoined", KindInitiative, StatusMember, []step{joined, left, joined}},

	{"a recorded meeting", KindMeeting, StatusRecorded, nil},
	{"a scheduled meeting", KindMeeting, StatusScheduled, []step{scheduled}},
	{"an attended meeting", KindMeeting, StatusAttended, []step{scheduled, attended}},
	{"a concluded meeting", KindMeeting, StatusConcluded, []step{scheduled, attended, concluded}},
}

// allowedIn is the contract's "allowed when" column.
var allowedIn = map[EventType][]Status{
	AgreementSigned:     {StatusDraft},
	AgreementRenewed:    {StatusActive, StatusExpired},
	AgreementTerminated: {StatusActive},

	PolicyContributed: {StatusInProgress, StatusAdopted, StatusImplementing},
	PolicyAdopted:     {StatusInProgress},
	PolicyCommitted:   {StatusAdopted},

	InitiativeJoined:      {StatusRecorded, StatusLeft},
	InitiativeRoleChanged: {StatusMember},
	InitiativeLeft:        {StatusMember},

	MeetingScheduled: {StatusRecorded},
	MeetingAttended:  {StatusScheduled},
	MeetingConcluded: {StatusAttended},

	// The reminders: an agreement past its expiry day (derived expired)
	// but not yet marked so is what agreement.expired records.
	AgreementExpiring: {StatusActive},
	AgreementExpired:  {StatusActive, StatusExpired},
	MeetingUpcoming:   {StatusScheduled},
}

// closed are the statuses in which engagement.amended is refused.
var closed = []Status{StatusTerminated, StatusExpired, StatusLeft, StatusConcluded}

// statusAfter is the status an allowed event leads to; types not listed keep it.
var statusAfter = map[EventType]Status{
	AgreementSigned:       StatusActive,
	AgreementRenewed:      StatusActive,
	AgreementTerminated:   StatusTerminated,
	PolicyAdopted:         StatusAdopted,
	PolicyCommitted:       StatusImplementing,
	InitiativeJoined:      StatusMember,
	InitiativeRoleChanged: StatusMember,
	InitiativeLeft:        StatusLeft,
	MeetingScheduled:      StatusScheduled,
	MeetingAttended:       StatusAttended,
	MeetingConcluded:      StatusConcluded,
	AgreementExpired:      StatusExpired,
}

func allowed(typ EventType, s Status) bool {
	switch typ {
	case EngagementAmended:
		return !slices.Contains(closed, s)
	case EngagementLinked, EngagementNoted, EngagementCorrected, EngagementDocumentAttached, EngagementPersonalDataErased:
		return true
	case EngagementActionAssigned, EngagementFocalPointAssigned:
		return !closedStatus(s)
	case EngagementActionCompleted, EngagementActionCancelled, EngagementFocalPointReleased:
		return true // the matrix opens an item first; Allows refuses them with none open (TestActionItems)
	case EngagementActionOverdue:
		return false // no fixture of the matrix has an open action item (TestReminderRules)
	}
	return slices.Contains(allowedIn[typ], s)
}

// TestTransitionMatrix tries every event type of a kind in every state of
// that kind: each contract cell, allowed or forbidden.
func TestTransitionMatrix(t *testing.T) {
	for _, f := range fixtures {
		for _, typ := range EventTypes {
			if typ == EngagementRecorded || !typ.AppliesTo(f.kind) {
				continue
			}
			if s, _ := SpecOf(typ); s.System {
				continue // their data names the deadline: TestReminderRules
			}
			ok := allowed(typ, f.status)
			outcome := "invalid transition"
			if ok {
				outcome = "ok"
			}
			t.Run(fmt.Sprintf("%s on %s → %s", typ, f.name, outcome), func(t *testing.T) {
				steps := f.steps
				switch typ { // closing an item needs one opened first
				case EngagementActionCompleted, EngagementActionCancelled:
					steps = append([]step{assigned}, steps...)
				case EngagementFocalPointReleased:
					steps = append([]step{focalAssigned}, steps...)
				}
				e, history := build(t, f.kind, steps...)
				if got := e.StatusAt(occurred); got != f.status {
					t.Fatalf("fixture status = %s, want %s", got, f.status)
				}
				var data obj
				if typ == EngagementCorrected {
					data = obj{"corrects": history[0].ID, "reason": "typo", "title": "Corrected title"}
				} else {
					data = sampleData(typ)
				}
				ev := newEvent(t, e, typ, data)
				before := e.Clone()
				err := e.Apply(ev)
				if !ok {
					denied(t, err)
					var te *TransitionError
					errors.As(err, &te)
					if te.Type != typ || te.Status != f.status {
						t.Errorf("TransitionError{Type: %s, Status: %s}, want {%s, %s}", te.Type, te.Status, typ, f.status)
					}
					assertUnchanged(t, before, e)
					return
				}
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				want := f.status
				if s, ok := statusAfter[typ]; ok {
					want = s
				}
				if got := e.StatusAt(occurred); got != want {
					t.Errorf("status after %s = %s, want %s", typ, got, want)
				}
				if e.v.Version != len(history)+1 {
					t.Errorf("version = %d, want %d", e.v.Version, len(history)+1)
				}
			})
		}
	}
}

// TestEventTypeOfAnotherKind: an agreement cannot be adopted, a policy cannot
// be signed, and so on, whatever the data.
func TestEventTypeOfAnotherKind(t *testing.T) {
	for _, k := range Kinds {
		for _, typ := range EventTypes {
			if typ.AppliesTo(k) {
				continue
			}
			t.Run(fmt.Sprintf("%s on a %s → invalid transition", typ, k), func(t *testing.T) {
				e, _ := record(t, k)
				before := e.Clone()
				_, err := e.Decide(newEvent(t, e, typ, sampleData(typ)))
				denied(t, err)
				// Even data that would be malformed does not get that far.
				_, err = e.Decide(newEvent(t, e, typ, `{"nonsense": 1}`))
				denied(t, err)
				assertUnchanged(t, before, e)
			})
		}
	}
}

// TestLifecycles follows each kind through its contract path and checks the
// status after every event.
func TestLifecycles(t *testing.T) {
	at := func(s step, when time.Time) step { s.at = when; return s }
	tests := []struct {
		name     string
		kind     Kind
		steps    []step
		statuses []Status // after each step
	}{
		{
			name:     "MOU: draft → signed → renewed → terminated",
			kind:     KindAgreement,
			steps:    []step{signed, renewed, terminated},
			statuses: []Status{StatusActive, StatusActive, StatusTerminated},
		},
		{
			name:     "MOU renewed twice stays active",
			kind:     KindAgreement,
			steps:    []step{signed, renewed, {typ: AgreementRenewed, data: obj{"renewed_on": "2024-01-15", "expires_on": "2029-01-14"}}},
			statuses: []Status{StatusActive, StatusActive, StatusActive},
		},
		{
			name:     "MOU expires, is renewed and is active again",
			kind:     KindAgreement,
			steps:    []step{signedExpiring, renewed},
			statuses: []Status{StatusExpired, StatusActive},
		},
		{
			name: "MOU terminated before its expiry date",
			kind: KindAgreement,
			steps: []step{
				at(signedExpiring, time.Date(2019, 1, 1, 12, 0, 0, 0, time.UTC)),
				at(terminated, time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC)),
			},
			statuses: []Status{StatusExpired, StatusTerminated},
		},
		{
			name:     "policy: in progress → contributions → adopted → contribution → implementing",
			kind:     KindPolicy,
			steps:    []step{contributed, contributed, adopted, contributed, committed, contributed},
			statuses: []Status{StatusInProgress, StatusInProgress, StatusAdopted, StatusAdopted, StatusImplementing, StatusImplementing},
		},
		{
			name:     "initiative: joined → role changed → left → joined again",
			kind:     KindInitiative,
			steps:    []step{joined, roleChanged, left, joined, {typ: InitiativeRoleChanged, data: obj{"role": "chair"}}, left},
			statuses: []Status{StatusMember, StatusMember, StatusLeft, StatusMember, StatusMember, StatusLeft},
		},
		{
			name:     "meeting: recorded → scheduled → attended → concluded",
			kind:     KindMeeting,
			steps:    []step{scheduled, attended, concluded},
			statuses: []Status{StatusScheduled, StatusAttended, StatusConcluded},
		},
		{
			name: "notes, links and amendments never change the status",
			kind: KindMeeting,
			steps: []step{
				{typ: EngagementNoted}, scheduled, {typ: EngagementLinked}, {typ: EngagementAmended},
				attended, concluded, {typ: EngagementNoted},
			},
			statuses: []Status{StatusRecorded, StatusScheduled, StatusScheduled, StatusScheduled, StatusAttended, StatusConcluded, StatusConcluded},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := record(t, tt.kind)
			if want := tt.kind.initialStatus(); e.v.Status != want {
				t.Fatalf("status after recorded = %s, want %s", e.v.Status, want)
			}
			for i, s := range tt.steps {
				mustApply(t, e, s.event(t, e))
				if got := e.StatusAt(occurred); got != tt.statuses[i] {
					t.Fatalf("after step %d (%s): status = %s, want %s", i+1, s.typ, got, tt.statuses[i])
				}
				if e.v.Version != i+2 {
					t.Fatalf("after step %d: version = %d, want %d", i+1, e.v.Version, i+2)
				}
			}
		})
	}
}

// TestForbiddenTransitions are the stories users tell about what must fail.
func TestForbiddenTransitions(t *testing.T) {
	at := func(s step, when time.Time) step { s.at = when; return s }
	tests := []struct {
		name    string
		kind    Kind
		history []step
		next    step
	}{
		{"renew a terminated MOU", KindAgreement, []step{signed, terminated}, renewed},
		{"renew a draft MOU", KindAgreement, nil, renewed},
		{"sign an MOU twice", KindAgreement, []step{signed}, signed},
		{"sign a terminated MOU", KindAgreement, []step{signed, terminated}, signed},
		{"sign an expired MOU instead of renewing it", KindAgreement, []step{signedExpiring}, signed},
		{"terminate a draft MOU", KindAgreement, nil, terminated},
		{"terminate an MOU twice", KindAgreement, []step{signed, terminated}, terminated},
		{"terminate an expired MOU", KindAgreement, []step{signedExpiring}, terminated},
		{"terminate an MOU on the day after it expired", KindAgreement, []step{signedExpiring},
			at(terminated, time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC))},
		{"adopt a policy twice", KindPolicy, []step{adopted}, adopted},
		{"adopt an implementing policy", KindPolicy, []step{adopted, committed}, adopted},
		{"commit to a policy before it is adopted", KindPolicy, nil, committed},
		{"commit twice (policy already implementing)", KindPolicy, []step{adopted, committed}, committed},
		{"change role in an initiative not joined", KindInitiative, nil, roleChanged},
		{"change role after leaving an initiative", KindInitiative, []step{joined, left}, roleChanged},
		{"change role to the role already held", KindInitiative, []step{joined, roleChanged}, roleChanged},
		{"join an initiative twice", KindInitiative, []step{joined}, joined},
		{"leave an initiative not joined", KindInitiative, nil, left},
		{"leave an initiative twice", KindInitiative, []step{joined, left}, left},
		{"attend an unscheduled meeting", KindMeeting, nil, attended},
		{"conclude a meeting that was not attended", KindMeeting, []step{scheduled}, concluded},
		{"conclude an unscheduled meeting", KindMeeting, nil, concluded},
		{"schedule a meeting twice", KindMeeting, []step{scheduled}, scheduled},
		{"schedule a concluded meeting", KindMeeting, []step{scheduled, attended, concluded}, scheduled},
		{"attend a meeting twice", KindMeeting, []step{scheduled, attended}, attended},
		{"conclude a meeting twice", KindMeeting, []step{scheduled, attended, concluded}, concluded},
		{"amend a terminated MOU", KindAgreement, []step{signed, terminated}, step{typ: EngagementAmended}},
		{"amend an expired MOU", KindAgreement, []step{signedExpiring}, step{typ: EngagementAmended}},
		{"amend an initiative we left", KindInitiative, []step{joined, left}, step{typ: EngagementAmended}},
		{"amend a concluded meeting", KindMeeting, []step{scheduled, attended, concluded}, step{typ: EngagementAmended}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" → invalid transition", func(t *testing.T) {
			e, _ := build(t, tt.kind, tt.history...)
			before := e.Clone()
			err := e.Apply(tt.next.event(t, e))
			denied(t, err)
			assertUnchanged(t, before, e)
		})
	}
}

// TestTransitionsUseOccurredAt: the state machine judges an event by the
// state the engagement was in when the event happened.
func TestTransitionsUseOccurredAt(t *testing.T) {
	day := func(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 12, 0, 0, 0, time.UTC) }
	tests := []struct {
		name  string
		next  step
		check errCheck
	}{
		{"terminate an MOU on its expiry day → ok", step{typ: AgreementTerminated, at: day(2021, 12, 31)}, nil},
		{"terminate an MOU the day after its expiry → invalid transition", step{typ: AgreementTerminated, at: day(2022, 1, 1)}, denied},
		{"renew an MOU before it expired → ok", step{typ: AgreementRenewed, data: obj{"renewed_on": "2021-06-01"}, at: day(2021, 6, 1)}, nil},
		{"renew an MOU after it expired → ok", step{typ: AgreementRenewed, data: obj{"renewed_on": "2023-06-01", "expires_on": "2028-06-01"}, at: day(2023, 6, 1)}, nil},
		{"renew an MOU after it expired, keeping its past expiry → data.expires_on", step{typ: AgreementRenewed, data: obj{"renewed_on": "2023-06-01"}, at: day(2023, 6, 1)}, invalid("data.expires_on")},
		{"amend an MOU before its expiry → ok", step{typ: EngagementAmended, at: day(2020, 6, 1)}, nil},
		{"amend an MOU after its expiry → invalid transition", step{typ: EngagementAmended, at: day(2022, 6, 1)}, denied},
		{"note an expired MOU → ok", step{typ: EngagementNoted, at: day(2023, 6, 1)}, nil},
		{"link an expired MOU → ok", step{typ: EngagementLinked, at: day(2023, 6, 1)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := build(t, KindAgreement, signedExpiring)
			err := e.Apply(tt.next.event(t, e))
			if tt.check == nil {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				return
			}
			tt.check(t, err)
		})
	}
}

func TestStatusAt(t *testing.T) {
	geneva := time.FixedZone("CET", 3600)
	auckland := time.FixedZone("NZDT", 13*3600)
	tests := []struct {
		name    string
		status  Status
		expires string
		at      time.Time
		want    Status
	}{
		{"active without expiry stays active", StatusActive, "", time.Date(2199, 1, 1, 0, 0, 0, 0, time.UTC), StatusActive},
		{"active before expiry", StatusActive, "2021-12-31", time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC), StatusActive},
		{"active on the expiry day", StatusActive, "2021-12-31", time.Date(2021, 12, 31, 23, 59, 59, 0, time.UTC), StatusActive},
		{"expired the day after", StatusActive, "2021-12-31", time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), StatusExpired},
		{"day is judged in UTC (Geneva midnight is still the expiry day)", StatusActive, "2021-12-31", time.Date(2022, 1, 1, 0, 30, 0, 0, geneva), StatusActive},
		{"day is judged in UTC (Auckland morning is the day before in UTC)", StatusActive, "2021-12-31", time.Date(2022, 1, 1, 10, 0, 0, 0, auckland), StatusActive},
		{"terminated never becomes expired", StatusTerminated, "2021-12-31", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), StatusTerminated},
		{"draft never becomes expired", StatusDraft, "2021-12-31", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), StatusDraft},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Engagement{v: View{Kind: KindAgreement, Status: tt.status, ExpiresOn: tt.expires, Version: 2}}
			if got := e.StatusAt(tt.at); got != tt.want {
				t.Errorf("StatusAt(%s) = %s, want %s", tt.at, got, tt.want)
			}
		})
	}
}

func TestRenewalExpiry(t *testing.T) {
	tests := []struct {
		name        string
		steps       []step
		wantExpires string
		wantNow     Status
	}{
		{"renewal without expires_on makes the agreement open-ended", []step{signedExpiring, renewed}, "", StatusActive},
		{"renewal with a future expires_on keeps it active", []step{signedExpiring,
			{typ: AgreementRenewed, data: obj{"renewed_on": "2022-01-01", "expires_on": "2190-12-31"}}}, "2190-12-31", StatusActive},
		{"renewal whose new expiry has passed leaves it expired", []step{signedExpiring,
			{typ: AgreementRenewed, data: obj{"renewed_on": "2022-01-01", "expires_on": "2022-12-31"}}}, "2022-12-31", StatusExpired},
		{"signing without expires_on is open-ended", []step{signed}, "", StatusActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := build(t, KindAgreement, tt.steps...)
			if e.v.ExpiresOn != tt.wantExpires {
				t.Errorf("ExpiresOn = %q, want %q", e.v.ExpiresOn, tt.wantExpires)
			}
			if got := e.StatusAt(time.Now()); got != tt.wantNow {
				t.Errorf("StatusAt(now) = %s, want %s", got, tt.wantNow)
			}
			if e.v.Status != StatusActive {
				t.Errorf("stored Status = %s, want active (expired is only derived)", e.v.Status)
			}
		})
	}
}
