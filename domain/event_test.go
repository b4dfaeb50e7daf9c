package domain

import (
	"fmt"
	"slices"
	"testing"
)

func TestEventTypes(t *testing.T) {
	verbs := map[string]EventType{}
	for _, typ := range EventTypes {
		t.Run(string(typ), func(t *testing.T) {
			got, err := ParseEventType(string(typ))
			if err != nil || got != typ {
				t.Fatalf("ParseEventType(%q) = %q, %v", typ, got, err)
			}
			if p := typ.Prefix(); p != "engagement" && !Kind(p).Valid() {
				t.Errorf("prefix %q is neither engagement nor a kind", p)
			}
			if prev, dup := verbs[typ.Verb()]; dup {
				t.Errorf("verb %q of %s is also the verb of %s", typ.Verb(), typ, prev)
			}
			verbs[typ.Verb()] = typ
			if s, ok := SpecOf(typ); !ok || s.Type != typ || len(s.Fields) == 0 {
				t.Errorf("%s has no spec with data fields", typ)
			}
		})
	}
	// The contract's 17, the coordinator's desk's five (action items, focal
	// points), #16's engagement.document_attached, the four reminders and
	// #17's engagement.personal_data_erased.
	if len(EventTypes) != 28 {
		t.Errorf("%d event types, want 28", len(EventTypes))
	}
}

func TestAppliesTo(t *testing.T) {
	tests := []struct {
		typ  EventType
		kind Kind
		want bool
	}{
		{EngagementNoted, KindAgreement, true},
		{EngagementCorrected, KindMeeting, true},
		{AgreementSigned, KindAgreement, true},
		{AgreementSigned, KindPolicy, false},
		{PolicyAdopted, KindAgreement, false},
		{InitiativeJoined, KindInitiative, true},
		{InitiativeJoined, KindMeeting, false},
		{MeetingAttended, KindMeeting, true},
		{MeetingAttended, KindInitiative, false},
		{AgreementSigned, Kind("treaty"), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s applies to %s: %v", tt.typ, tt.kind, tt.want), func(t *testing.T) {
			if got := tt.typ.AppliesTo(tt.kind); got != tt.want {
				t.Errorf("AppliesTo = %v", got)
			}
		})
	}
}

func TestKinds(t *testing.T) {
	want := map[Kind][]Status{
		KindAgreement:  {StatusDraft, StatusActive, StatusTerminated, StatusExpired},
		KindPolicy:     {StatusInProgress, StatusAdopted, StatusImplementing},
		KindInitiative: {StatusRecorded, StatusMember, StatusLeft},
		KindMeeting:    {StatusRecorded, StatusScheduled, StatusAttended, StatusConcluded},
	}
	if len(Kinds) != len(want) {
		t.Fatalf("Kinds = %v", Kinds)
	}
	for _, k := range Kinds {
		t.Run(string(k), func(t *testing.T) {
			if !k.Valid() {
				t.Error("not valid")
			}
			if !slices.Equal(k.Statuses(), want[k]) {
				t.Errorf("Statuses() = %v, want %v", k.Statuses(), want[k])
			}
			if !slices.Contains(k.Statuses(), k.initialStatus()) {
				t.Errorf("initial status %s is not one of %v", k.initialStatus(), k.Statuses())
			}
			for _, s := range k.Statuses() {
				if !ValidStatus(s) {
					t.Errorf("ValidStatus(%s) = false", s)
				}
			}
		})
	}
	for _, k := range []Kind{"", "Agreement", "mou", "treaty", "agreement "} {
		if k.Valid() || k.Statuses() != nil {
			t.Errorf("kind %q is valid or has statuses", k)
		}
	}
	for _, s := range []Status{"", "pending", "Active", "closed"} {
		if ValidStatus(s) {
			t.Errorf("ValidStatus(%q) = true", s)
		}
	}
}
