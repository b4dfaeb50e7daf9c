package domain

import (
	"encoding/json"
	"testing"
	"time"
)

// TestRenewalKeepsTheExpiry: a renewal without expires_on keeps the expiry
// (and notice period); term open-ended clears both; a v1 renewal without
// expires_on, as stored by earlier releases, still means open-ended.
func TestRenewalKeepsTheExpiry(t *testing.T) {
	signing := step{typ: AgreementSigned, data: obj{"signed_on": "2019-01-15", "expires_on": "2190-01-15", "notice_days": 90}}
	e, _ := build(t, KindAgreement, signing, step{typ: AgreementRenewed, data: obj{"renewed_on": "2024-01-15"}})
	if e.v.ExpiresOn != "2190-01-15" || e.v.NoticeDays != 90 || e.v.RenewedOn != "2024-01-15" {
		t.Errorf("renewed without expires_on: expires %q, notice %d, renewed %q", e.v.ExpiresOn, e.v.NoticeDays, e.v.RenewedOn)
	}
	e, _ = build(t, KindAgreement, signing, step{typ: AgreementRenewed, data: obj{"renewed_on": "2024-01-15", "term": TermOpenEnded}})
	if e.v.ExpiresOn != "" || e.v.NoticeDays != 0 {
		t.Errorf("open-ended renewal: expires %q, notice %d", e.v.ExpiresOn, e.v.NoticeDays)
	}
	e, _ = build(t, KindAgreement, signing, step{typ: AgreementRenewed, data: obj{"renewed_on": "2024-01-15", "expires_on": "2195-01-15", "notice_days": 30}})
	if e.v.ExpiresOn != "2195-01-15" || e.v.NoticeDays != 30 {
		t.Errorf("renewal with a new term: expires %q, notice %d", e.v.ExpiresOn, e.v.NoticeDays)
	}

	up, err := Upcast(AgreementRenewed, 1, json.RawMessage(`{"renewed_on":"2024-01-15"}`))
	if err != nil || string(up) != `{"renewed_on":"2024-01-15","term":"open-ended"}` {
		t.Errorf("Upcast v1 renewal = %s, %v", up, err)
	}
	up, err = Upcast(AgreementRenewed, 1, json.RawMessage(`{"renewed_on":"2024-01-15","expires_on":"2029-01-15"}`))
	if err != nil || string(up) != `{"expires_on":"2029-01-15","renewed_on":"2024-01-15"}` {
		t.Errorf("Upcast v1 renewal with an expiry = %s, %v", up, err)
	}

	e, _ = build(t, KindAgreement, signing)
	bad := []struct {
		name string
		typ  EventType
		data obj
		want []string
	}{
		{"open-ended with an expiry", AgreementRenewed, obj{"renewed_on": "2024-01-15", "term": TermOpenEnded, "expires_on": "2030-01-01"}, []string{"data.term"}},
		{"an unknown term", AgreementRenewed, obj{"renewed_on": "2024-01-15", "term": "forever"}, []string{"data.term"}},
		{"notice of zero days", AgreementRenewed, obj{"renewed_on": "2024-01-15", "notice_days": 0}, []string{"data.notice_days"}},
		{"notice of half a day", AgreementRenewed, obj{"renewed_on": "2024-01-15", "notice_days": 1.5}, []string{"data.notice_days"}},
		{"notice beyond ten years", AgreementRenewed, obj{"renewed_on": "2024-01-15", "notice_days": 3651}, []string{"data.notice_days"}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := e.Decide(newEvent(t, e, b.typ, b.data))
			invalid(b.want...)(t, err)
		})
	}
	d, _ := build(t, KindAgreement)
	_, err = d.Decide(newEvent(t, d, AgreementSigned, obj{"signed_on": "2019-01-15", "notice_days": 30}))
	invalid("data.notice_days")(t, err)
}

