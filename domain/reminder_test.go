package domain

import (
	"testing"
)

// system is a step recorded by the service.
func reminderEvent(t *testing.T, e *Engagement, typ EventType, data any, actor string) Event {
	t.Helper()
	ev := newEvent(t, e, typ, data)
	ev.Actor = actor
	return ev
}

// TestReminderRules: each reminder names the engagement's current deadline,
// is recorded once per deadline and days left (fewer each time), only by
// the service, and is never corrected.
func TestReminderRules(t *testing.T) {
	signedTo := func(exp string) step {
		return step{typ: AgreementSigned, data: obj{"signed_on": "2020-01-15", "expires_on": exp}}
	}
	expiring := func(exp string, days int) step {
		return step{typ: AgreementExpiring, data: obj{"expires_on": exp, "days_left": days, "deadline": "expiry"}}
	}
	expired := func(exp string) step { return step{typ: AgreementExpired, data: obj{"expires_on": exp}} }
	upcoming := func(on string, days int) step {
		return step{typ: MeetingUpcoming, data: obj{"starts_on": on, "days_left": days}}
	}
	renewedTo := func(exp string) step {
		return step{typ: AgreementRenewed, data: obj{"renewed_on": "2024-01-15", "expires_on": exp}}
	}
	tests := []struct {
		name  string
		kind  Kind
		steps []step // all accepted
		try   step
		actor string // "" is SystemActor
		check errCheck
	}{
		{"first expiry reminder", KindAgreement, []step{signedTo("2025-06-30")}, expiring("2025-06-30", 90), "", nil},
		{"a nearer reminder after a farther one", KindAgreement,
			[]step{signedTo("2025-06-30"), expiring("2025-06-30", 90)}, expiring("2025-06-30", 30), "", nil},
		{"the same reminder again", KindAgreement,
			[]step{signedTo("2025-06-30"), expiring("2025-06-30", 30)}, expiring("2025-06-30", 30), "", denied},
		{"a farther reminder after a nearer one", KindAgreement,
			[]step{signedTo("2025-06-30"), expiring("2025-06-30", 30)}, expiring("2025-06-30", 90), "", denied},
		{"an expiry that is not the agreement's", KindAgreement, []step{signedTo("2025-06-30")},
			expiring("2025-07-31", 30), "", denied},
		{"the old expiry after a renewal", KindAgreement, []step{signedTo("2025-06-30"), renewedTo("2027-06-30")},
			expiring("2025-06-30", 30), "", denied},
		{"the new expiry after a renewal, reminded of the old one", KindAgreement,
			[]step{signedTo("2025-06-30"), expiring("2025-06-30", 7), renewedTo("2027-06-30")},
			expiring("2027-06-30", 90), "", nil},
		{"an open-ended agreement", KindAgreement, []step{signed}, expiring("2025-06-30", 30), "", denied},
		{"no notice deadline", KindAgreement, []step{signedTo("2025-06-30")},
			step{typ: AgreementExpiring, data: obj{"expires_on": "2025-06-30", "days_left": 30, "deadline": "notice"}}, "", denied},
		{"a terminated agreement", KindAgreement, []step{signedTo("2025-06-30"), terminated},
			expiring("2025-06-30", 30), "", denied},
		{"recorded by a client", KindAgreement, []step{signedTo("2025-06-30")}, expiring("2025-06-30", 30), "admin", invalid("type")},
		{"days_left below zero", KindAgreement, []step{signedTo("2025-06-30")}, expiring("2025-06-30", -1), "", invalid("data.days_left")},
		{"days_left not whole", KindAgreement, []step{signedTo("2025-06-30")},
			step{typ: AgreementExpiring, data: obj{"expires_on": "2025-06-30", "days_left": 1.5, "deadline": "expiry"}}, "", invalid("data.days_left")},
		{"days_left as a string", KindAgreement, []step{signedTo("2025-06-30")},
			step{typ: AgreementExpiring, data: obj{"expires_on": "2025-06-30", "days_left": "30", "deadline": "expiry"}}, "", malformed("data.days_left")},
		{"an unknown deadline", KindAgreement, []step{signedTo("2025-06-30")},
			step{typ: AgreementExpiring, data: obj{"expires_on": "2025-06-30", "days_left": 3, "deadline": "soon"}}, "", invalid("data.deadline")},

		{"expired", KindAgreement, []step{signedTo("2025-06-30"), expiring("2025-06-30", 7)}, expired("2025-06-30"), "", nil},
		{"expired after the expiry day (derived expired)", KindAgreement, []step{signedTo("2021-12-31")}, expired("2021-12-31"), "", nil},
		{"expired twice", KindAgreement, []step{signedTo("2025-06-30"), expired("2025-06-30")}, expired("2025-06-30"), "", denied},
		{"expired of the old expiry after a renewal", KindAgreement,
			[]step{signedTo("2025-06-30"), renewedTo("2027-06-30")}, expired("2025-06-30"), "", denied},
		{"expired again after a renewal revived it", KindAgreement,
			[]step{signedTo("2025-06-30"), expired("2025-06-30"), renewedTo("2027-06-30")}, expired("2027-06-30"), "", nil},
		{"expired by a client", KindAgreement, []step{signedTo("2025-06-30")}, expired("2025-06-30"), "anonymous", invalid("type")},

		{"meeting reminder", KindMeeting, []step{scheduled}, upcoming("2024-05-27", 7), "", nil},
		{"meeting reminder again", KindMeeting, []step{scheduled, upcoming("2024-05-27", 7)}, upcoming("2024-05-27", 7), "", denied},
		{"meeting reminder of another day", KindMeeting, []step{scheduled}, upcoming("2024-05-28", 7), "", denied},
		{"meeting reminder after attendance", KindMeeting, []step{scheduled, attended}, upcoming("2024-05-27", 7), "", denied},

		{"overdue action that does not exist", KindAgreement, []step{signed},
			step{typ: EngagementActionOverdue, data: obj{"action_id": "a1", "due_on": "2020-03-01"}}, "", denied},
		{"overdue action", KindAgreement, []step{signed, assigned},
			step{typ: EngagementActionOverdue, data: obj{"action_id": "a1", "due_on": "2020-03-01"}}, "", nil},
		{"overdue action of another day", KindAgreement, []step{signed, assigned},
			step{typ: EngagementActionOverdue, data: obj{"action_id": "a1", "due_on": "2020-03-02"}}, "", denied},
		{"overdue action twice", KindAgreement, []step{signed, assigned,
			{typ: EngagementActionOverdue, data: obj{"action_id": "a1", "due_on": "2020-03-01"}}},
			step{typ: EngagementActionOverdue, data: obj{"action_id": "a1", "due_on": "2020-03-01"}}, "", denied},
		{"overdue action once completed", KindAgreement, []step{signed, assigned, {typ: EngagementActionCompleted}},
			step{typ: EngagementActionOverdue, data: obj{"action_id": "a1", "due_on": "2020-03-01"}}, "", denied},
		{"overdue by a client", KindAgreement, []step{signed, assigned},
			step{typ: EngagementActionOverdue, data: obj{"action_id": "a1", "due_on": "2020-03-01"}}, "coordinator", invalid("type")},
		{"notice reminder", KindAgreement, []step{{typ: AgreementSigned, data: obj{"signed_on": "2020-01-15", "expires_on": "2025-06-30", "notice_days": 90}}},
			step{typ: AgreementExpiring, data: obj{"expires_on": "2025-06-30", "days_left": 90, "deadline": "notice"}}, "", nil},
		{"notice reminder twice", KindAgreement, []step{{typ: AgreementSigned, data: obj{"signed_on": "2020-01-15", "expires_on": "2025-06-30", "notice_days": 90}},
			{typ: AgreementExpiring, data: obj{"expires_on": "2025-06-30", "days_left": 90, "deadline": "notice"}}},
			step{typ: AgreementExpiring, data: obj{"expires_on": "2025-06-30", "days_left": 89, "deadline": "notice"}}, "", denied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := record(t, tt.kind)
			for _, s := range tt.steps {
				ev := s.event(t, e)
				mustApply(t, e, ev)
			}
			actor := tt.actor
			if actor == "" {
				actor = SystemActor
			}
			before := e.Clone()
			err := e.Apply(reminderEvent(t, e, tt.try.typ, tt.try.data, actor))
			if tt.check == nil {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				return
			}
			tt.check(t, err)
			assertUnchanged(t, before, e)
		})
	}
}

