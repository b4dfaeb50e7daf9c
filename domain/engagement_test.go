package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// assertUnchanged fails if a refused event left a trace in the state.
func assertUnchanged(t *testing.T, before, after *Engagement) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed by a refused event:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestEnvelope(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		mod   func(ev *Event)
		check errCheck
	}{
		{"event id not a UUID", func(ev *Event) { ev.ID = "not-a-uuid" }, invalid("id")},
		{"event id in upper case", func(ev *Event) { ev.ID = strings.ToUpper(ev.ID) }, invalid("id")},
		{"event id empty", func(ev *Event) { ev.ID = "" }, invalid("id")},
		{"version 0", func(ev *Event) { ev.Version = 0 }, invalid("version")},
		{"version repeats the current one", func(ev *Event) { ev.Version-- }, invalid("version")},
		{"version skips one", func(ev *Event) { ev.Version++ }, invalid("version")},
		{"occurred_at missing", func(ev *Event) { ev.OccurredAt = time.Time{} }, invalid("occurred_at")},
		{"occurred_at an hour in the future", func(ev *Event) { ev.OccurredAt = ev.RecordedAt.Add(time.Hour) }, invalid("occurred_at")},
		{"occurred_at just beyond the clock skew", func(ev *Event) { ev.OccurredAt = ev.RecordedAt.Add(MaxClockSkew + time.Second) }, invalid("occurred_at")},
		{"occurred_at within the clock skew is fine", func(ev *Event) { ev.OccurredAt = ev.RecordedAt.Add(time.Minute) }, nil},
		{"occurred_at equal to recorded_at is fine", func(ev *Event) { ev.OccurredAt = ev.RecordedAt }, nil},
		{"occurred_at decades back is fine", func(ev *Event) { ev.OccurredAt = time.Date(1965, 5, 4, 0, 0, 0, 0, time.UTC) }, nil},
		{"occurred_at in 1900 is fine", func(ev *Event) { ev.OccurredAt = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC) }, nil},
		{"occurred_at in 1899", func(ev *Event) { ev.OccurredAt = time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC) }, invalid("occurred_at")},
		{"occurred_at in 2200", func(ev *Event) { ev.OccurredAt = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC) }, invalid("occurred_at")},
		{"recorded_at missing", func(ev *Event) { ev.RecordedAt = time.Time{} }, invalid("recorded_at")},
		{"actor missing", func(ev *Event) { ev.Actor = "" }, invalid("actor")},
		{"actor with a newline", func(ev *Event) { ev.Actor = "te\nst" }, invalid("actor")},
		{"actor of 101 characters", func(ev *Event) { ev.Actor = strings.Repeat("a", MaxEntry+1) }, invalid("actor")},
		{"correlation and causation ids are optional", func(ev *Event) { ev.CorrelationID, ev.CausationID = newID(), newID() }, nil},
		{"every envelope problem is listed", func(ev *Event) {
			ev.ID, ev.Version, ev.OccurredAt, ev.RecordedAt, ev.Actor = "x", 9, time.Time{}, time.Time{}, ""
		}, invalid("id", "version", "occurred_at", "recorded_at", "actor")},
		{"envelope problems come before data problems", func(ev *Event) { ev.ID = "x"; ev.Data = []byte(`{"note": 1}`) }, invalid("id")},
	}
	for _, tt := range tests {
		for _, first := range []bool{true, false} {
			typ := EngagementNoted
			if first {
				typ = EngagementRecorded
			}
			outcome := "ok"
			if tt.check != nil {
				outcome = "rejected"
			}
			t.Run(fmt.Sprintf("%s: %s → %s", typ, tt.name, outcome), func(t *testing.T) {
				e := &Engagement{}
				if !first {
					e, _ = build(t, KindAgreement, signed)
				}
				ev := newEvent(t, e, typ, sampleData(typ))
				ev.RecordedAt = now
				tt.mod(&ev)
				before := e.Clone()
				err := e.Apply(ev)
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
	t.Run("engagement.recorded: engagement id not a UUID → rejected", func(t *testing.T) {
		ev := newEvent(t, &Engagement{}, EngagementRecorded, recordedData(KindAgreement))
		ev.EngagementID = "IOM-WHO-1"
		_, err := (&Engagement{}).Decide(ev)
		invalid("engagement_id")(t, err)
	})
	t.Run("engagement.recorded: engagement id in upper case → rejected", func(t *testing.T) {
		ev := newEvent(t, &Engagement{}, EngagementRecorded, recordedData(KindAgreement))
		ev.EngagementID = strings.ToUpper(ev.EngagementID)
		_, err := (&Engagement{}).Decide(ev)
		invalid("engagement_id")(t, err)
	})
}

func TestUnknownEventTypes(t *testing.T) {
	types := []string{
		"", "agreement.cancelled", "engagement.deleted", "noted", "signed",
		"Engagement.Noted", "AGREEMENT.SIGNED", " engagement.noted", "engagement.noted ",
		"engagement.*", "engagements.>", "agreement.signed.extra", "agreement..signed",
		"treaty.signed", strings.Repeat("x", 10_000),
	}
	for _, s := range types {
		for _, recorded := range []bool{false, true} {
			where := "a new engagement"
			if recorded {
				where = "a recorded agreement"
			}
			t.Run(fmt.Sprintf("%.40q on %s → unknown event type", s, where), func(t *testing.T) {
				e := &Engagement{}
				if recorded {
					e, _ = record(t, KindAgreement)
				}
				_, err := e.Decide(newEvent(t, e, EventType(s), sampleData(EngagementNoted)))
				is(ErrUnknownEventType)(t, err)
				if errors.Is(err, ErrInvalidTransition) || errors.Is(err, ErrNotFound) {
					t.Errorf("err = %v is more than an unknown event type", err)
				}
				if len(err.Error()) > 200 {
					t.Errorf("error message of %d bytes echoes the whole input", len(err.Error()))
				}
			})
		}
	}
}

func TestEventForUnrecordedEngagement(t *testing.T) {
	for _, typ := range EventTypes {
		if typ == EngagementRecorded {
			continue
		}
		t.Run(fmt.Sprintf("%s for an engagement never recorded → not found", typ), func(t *testing.T) {
			e := &Engagement{}
			ev := newEvent(t, e, typ, sampleData(kindlessSample(typ)))
			ev.EngagementID, ev.Kind = newID(), kindOf(typ)
			err := e.Apply(ev)
			is(ErrNotFound)(t, err)
			if e.Exists() || e.v.Version != 0 {
				t.Errorf("a refused event created the engagement: %+v", e)
			}
		})
	}
}

// kindlessSample maps engagement.corrected (which has no sample) to noted.
func kindlessSample(typ EventType) EventType {
	if typ == EngagementCorrected {
		return EngagementNoted
	}
	return typ
}

func TestEventIdentity(t *testing.T) {
	tests := []struct {
		name string
		mod  func(t *testing.T, e *Engagement, ev *Event)
	}{
		{"record an engagement twice → invalid transition", func(t *testing.T, e *Engagement, ev *Event) {
			*ev = newEvent(t, e, EngagementRecorded, recordedData(KindAgreement))
		}},
		{"record an engagement twice as another kind → invalid transition", func(t *testing.T, e *Engagement, ev *Event) {
			*ev = newEvent(t, e, EngagementRecorded, recordedData(KindMeeting))
			ev.Kind = KindMeeting
		}},
		{"event naming another engagement → invalid transition", func(t *testing.T, e *Engagement, ev *Event) {
			ev.EngagementID = otherID
		}},
		{"event naming another kind → invalid transition", func(t *testing.T, e *Engagement, ev *Event) {
			ev.Kind = KindPolicy
		}},
		{"event with no kind → invalid transition", func(t *testing.T, e *Engagement, ev *Event) {
			ev.Kind = ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := record(t, KindAgreement)
			ev := newEvent(t, e, EngagementNoted, sampleData(EngagementNoted))
			tt.mod(t, e, &ev)
			before := e.Clone()
			err := e.Apply(ev)
			denied(t, err)
			assertUnchanged(t, before, e)
		})
	}
}

func TestRecorded(t *testing.T) {
	for _, k := range Kinds {
		t.Run(fmt.Sprintf("record a %s → %s, version 1", k, k.initialStatus()), func(t *testing.T) {
			e := &Engagement{}
			if e.Exists() {
				t.Fatal("zero engagement exists")
			}
			data := with(recordedData(k), "description", "About it", "tags", []string{"health", "migration"})
			ev := newEvent(t, e, EngagementRecorded, data)
			ev.Sequence = 41
			mustApply(t, e, ev)
			want := &Engagement{v: View{
				ID: ev.EngagementID, Kind: k, Title: "IOM–WHO " + string(k), Parties: []string{"IOM", "WHO"},
				Description: "About it", Tags: []string{"health", "migration"}, Links: []Link{},
				Status: k.initialStatus(), Version: 1, Sequence: 41,
				StartedAt: ev.OccurredAt, CreatedAt: ev.RecordedAt, UpdatedAt: ev.RecordedAt,
			}}
			switch k {
			case KindPolicy:
				want.v.Instrument = "resolution"
			case KindMeeting:
				want.v.Level, want.v.Location = "ministerial", "Geneva"
			}
			got := *e
			got.events, got.sources = nil, nil
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("state =\n%+v\nwant\n%+v", &got, want)
			}
			if !e.Exists() || !e.HasEvent(ev.ID) {
				t.Error("engagement does not know its recorded event")
			}
		})
	}
	t.Run("record with no tags → empty, not nil, lists", func(t *testing.T) {
		e, _ := record(t, KindInitiative)
		if e.v.Tags == nil || e.v.Links == nil || len(e.v.Tags) != 0 || len(e.v.Links) != 0 {
			t.Errorf("Tags %#v, Links %#v, want empty non-nil", e.v.Tags, e.v.Links)
		}
	})
}

func TestLinked(t *testing.T) {
	target2 := "01900000-0000-7000-8000-000000000002"
	link := func(target, relation string) step {
		return step{typ: EngagementLinked, data: obj{"target_id": target, "relation": relation}}
	}
	tests := []struct {
		name      string
		history   []step
		next      step
		self      bool // the next link points at the engagement itself
		check     errCheck
		wantLinks [][2]string
	}{
		{"link to another engagement → ok", nil, link(otherID, "references"), false, nil, [][2]string{{otherID, "references"}}},
		{"link to itself → data.target_id", nil, link("", "references"), true, invalid("data.target_id"), nil},
		{"link the same engagement with the same relation twice → invalid transition",
			[]step{link(otherID, "part_of")}, link(otherID, "part_of"), false, denied, nil},
		{"link the same engagement with another relation → ok",
			[]step{link(otherID, "part_of")}, link(otherID, "supersedes"), false, nil,
			[][2]string{{otherID, "part_of"}, {otherID, "supersedes"}}},
		{"link two engagements → both, in order",
			[]step{link(otherID, "implements")}, link(target2, "implements"), false, nil,
			[][2]string{{otherID, "implements"}, {target2, "implements"}}},
		{"link a terminated agreement → ok",
			[]step{signed, terminated}, link(otherID, "references"), false, nil, [][2]string{{otherID, "references"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := build(t, KindAgreement, tt.history...)
			if tt.self {
				tt.next.data = with(tt.next.data, "target_id", e.v.ID)
			}
			before := e.Clone()
			ev := tt.next.event(t, e)
			err := e.Apply(ev)
			if tt.check != nil {
				tt.check(t, err)
				assertUnchanged(t, before, e)
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			var got [][2]string
			for _, l := range e.v.Links {
				got = append(got, [2]string{l.TargetID, l.Relation})
			}
			if !reflect.DeepEqual(got, tt.wantLinks) {
				t.Errorf("links = %v, want %v", got, tt.wantLinks)
			}
			if last := e.v.Links[len(e.v.Links)-1]; last.EventID != ev.ID {
				t.Errorf("link event id = %s, want %s", last.EventID, ev.ID)
			}
		})
	}
}

func TestNoted(t *testing.T) {
	for _, f := range fixtures {
		t.Run("note on "+f.name+" → only version and updated_at change", func(t *testing.T) {
			e, _ := build(t, f.kind, f.steps...)
			before := e.Clone()
			ev := newEvent(t, e, EngagementNoted, obj{"note": "met in Geneva"})
			ev.RecordedAt = before.v.UpdatedAt.Add(time.Second)
			mustApply(t, e, ev)
			if e.v.Version != before.v.Version+1 || !e.v.UpdatedAt.Equal(ev.RecordedAt) || !e.HasEvent(ev.ID) {
				t.Errorf("version %d, updated %s after note", e.v.Version, e.v.UpdatedAt)
			}
			after := e.Clone()
			after.v.Version, after.v.UpdatedAt, after.events = before.v.Version, before.v.UpdatedAt, before.events
			assertUnchanged(t, before, after)
		})
	}
}

func TestAmended(t *testing.T) {
	tests := []struct {
		name   string
		kind   Kind
		data   any
		check  errCheck
		verify func(t *testing.T, e *Engagement)
	}{
		{"amend the title → Title changes, the rest stays", KindAgreement, obj{"title": " New title "}, nil, func(t *testing.T, e *Engagement) {
			if e.v.Title != "New title" || !slices.Equal(e.v.Parties, []string{"IOM", "WHO"}) {
				t.Errorf("Title %q, Parties %v", e.v.Title, e.v.Parties)
			}
		}},
		{"amend the parties → replaced", KindAgreement, obj{"parties": []string{"IOM", "WHO", "UNHCR"}}, nil, func(t *testing.T, e *Engagement) {
			if !slices.Equal(e.v.Parties, []string{"IOM", "WHO", "UNHCR"}) {
				t.Errorf("Parties %v", e.v.Parties)
			}
		}},
		{"amend the tags and description", KindInitiative, obj{"tags": []string{"cluster"}, "description": "Global health cluster"}, nil, func(t *testing.T, e *Engagement) {
			if !slices.Equal(e.v.Tags, []string{"cluster"}) || e.v.Description != "Global health cluster" {
				t.Errorf("Tags %v, Description %q", e.v.Tags, e.v.Description)
			}
		}},
		{"amend the instrument of a policy", KindPolicy, obj{"instrument": "framework"}, nil, func(t *testing.T, e *Engagement) {
			if e.v.Instrument != "framework" {
				t.Errorf("Instrument %q", e.v.Instrument)
			}
		}},
		{"amend the level and location of a meeting", KindMeeting, obj{"level": "heads of state", "location": "New York"}, nil, func(t *testing.T, e *Engagement) {
			if e.v.Level != "heads of state" || e.v.Location != "New York" {
				t.Errorf("Level %q, Location %q", e.v.Level, e.v.Location)
			}
		}},
		{"amend nothing → data", KindAgreement, obj{}, invalid("data"), nil},
		{"amend with only nulls → data", KindAgreement, `{"title": null}`, invalid("data"), nil},
		{"amend the kind → malformed", KindAgreement, obj{"kind": "policy"}, malformed("data.kind"), nil},
		{"amend the instrument of a meeting → data.instrument", KindMeeting, obj{"instrument": "report"}, invalid("data.instrument"), nil},
		{"amend the level of a policy → data.level", KindPolicy, obj{"level": "ministerial"}, invalid("data.level"), nil},
		{"amend with an empty title → data.title", KindAgreement, obj{"title": ""}, invalid("data.title"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := record(t, tt.kind)
			before := e.Clone()
			err := e.Apply(newEvent(t, e, EngagementAmended, tt.data))
			if tt.check != nil {
				tt.check(t, err)
				assertUnchanged(t, before, e)
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			tt.verify(t, e)
			if e.v.Status != before.v.Status {
				t.Errorf("status changed from %s to %s", before.v.Status, e.v.Status)
			}
		})
	}
}

// self in correction data stands for the engagement's own id.
const self = "<self>"

func TestCorrected(t *testing.T) {
	link := func(target, relation string) step {
		return step{typ: EngagementLinked, data: obj{"target_id": target, "relation": relation}}
	}
	amendTitle := step{typ: EngagementAmended, data: obj{"title": "Amended title"}}
	tests := []struct {
		name    string
		kind    Kind
		history []step
		target  int // index of the corrected event in the history (0 = recorded); -1: an unknown id
		data    obj // besides corrects; "reason" is added unless present
		check   errCheck
		verify  func(t *testing.T, e *Engagement)
	}{
		// what a correction changes
		{"correct the title of engagement.recorded → Title changes", KindAgreement, nil, 0,
			obj{"title": "Fixed title"}, nil, wantField("Title", "Fixed title")},
		{"correct the recorded title after an amendment set it → Title unchanged", KindAgreement, []step{amendTitle}, 0,
			obj{"title": "Fixed title"}, nil, wantField("Title", "Amended title")},
		{"correct the title of the amendment → Title changes", KindAgreement, []step{amendTitle}, 1,
			obj{"title": "Fixed title"}, nil, wantField("Title", "Fixed title")},
		{"correct the recorded parties after an amendment of the title only → Parties change", KindAgreement, []step{amendTitle}, 0,
			obj{"parties": []string{"IOM", "UNHCR"}}, nil, func(t *testing.T, e *Engagement) {
				if !slices.Equal(e.v.Parties, []string{"IOM", "UNHCR"}) || e.v.Title != "Amended title" {
					t.Errorf("Parties %v, Title %q", e.v.Parties, e.v.Title)
				}
			}},
		{"correct a description the recording left out → Description set", KindAgreement, nil, 0,
			obj{"description": "Signed in Geneva"}, nil, wantField("Description", "Signed in Geneva")},
		{"correct tags the recording left out → Tags set", KindAgreement, nil, 0,
			obj{"tags": []string{"health"}}, nil, func(t *testing.T, e *Engagement) {
				if !slices.Equal(e.v.Tags, []string{"health"}) {
					t.Errorf("Tags %v", e.v.Tags)
				}
			}},
		{"correct a description the recording left out after an amendment set it → unchanged", KindAgreement,
			[]step{{typ: EngagementAmended, data: obj{"description": "From the amendment"}}}, 0,
			obj{"description": "From the correction"}, nil, wantField("Description", "From the amendment")},
		{"correct the recorded instrument of a policy → Instrument changes", KindPolicy, nil, 0,
			obj{"instrument": "compact"}, nil, wantField("Instrument", "compact")},
		{"correct the recorded location after scheduling set one → Location unchanged", KindMeeting,
			[]step{{typ: MeetingScheduled, data: obj{"starts_on": "2024-05-27", "location": "New York"}}}, 0,
			obj{"location": "Bern"}, nil, wantField("Location", "New York")},
		{"correct the recorded location when scheduling named none → Location changes", KindMeeting,
			[]step{scheduled}, 0, obj{"location": "Bern"}, nil, wantField("Location", "Bern")},
		{"correct signed_on → SignedOn changes", KindAgreement, []step{signed}, 1,
			obj{"signed_on": "2020-02-01"}, nil, wantField("SignedOn", "2020-02-01")},
		{"correct the signing's expires_on → ExpiresOn changes", KindAgreement, []step{signedExpiring}, 1,
			obj{"expires_on": "2030-12-31"}, nil, func(t *testing.T, e *Engagement) {
				if e.v.ExpiresOn != "2030-12-31" || e.StatusAt(occurred) != StatusActive {
					t.Errorf("ExpiresOn %q, status %s", e.v.ExpiresOn, e.StatusAt(occurred))
				}
			}},
		{"correct the signing's expires_on after a renewal set a new one → ExpiresOn unchanged", KindAgreement,
			[]step{signedExpiring, {typ: AgreementRenewed, data: obj{"renewed_on": "2022-01-01", "expires_on": "2190-01-01"}}}, 1,
			obj{"expires_on": "2022-06-30"}, nil, wantField("ExpiresOn", "2190-01-01")},
		{"correct the signing's expires_on after an open-ended renewal → ExpiresOn stays open", KindAgreement,
			[]step{signedExpiring, renewed}, 1, obj{"expires_on": "2022-06-30"}, nil, wantField("ExpiresOn", "")},
		{"correct renewed_on → RenewedOn changes", KindAgreement, []step{signed, renewed}, 2,
			obj{"renewed_on": "2023-02-01"}, nil, wantField("RenewedOn", "2023-02-01")},
		{"correct the recorded title of a terminated agreement → allowed, still terminated", KindAgreement, []step{signed, terminated}, 0,
			obj{"title": "Fixed title"}, nil, func(t *testing.T, e *Engagement) {
				if e.v.Title != "Fixed title" || e.v.Status != StatusTerminated {
					t.Errorf("Title %q, status %s", e.v.Title, e.v.Status)
				}
			}},
		{"correct the relation of one link → only that link changes", KindAgreement,
			[]step{link(otherID, "references"), link(otherID, "part_of")}, 1,
			obj{"relation": "implements"}, nil, func(t *testing.T, e *Engagement) {
				if e.v.Links[0].Relation != "implements" || e.v.Links[1].Relation != "part_of" || e.v.Links[0].TargetID != otherID {
					t.Errorf("Links %+v", e.v.Links)
				}
			}},
		{"correct one contribution → only that contribution changes", KindPolicy, []step{contributed, contributed}, 2,
			obj{"role": "lead author"}, nil, func(t *testing.T, e *Engagement) {
				if e.v.Contributions[0].Role != "co-author" || e.v.Contributions[1].Role != "lead author" ||
					e.v.Contributions[1].Contribution != "drafted operative paragraph 3" {
					t.Errorf("Contributions %+v", e.v.Contributions)
				}
			}},
		{"correct a commitment → Commitments change", KindPolicy, []step{adopted, committed}, 2,
			obj{"commitment": "train 200 health workers"}, nil, func(t *testing.T, e *Engagement) {
				if e.v.Commitments[0].Commitment != "train 200 health workers" {
					t.Errorf("Commitments %+v", e.v.Commitments)
				}
			}},
		{"correct adopted_by → AdoptedBy changes", KindPolicy, []step{adopted}, 1,
			obj{"adopted_by": "UNGA"}, nil, wantField("AdoptedBy", "UNGA")},
		{"correct the joining role after a role change → Role unchanged", KindInitiative, []step{joined, roleChanged}, 1,
			obj{"role": "observer"}, nil, wantField("Role", "co-chair")},
		{"correct the role change → Role changes", KindInitiative, []step{joined, roleChanged}, 2,
			obj{"role": "vice-chair"}, nil, wantField("Role", "vice-chair")},
		{"correct starts_on → StartsOn changes", KindMeeting, []step{scheduled}, 1,
			obj{"starts_on": "2024-05-28"}, nil, wantField("StartsOn", "2024-05-28")},
		{"correct a delegation the attendance left out → Delegation set", KindMeeting, []step{scheduled, attended}, 2,
			obj{"delegation": "DG and two advisers"}, nil, wantField("Delegation", "DG and two advisers")},
		{"correct the attendance role → Role changes", KindMeeting, []step{scheduled, attended}, 2,
			obj{"role": "organiser"}, nil, wantField("Role", "organiser")},
		{"correct the outcome of a concluded meeting → Outcome changes", KindMeeting, []step{scheduled, attended, concluded}, 3,
			obj{"outcome": "resolution deferred"}, nil, wantField("Outcome", "resolution deferred")},
		{"correct a note → allowed, state unchanged", KindAgreement, []step{{typ: EngagementNoted}}, 1,
			obj{"note": "Discussed at the mid-term review."}, nil, wantField("Title", "IOM–WHO agreement")},

		// what a correction may not do
		{"correct an event of another engagement → data.corrects", KindAgreement, nil, -1,
			obj{"title": "x"}, invalid("data.corrects"), nil},
		{"correct without naming the event → data.corrects", KindAgreement, nil, -2,
			obj{"title": "x"}, invalid("data.corrects"), nil},
		{"correct with a bad event id → data.corrects", KindAgreement, nil, -3,
			obj{"title": "x", "corrects": "not-a-uuid"}, invalid("data.corrects"), nil},
		{"correct with an event id that is a number → malformed", KindAgreement, nil, -3,
			obj{"title": "x", "corrects": 7}, malformed("data.corrects"), nil},
		{"correct without a reason → data.reason", KindAgreement, nil, 0,
			obj{"title": "x", "reason": nil}, invalid("data.reason"), nil},
		{"correct with an empty reason → data.reason", KindAgreement, nil, 0,
			obj{"title": "x", "reason": " "}, invalid("data.reason"), nil},
		{"correct no field → data", KindAgreement, nil, 0,
			obj{}, invalid("data"), nil},
		{"correct only with nulls → data", KindAgreement, nil, 0,
			obj{"title": json.RawMessage("null")}, invalid("data"), nil},
		{"correct a field the event does not have (title of agreement.signed) → malformed", KindAgreement, []step{signed}, 1,
			obj{"title": "x"}, malformed("data.fields.title"), nil},
		{"correct a field of another event type (renewed_on of agreement.signed) → malformed", KindAgreement, []step{signed}, 1,
			obj{"renewed_on": "2021-01-01"}, malformed("data.fields.renewed_on"), nil},
		{"correct the kind → malformed", KindAgreement, nil, 0,
			obj{"kind": "policy"}, malformed("data.fields.kind"), nil},
		{"correct the title to empty → data.title", KindAgreement, nil, 0,
			obj{"title": ""}, invalid("data.fields.title"), nil},
		{"correct the parties to none → data.parties", KindAgreement, nil, 0,
			obj{"parties": []string{}}, invalid("data.fields.parties"), nil},
		{"correct the title with a wrong type → malformed", KindAgreement, nil, 0,
			obj{"title": 5}, malformed("data.fields.title"), nil},
		{"correct an agreement's recording with an instrument → data.instrument", KindAgreement, nil, 0,
			obj{"instrument": "report"}, invalid("data.fields.instrument"), nil},
		{"correct a policy's recording with a level → data.level", KindPolicy, nil, 0,
			obj{"level": "ministerial"}, invalid("data.fields.level"), nil},
		{"correct expires_on to before signed_on → data.expires_on", KindAgreement, []step{signedExpiring}, 1,
			obj{"expires_on": "2018-01-01"}, invalid("data.fields.expires_on"), nil},
		{"correct both dates inconsistently → data.expires_on", KindAgreement, []step{signed}, 1,
			obj{"signed_on": "2021-01-01", "expires_on": "2020-01-01"}, invalid("data.fields.expires_on"), nil},
		{"correct renewed_on to before signed_on → data.renewed_on", KindAgreement, []step{signed, renewed}, 2,
			obj{"renewed_on": "2019-01-01"}, invalid("data.fields.renewed_on"), nil},
		{"correct signed_on to after the signing's expires_on → data.signed_on", KindAgreement, []step{signedExpiring}, 1,
			obj{"signed_on": "2022-01-01"}, invalid("data.fields.signed_on"), nil},
		{"correct signed_on to the expiry day → data.signed_on", KindAgreement, []step{signedExpiring}, 1,
			obj{"signed_on": "2021-12-31"}, invalid("data.fields.signed_on"), nil},
		{"correct signed_on when a renewal set the expiry → allowed", KindAgreement,
			[]step{signedExpiring, {typ: AgreementRenewed, data: obj{"renewed_on": "2022-01-01", "expires_on": "2190-01-01"}}}, 1,
			obj{"signed_on": "2019-02-01"}, nil, wantField("SignedOn", "2019-02-01")},
		{"correct renewed_on to after the renewal's expires_on → data.renewed_on", KindAgreement,
			[]step{signed, {typ: AgreementRenewed, data: obj{"renewed_on": "2022-01-01", "expires_on": "2023-01-01"}}}, 2,
			obj{"renewed_on": "2023-06-01"}, invalid("data.fields.renewed_on"), nil},
		{"correct the renewal's expires_on to before its renewed_on → data.expires_on", KindAgreement,
			[]step{signed, {typ: AgreementRenewed, data: obj{"renewed_on": "2022-01-01", "expires_on": "2023-01-01"}}}, 2,
			obj{"expires_on": "2021-06-01"}, invalid("data.fields.expires_on"), nil},
		{"correct the expiry of an earlier renewal (judged by its own dates, not the later renewal's) → accepted", KindAgreement,
			[]step{signed,
				{typ: AgreementRenewed, data: obj{"renewed_on": "2021-01-01", "expires_on": "2022-01-01"}},
				{typ: AgreementRenewed, data: obj{"renewed_on": "2023-01-15", "term": TermOpenEnded}}}, 2,
			obj{"expires_on": "2021-06-01"}, nil, wantField("ExpiresOn", "")},
		{"correct a date to a bad date → data.signed_on", KindAgreement, []step{signed}, 1,
			obj{"signed_on": "2020-02-30"}, invalid("data.fields.signed_on"), nil},
		{"correct a link to point at the engagement itself → data.target_id", KindAgreement, []step{link(otherID, "references")}, 1,
			obj{"target_id": self}, invalid("data.fields.target_id"), nil},
		{"correct the attendance role to an unknown one → data.role", KindMeeting, []step{scheduled, attended}, 2,
			obj{"role": "observer"}, invalid("data.fields.role"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, history := build(t, tt.kind, tt.history...)
			data := maps.Clone(tt.data)
			if r, ok := data["reason"]; !ok {
				data["reason"] = "typo in the original"
			} else if r == nil {
				delete(data, "reason")
			}
			switch tt.target {
			case -1:
				data["corrects"] = newID()
			case -2:
			case -3:
				// the case sets corrects itself
			default:
				data["corrects"] = history[tt.target].ID
			}
			for k, v := range data {
				if v == self {
					data[k] = e.v.ID
				}
			}
			before := e.Clone()
			ev := newEvent(t, e, EngagementCorrected, data)
			err := e.Apply(ev)
			if tt.check != nil {
				tt.check(t, err)
				assertUnchanged(t, before, e)
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if e.v.Version != before.v.Version+1 || !e.HasEvent(ev.ID) {
				t.Errorf("version %d after correction, want %d", e.v.Version, before.v.Version+1)
			}
			if e.v.Status != before.v.Status {
				t.Errorf("a correction changed the status from %s to %s", before.v.Status, e.v.Status)
			}
			tt.verify(t, e)
		})
	}
}

func TestCorrectACorrection(t *testing.T) {
	e, history := record(t, KindAgreement)
	fix := mustApply(t, e, newEvent(t, e, EngagementCorrected, obj{"corrects": history[0].ID, "reason": "typo", "title": "Fixed"}))
	before := e.Clone()
	_, err := e.Decide(newEvent(t, e, EngagementCorrected, obj{"corrects": fix.ID, "reason": "typo", "title": "Fixed again"}))
	invalid("data.corrects")(t, err)
	assertUnchanged(t, before, e)

	// Correcting the original again is the way to fix a correction.
	mustApply(t, e, newEvent(t, e, EngagementCorrected, obj{"corrects": history[0].ID, "reason": "typo", "title": "Fixed again"}))
	if e.v.Title != "Fixed again" {
		t.Errorf("Title %q, want Fixed again", e.v.Title)
	}
}

// wantField checks one string field of the state by name.
func wantField(name, want string) func(t *testing.T, e *Engagement) {
	return func(t *testing.T, e *Engagement) {
		t.Helper()
		got := reflect.ValueOf(&e.v).Elem().FieldByName(name).String()
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// TestApplyInvariants folds every fixture and checks after each event that
// the version counts the events, the status is one of the kind's, and the
// timestamps follow the events.
func TestApplyInvariants(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			e, history := build(t, f.kind, f.steps...)
			g := &Engagement{}
			for i, ev := range history {
				ev.Sequence = uint64(100 + i)
				mustApply(t, g, ev)
				if g.v.Version != i+1 {
					t.Errorf("after %d events: version %d", i+1, g.v.Version)
				}
				if g.v.Sequence != ev.Sequence {
					t.Errorf("sequence %d, want %d", g.v.Sequence, ev.Sequence)
				}
				if !slices.Contains(f.kind.Statuses(), g.v.Status) {
					t.Errorf("status %q is not a %s status", g.v.Status, f.kind)
				}
				for _, when := range []time.Time{ev.OccurredAt, time.Now(), time.Date(2199, 12, 31, 0, 0, 0, 0, time.UTC)} {
					if s := g.StatusAt(when); !slices.Contains(f.kind.Statuses(), s) || !ValidStatus(s) {
						t.Errorf("StatusAt(%s) = %q is not a %s status", when, s, f.kind)
					}
				}
				if !g.HasEvent(ev.ID) {
					t.Errorf("event %s not known after applying it", ev.ID)
				}
				if !g.v.UpdatedAt.Equal(ev.RecordedAt) || !g.v.CreatedAt.Equal(history[0].RecordedAt) || !g.v.StartedAt.Equal(history[0].OccurredAt) {
					t.Errorf("times: created %s updated %s started %s", g.v.CreatedAt, g.v.UpdatedAt, g.v.StartedAt)
				}
			}
			// Folding the same events again gives the same state.
			g.v.Sequence = e.v.Sequence
			if !reflect.DeepEqual(e, g) {
				t.Errorf("refold differs:\n%+v\n%+v", e, g)
			}
			if g.StatusAt(occurred) != f.status {
				t.Errorf("status %s, want %s", g.StatusAt(occurred), f.status)
			}
		})
	}
}

// TestApplyTheSameEventTwice: replaying a stored event (same id and version)
// is refused rather than folded twice.
func TestApplyTheSameEventTwice(t *testing.T) {
	e, history := build(t, KindPolicy, contributed)
	before := e.Clone()
	err := e.Apply(history[1])
	invalid("version")(t, err)
	assertUnchanged(t, before, e)
	if len(e.v.Contributions) != 1 {
		t.Errorf("%d contributions, want 1", len(e.v.Contributions))
	}
}

func TestDecideDoesNotChangeState(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			e, _ := build(t, f.kind, f.steps...)
			before := e.Clone()
			for _, typ := range EventTypes {
				if typ == EngagementCorrected {
					continue
				}
				_, _ = e.Decide(newEvent(t, e, typ, sampleData(typ)))
			}
			assertUnchanged(t, before, e)
		})
	}
}

func TestCloneIsDeep(t *testing.T) {
	steps := []step{
		{typ: EngagementAmended, data: obj{"tags": []string{"health", "migration"}}},
		{typ: EngagementLinked},
		contributed, adopted, committed,
	}
	e, history := build(t, KindPolicy, steps...)
	c := e.Clone()
	if !reflect.DeepEqual(e, c) {
		t.Fatalf("clone differs:\n%+v\n%+v", e, c)
	}

	c.v.Parties[0] = "UNHCR"
	c.v.Tags[0] = "changed"
	c.v.Links[0].Relation = "supersedes"
	c.v.Contributions[0].Role = "changed"
	c.v.Commitments[0].Commitment = "changed"
	c.events[len(c.events)-2] ^= 0xff // part of the last event's id
	c.sources[0].event++
	mustApply(t, c, newEvent(t, c, EngagementCorrected, obj{"corrects": history[0].ID, "reason": "r", "parties": []string{"A", "B"}}))
	mustApply(t, c, newEvent(t, c, PolicyContributed, sampleData(PolicyContributed)))
	mustApply(t, c, newEvent(t, c, EngagementLinked, obj{"target_id": newID(), "relation": "part_of"}))

	if !reflect.DeepEqual(e, fold(t, history)) {
		t.Errorf("changing the clone changed the original:\n%+v", e)
	}
	// And the other way round.
	c2 := e.Clone()
	mustApply(t, e, newEvent(t, e, EngagementAmended, obj{"parties": []string{"X"}}))
	if c2.v.Parties[0] != "IOM" || c2.v.Version != len(history) {
		t.Errorf("changing the original changed the clone: %+v", c2)
	}
	if zero := (&Engagement{}).Clone(); zero.Exists() {
		t.Error("clone of the zero engagement exists")
	}
}

func TestErrorMessages(t *testing.T) {
	withReason := &TransitionError{Type: AgreementRenewed, Status: StatusTerminated, Reason: "the agreement is terminated"}
	without := &TransitionError{Type: AgreementRenewed, Status: StatusTerminated}
	for _, err := range []error{withReason, without, fmt.Errorf("append: %w", without)} {
		if !errors.Is(err, ErrInvalidTransition) {
			t.Errorf("%v is not ErrInvalidTransition", err)
		}
		if !strings.Contains(err.Error(), "agreement.renewed") || !strings.Contains(err.Error(), "terminated") {
			t.Errorf("message %q names neither the type nor the status", err.Error())
		}
	}
	wrapped := fmt.Errorf("append: %w", &ValidationError{Fields: []FieldError{{"data.title", "is required"}}})
	var v *ValidationError
	if !errors.As(wrapped, &v) || v.Fields[0].Field != "data.title" {
		t.Errorf("errors.As through wrapping: %v", wrapped)
	}
}