// TestActionItems: assign, complete, cancel; what is refused (422, never an
// invalid transition); open actions are deadlines, closed ones are not.
func TestActionItems(t *testing.T) {
	e, _ := build(t, KindAgreement,
		step{typ: EngagementActionAssigned, data: obj{"action_id": "plan", "title": "Send the work plan", "owner": "IOM MHD", "due_on": "2020-03-01"}},
		step{typ: EngagementActionAssigned, data: obj{"action_id": "report", "title": "Annual report", "owner": "WHO", "due_on": "2020-02-01"}},
		step{typ: EngagementActionAssigned, data: obj{"action_id": "visit", "title": "Field visit", "owner": "IOM", "due_on": "2020-04-01"}},
		step{typ: EngagementActionCompleted, data: obj{"action_id": "report", "outcome": "sent"}},
		step{typ: EngagementActionCancelled, data: obj{"action_id": "visit", "reason": "travel ban"}},
	)
	got := map[string]Action{}
	for _, a := range e.v.Actions {
		got[a.ID] = a
	}
	if len(got) != 3 || got["plan"].Status != ActionOpen || got["report"].Status != ActionDone || got["report"].Outcome != "sent" ||
		got["visit"].Status != ActionCancelled || got["visit"].Reason != "travel ban" {
		t.Fatalf("actions %+v", e.v.Actions)
	}
	if !got["plan"].Overdue(time.Date(2020, 3, 2, 0, 0, 0, 0, time.UTC)) || got["plan"].Overdue(time.Date(2020, 3, 1, 23, 0, 0, 0, time.UTC)) {
		t.Error("overdue is not 'open and due before today'")
	}
	if dl := e.Deadlines(); len(dl) != 1 || dl[0] != (Deadline{Kind: DeadlineAction, On: "2020-03-01", Ref: "plan", Title: "Send the work plan", Owner: "IOM MHD"}) {
		t.Errorf("deadlines %v, want only the open action", dl)
	}
	bad := []struct {
		name string
		typ  EventType
		data obj
		want []string
	}{
		{"complete an unknown action", EngagementActionCompleted, obj{"action_id": "nope"}, []string{"data.action_id"}},
		{"complete a cancelled action", EngagementActionCompleted, obj{"action_id": "visit"}, []string{"data.action_id"}},
		{"cancel a done action", EngagementActionCancelled, obj{"action_id": "report", "reason": "x"}, []string{"data.action_id"}},
		{"cancel without a reason", EngagementActionCancelled, obj{"action_id": "plan"}, []string{"data.reason"}},
		{"an action id with a subject wildcard", EngagementActionAssigned, obj{"action_id": "a.>", "title": "t", "owner": "o", "due_on": "2020-01-01"}, []string{"data.action_id"}},
		{"due before 1900", EngagementActionAssigned, obj{"action_id": "old", "title": "t", "owner": "o", "due_on": "1899-12-31"}, []string{"data.due_on"}},
		{"due after 2199", EngagementActionAssigned, obj{"action_id": "late", "title": "t", "owner": "o", "due_on": "2200-01-01"}, []string{"data.due_on"}},
		{"no owner, title or due date", EngagementActionAssigned, obj{"action_id": "x"}, []string{"data.title", "data.owner", "data.due_on"}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			before := e.Clone()
			_, err := e.Decide(newEvent(t, e, b.typ, b.data))
			invalid(b.want...)(t, err)
			assertUnchanged(t, before, e)
		})
	}
	t.Run("assign an id twice", func(t *testing.T) {
		_, err := e.Decide(newEvent(t, e, EngagementActionAssigned, obj{"action_id": "plan", "title": "t", "owner": "o", "due_on": "2020-01-01"}))
		denied(t, err)
	})
	t.Run("a terminated agreement's open actions are no deadline", func(t *testing.T) {
		x, _ := build(t, KindAgreement, signed, step{typ: EngagementActionAssigned}, terminated)
		if dl := x.Deadlines(); len(dl) != 0 {
			t.Errorf("deadlines %v", dl)
		}
	})
}

// TestFocalPoints: assigned per party, released, answered as of a date.
func TestFocalPoints(t *testing.T) {
	at := func(s step, m time.Month) step { s.at = time.Date(2024, m, 10, 0, 0, 0, 0, time.UTC); return s }
	_, history := build(t, KindAgreement,
		at(step{typ: EngagementFocalPointAssigned, data: obj{"party": "WHO", "name": "Dr A", "email": "a@who.int", "role": "Director"}}, 4),
		at(step{typ: EngagementFocalPointAssigned, data: obj{"party": "iom", "name": "B"}}, 5),
		at(step{typ: EngagementFocalPointReleased, data: obj{"party": "WHO", "name": "dr a"}}, 8),
		at(step{typ: EngagementFocalPointAssigned, data: obj{"party": "WHO", "name": "Dr C"}}, 8),
	)
	names := func(e *Engagement) (out []string) {
		for _, p := range e.v.FocalPoints {
			out = append(out, p.Party+":"+p.Name)
		}
		return out
	}
	for day, want := range map[string][]string{
		"2024-03-15": nil, "2024-06-01": {"WHO:Dr A", "IOM:B"}, "2024-09-01": {"IOM:B", "WHO:Dr C"},
	} {
		asOf, _ := time.Parse(DateLayout, day)
		e, _ := Replay(history, Window{AsOf: asOf})
		if got := names(e); len(got) != len(want) || len(got) > 0 && (got[0] != want[0] || got[len(got)-1] != want[len(want)-1]) {
			t.Errorf("focal points as of %s = %v, want %v", day, got, want)
		}
	}
	e := fold(t, history)
	bad := []struct {
		name string
		data obj
		typ  EventType
		want []string
	}{
		{"a party not in the engagement", obj{"party": "UNICEF", "name": "D"}, EngagementFocalPointAssigned, []string{"data.party"}},
		{"the same person twice", obj{"party": "IOM", "name": "b"}, EngagementFocalPointAssigned, []string{"data.name"}},
		{"a bad e-mail", obj{"party": "IOM", "name": "E", "email": "not an address"}, EngagementFocalPointAssigned, []string{"data.email"}},
		{"a display name for e-mail", obj{"party": "IOM", "name": "E", "email": "E <e@iom.int>"}, EngagementFocalPointAssigned, []string{"data.email"}},
		{"release one never assigned", obj{"party": "WHO", "name": "Dr Z"}, EngagementFocalPointReleased, []string{"data.name"}},
		{"release one already released", obj{"party": "WHO", "name": "Dr A"}, EngagementFocalPointReleased, []string{"data.name"}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := e.Decide(newEvent(t, e, b.typ, b.data))
			invalid(b.want...)(t, err)
		})
	}
}

// TestNoticeDeadline: the notice deadline is the expiry less notice_days.
func TestNoticeDeadline(t *testing.T) {
	e, _ := build(t, KindAgreement, step{typ: AgreementSigned, data: obj{"signed_on": "2019-01-15", "expires_on": "2190-03-01", "notice_days": 30}})
	dl := e.Deadlines()
	if len(dl) != 2 || dl[0] != (Deadline{Kind: DeadlineNotice, On: "2190-01-30"}) || dl[1] != (Deadline{Kind: DeadlineExpiry, On: "2190-03-01"}) {
		t.Errorf("deadlines %v", dl)
	}
}