// TestRemindersFoldAndRestore: what the reminders recorded survives a replay
// and a snapshot, and expired moves the agreement to expired.
func TestRemindersFoldAndRestore(t *testing.T) {
	e, history := build(t, KindAgreement,
		step{typ: AgreementSigned, data: obj{"signed_on": "2020-01-15", "expires_on": "2025-06-30"}},
		step{typ: AgreementExpiring, data: obj{"expires_on": "2025-06-30", "days_left": 30, "deadline": "expiry"}})
	if d, ok := e.v.Reminded(DeadlineExpiry, "", "2025-06-30"); !ok || d != 30 {
		t.Fatalf("Reminded = %d, %v; want 30, true", d, ok)
	}
	for name, got := range map[string]*Engagement{"replayed": fold(t, history), "restored": Restore(e.Clone().Snapshot())} {
		if d, ok := got.v.Reminded(DeadlineExpiry, "", "2025-06-30"); !ok || d != 30 {
			t.Errorf("%s: Reminded = %d, %v; want 30, true", name, d, ok)
		}
	}
	mustApply(t, e, newEvent(t, e, AgreementExpired, obj{"expires_on": "2025-06-30"}))
	if e.Status() != StatusExpired || len(e.Deadlines()) != 0 {
		t.Errorf("after expired: status %s, deadlines %v; want expired, none", e.Status(), e.Deadlines())
	}
	c, err := e.Decide(newEvent(t, e, EngagementCorrected, obj{"corrects": history[len(history)-1].ID, "reason": "wrong",
		"fields": obj{"days_left": 31}}))
	invalid("data.corrects")(t, err)
	_ = c
}
