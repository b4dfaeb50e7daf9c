package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// stateFor is an engagement in which typ is allowed, so that a case fails
// only because of its data.
func stateFor(t *testing.T, typ EventType) *Engagement {
	t.Helper()
	var e *Engagement
	switch typ {
	case EngagementRecorded:
		return &Engagement{}
	case AgreementRenewed, AgreementTerminated:
		e, _ = build(t, KindAgreement, signed)
	case EngagementActionCompleted, EngagementActionCancelled, EngagementActionOverdue:
		e, _ = build(t, KindAgreement, assigned)
	case EngagementFocalPointReleased:
		e, _ = build(t, KindAgreement, focalAssigned)
	case AgreementExpiring, AgreementExpired:
		e, _ = build(t, KindAgreement, step{typ: AgreementSigned, data: obj{"signed_on": "2020-01-15", "expires_on": "2025-06-30"}})
	case MeetingUpcoming:
		e, _ = build(t, KindMeeting, scheduled)
	case PolicyCommitted:
		e, _ = build(t, KindPolicy, adopted)
	case InitiativeRoleChanged, InitiativeLeft:
		e, _ = build(t, KindInitiative, joined)
	case MeetingAttended:
		e, _ = build(t, KindMeeting, scheduled)
	case MeetingConcluded:
		e, _ = build(t, KindMeeting, scheduled, attended)
	default:
		e, _ = record(t, kindOf(typ))
	}
	return e
}

// TestSampleDataIsValid guards the fixtures the other tests start from.
func TestSampleDataIsValid(t *testing.T) {
	for _, typ := range EventTypes {
		if typ == EngagementCorrected {
			continue
		}
		t.Run(string(typ), func(t *testing.T) {
			e := stateFor(t, typ)
			if _, err := e.Decide(newEvent(t, e, typ, sampleData(typ))); err != nil {
				t.Fatalf("sample data refused: %v", err)
			}
		})
	}
}

// dataFields are the fields of typ's data (engagement.corrected's depend on
// the corrected event: none here).
func dataFields(typ EventType) []Field {
	if typ == EngagementCorrected {
		return nil
	}
	s, _ := SpecOf(typ)
	return s.Fields
}

// TestRequiredFields removes each required field of each event type in turn.
func TestRequiredFields(t *testing.T) {
	for _, typ := range EventTypes {
		for _, spec := range dataFields(typ) {
			if !spec.Required || spec.OnlyFor != "" {
				continue
			}
			for _, how := range []string{"left out", "null"} {
				t.Run(fmt.Sprintf("%s with %s %s → data.%s is required", typ, spec.Name, how, spec.Name), func(t *testing.T) {
					e := stateFor(t, typ)
					var data obj
					if how == "null" {
						data = with(sampleData(typ), spec.Name, json.RawMessage("null"))
					} else {
						data = with(sampleData(typ), spec.Name, nil)
					}
					_, err := e.Decide(newEvent(t, e, typ, data))
					invalid("data."+spec.Name)(t, err)
				})
			}
		}
	}
	t.Run("engagement.recorded of a policy without instrument → data.instrument is required", func(t *testing.T) {
		_, err := (&Engagement{}).Decide(newEvent(t, &Engagement{}, EngagementRecorded, with(recordedData(KindPolicy), "instrument", nil)))
		invalid("data.instrument")(t, err)
	})
	t.Run("engagement.recorded with no data → every required field", func(t *testing.T) {
		_, err := (&Engagement{}).Decide(newEvent(t, &Engagement{}, EngagementRecorded, nil))
		invalid("data.kind", "data.title", "data.parties")(t, err)
	})
}

// TestWrongJSONTypes gives each field of each event type a number, an
// object and so on: the shape is wrong, so it is malformed (400), not invalid.
func TestWrongJSONTypes(t *testing.T) {
	wrong := []struct {
		name  string
		value string
	}{
		{"a number", `42`},
		{"a boolean", `true`},
		{"an object", `{"value": "x"}`},
	}
	for _, typ := range EventTypes {
		for _, spec := range dataFields(typ) {
			for _, w := range wrong {
				if spec.Input == InputCount && w.value == `42` {
					continue // a number is a count's right shape
				}
				t.Run(fmt.Sprintf("%s with %s as %s → malformed", typ, spec.Name, w.name), func(t *testing.T) {
					e := stateFor(t, typ)
					value := w.value
					if spec.Input == InputNumber && w.value == `42` {
						value = `"42"` // a number field's wrong shape is a string
					}
					data := with(sampleData(typ), spec.Name, json.RawMessage(value))
					_, err := e.Decide(newEvent(t, e, typ, data))
					malformed("data."+spec.Name)(t, err)
				})
			}
		}
	}
}

// TestUnknownFields: a field the event type does not have is malformed.
func TestUnknownFields(t *testing.T) {
	for _, typ := range EventTypes {
		if typ == EngagementCorrected {
			continue
		}
		t.Run(fmt.Sprintf("%s with an unknown field → malformed data.colour", typ), func(t *testing.T) {
			e := stateFor(t, typ)
			_, err := e.Decide(newEvent(t, e, typ, with(sampleData(typ), "colour", "blue")))
			malformed("data.colour")(t, err)
		})
	}
	t.Run("unknown and wrongly typed fields are all listed", func(t *testing.T) {
		e := stateFor(t, AgreementSigned)
		_, err := e.Decide(newEvent(t, e, AgreementSigned, obj{"signed_on": 20200115, "signedOn": "2020-01-15"}))
		malformed("data.signed_on", "data.signedOn")(t, err)
	})
	t.Run("a very long unknown field name is truncated in the error", func(t *testing.T) {
		e := stateFor(t, EngagementNoted)
		name := strings.Repeat("x", 1000)
		_, err := e.Decide(newEvent(t, e, EngagementNoted, with(sampleData(EngagementNoted), name, "v")))
		var m *MalformedError
		if !errors.As(err, &m) || len(m.Fields) != 1 || len(m.Fields[0].Field) > 100 {
			t.Fatalf("err = %v, want one short malformed field", err)
		}
	})
}

// TestDataShape: data that is not a JSON object.
func TestDataShape(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		check errCheck
	}{
		{"data is an array → malformed", `["IOM"]`, malformed("data")},
		{"data is a string → malformed", `"note"`, malformed("data")},
		{"data is a number → malformed", `7`, malformed("data")},
		{"data is not JSON → malformed", `{"note": `, malformed("data")},
		{"data has trailing garbage → malformed", `{"note": "x"} {}`, malformed("data")},
		{"data has a duplicate key → malformed", `{"note": "x", "note": "y"}`, malformed("data.note")},
		{"data has a duplicate key holding null → malformed", `{"note": "x", "note": null}`, malformed("data.note")},
		{"keys differing only in case are not duplicates (the second is unknown)", `{"note": "x", "Note": "y"}`, malformed("data.Note")},
		{"data is null → the required note is missing", `null`, invalid("data.note")},
		{"data is empty → the required note is missing", ``, invalid("data.note")},
		{"data is {} → the required note is missing", `{}`, invalid("data.note")},
		{"data with surrounding whitespace is fine", " \n{\"note\": \"x\"}\n ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := record(t, KindAgreement)
			_, err := e.Decide(newEvent(t, e, EngagementNoted, tt.data))
			if tt.check == nil {
				if err != nil {
					t.Fatalf("Decide: %v", err)
				}
				return
			}
			tt.check(t, err)
		})
	}
}

// TestFieldValidation covers the rules of each field: lengths, emptiness,
// control characters, lists, enums, dates and cross-field rules.
func TestFieldValidation(t *testing.T) {
	parties := func(n int) []string { return strs(n, func(i int) string { return fmt.Sprintf("Org %d", i) }) }
	rec := func(k Kind, kv ...any) obj { return with(recordedData(k), kv...) }
	tests := []struct {
		name  string
		typ   EventType
		state []step // for kind-specific types; nil means stateFor
		data  obj
		check errCheck
	}{
		// titles and text
		{"title empty", EngagementRecorded, nil, rec(KindAgreement, "title", ""), invalid("data.title")},
		{"title only spaces", EngagementRecorded, nil, rec(KindAgreement, "title", "   \t "), invalid("data.title")},
		{"title of 300 characters is fine", EngagementRecorded, nil, rec(KindAgreement, "title", strings.Repeat("é", MaxTitle)), nil},
		{"title of 301 characters is too long", EngagementRecorded, nil, rec(KindAgreement, "title", strings.Repeat("a", MaxTitle+1)), invalid("data.title")},
		{"title with a newline", EngagementRecorded, nil, rec(KindAgreement, "title", "MOU\nsecond line"), invalid("data.title")},
		{"title with a NUL", EngagementRecorded, nil, rec(KindAgreement, "title", "MOU\x00"), invalid("data.title")},
		{"title with a tab", EngagementRecorded, nil, rec(KindAgreement, "title", "MOU\tWHO"), invalid("data.title")},
		{"title with an escape character", EngagementRecorded, nil, rec(KindAgreement, "title", "MOU\x1b[31m"), invalid("data.title")},
		{"title with a C1 control character", EngagementRecorded, nil, rec(KindAgreement, "title", "MO\u0085U"), invalid("data.title")},
		{"title with non-Latin letters is fine", EngagementRecorded, nil, rec(KindAgreement, "title", "Меморандум 合作 مذكرة"), nil},
		{"description with newlines and tabs is fine", EngagementRecorded, nil, rec(KindAgreement, "description", "line 1\n\tline 2\r\n"), nil},
		{"description with a bell character", EngagementRecorded, nil, rec(KindAgreement, "description", "ding\a"), invalid("data.description")},
		{"description empty", EngagementRecorded, nil, rec(KindAgreement, "description", ""), invalid("data.description")},
		{"description of 10000 characters is fine", EngagementRecorded, nil, rec(KindAgreement, "description", strings.Repeat("d", MaxText)), nil},
		{"description of 10001 characters is too long", EngagementRecorded, nil, rec(KindAgreement, "description", strings.Repeat("d", MaxText+1)), invalid("data.description")},
		{"note empty", EngagementNoted, nil, obj{"note": ""}, invalid("data.note")},
		{"note too long", EngagementNoted, nil, obj{"note": strings.Repeat("n", MaxText+1)}, invalid("data.note")},
		{"note with the replacement character", EngagementNoted, nil, obj{"note": "bad \uFFFD byte"}, invalid("data.note")},
		{"termination reason too long", AgreementTerminated, nil, obj{"reason": strings.Repeat("r", MaxReason+1)}, invalid("data.reason")},
		{"termination reason empty", AgreementTerminated, nil, obj{"reason": " "}, invalid("data.reason")},
		{"contribution role too long", PolicyContributed, nil, obj{"contribution": "x", "role": strings.Repeat("r", MaxShortText+1)}, invalid("data.role")},
		{"contribution and role both empty", PolicyContributed, nil, obj{"contribution": "", "role": ""}, invalid("data.contribution", "data.role")},
		{"adopted_by empty", PolicyAdopted, nil, obj{"adopted_by": ""}, invalid("data.adopted_by")},
		{"adopted_by with a newline", PolicyAdopted, nil, obj{"adopted_by": "WHA\n"}, nil}, // trimmed first
		{"adopted_by with an inner newline", PolicyAdopted, nil, obj{"adopted_by": "W\nHA"}, invalid("data.adopted_by")},
		{"commitment too long", PolicyCommitted, nil, obj{"commitment": strings.Repeat("c", MaxReason+1)}, invalid("data.commitment")},
		{"initiative role empty", InitiativeJoined, nil, obj{"role": ""}, invalid("data.role")},
		{"role change to an empty role", InitiativeRoleChanged, nil, obj{"role": " "}, invalid("data.role")},
		{"leaving reason empty", InitiativeLeft, nil, obj{"reason": ""}, invalid("data.reason")},
		{"leaving without a reason is fine", InitiativeLeft, nil, obj{}, nil},
		{"meeting outcome too long", MeetingConcluded, nil, obj{"outcome": strings.Repeat("o", MaxReason+1)}, invalid("data.outcome")},
		{"concluding without an outcome is fine", MeetingConcluded, nil, obj{}, nil},
		{"delegation too long", MeetingAttended, nil, obj{"role": "speaker", "delegation": strings.Repeat("d", MaxReason+1)}, invalid("data.delegation")},
		{"scheduled location too long", MeetingScheduled, nil, obj{"starts_on": "2024-05-27", "location": strings.Repeat("l", MaxShortText+1)}, invalid("data.location")},

		// lists
		{"no parties", EngagementRecorded, nil, rec(KindAgreement, "parties", []string{}), invalid("data.parties")},
		{"parties as a string", EngagementRecorded, nil, rec(KindAgreement, "parties", "IOM"), malformed("data.parties")},
		{"parties holding a number", EngagementRecorded, nil, rec(KindAgreement, "parties", []any{"IOM", 1}), malformed("data.parties")},
		{"parties holding null", EngagementRecorded, nil, rec(KindAgreement, "parties", []any{"IOM", nil}), invalid("data.parties")},
		{"party empty", EngagementRecorded, nil, rec(KindAgreement, "parties", []string{"IOM", ""}), invalid("data.parties")},
		{"party only spaces", EngagementRecorded, nil, rec(KindAgreement, "parties", []string{"IOM", "  "}), invalid("data.parties")},
		{"party repeated", EngagementRecorded, nil, rec(KindAgreement, "parties", []string{"IOM", "WHO", "IOM"}), invalid("data.parties")},
		{"party repeated in another case", EngagementRecorded, nil, rec(KindAgreement, "parties", []string{"WHO", "who"}), invalid("data.parties")},
		{"party repeated with extra spaces", EngagementRecorded, nil, rec(KindAgreement, "parties", []string{"WHO", " WHO "}), invalid("data.parties")},
		{"party with a newline", EngagementRecorded, nil, rec(KindAgreement, "parties", []string{"IOM", "W\nHO"}), invalid("data.parties")},
		{"party of 101 characters", EngagementRecorded, nil, rec(KindAgreement, "parties", []string{strings.Repeat("p", MaxEntry+1)}), invalid("data.parties")},
		{"party of 100 characters is fine", EngagementRecorded, nil, rec(KindAgreement, "parties", []string{strings.Repeat("p", MaxEntry)}), nil},
		{"50 parties are fine", EngagementRecorded, nil, rec(KindAgreement, "parties", parties(MaxListEntries)), nil},
		{"51 parties are too many", EngagementRecorded, nil, rec(KindAgreement, "parties", parties(MaxListEntries+1)), invalid("data.parties")},
		{"no tags is fine", EngagementRecorded, nil, rec(KindAgreement, "tags", []string{}), nil},
		{"tag repeated", EngagementRecorded, nil, rec(KindAgreement, "tags", []string{"health", "Health"}), invalid("data.tags")},
		{"tag empty", EngagementRecorded, nil, rec(KindAgreement, "tags", []string{""}), invalid("data.tags")},
		{"51 tags are too many", EngagementRecorded, nil, rec(KindAgreement, "tags", parties(MaxListEntries+1)), invalid("data.tags")},
		{"amended parties empty", EngagementAmended, nil, obj{"parties": []string{}}, invalid("data.parties")},
		{"amended tags repeated", EngagementAmended, nil, obj{"tags": []string{"a", "A"}}, invalid("data.tags")},

		// enums
		{"unknown kind", EngagementRecorded, nil, rec(KindAgreement, "kind", "treaty"), invalid("data.kind")},
		{"kind in upper case", EngagementRecorded, nil, rec(KindAgreement, "kind", "Agreement"), invalid("data.kind")},
		{"unknown instrument", EngagementRecorded, nil, rec(KindPolicy, "instrument", "law"), invalid("data.instrument")},
		{"every instrument is accepted", EngagementRecorded, nil, rec(KindPolicy, "instrument", "action_plan"), nil},
		{"unknown relation", EngagementLinked, nil, obj{"target_id": otherID, "relation": "likes"}, invalid("data.relation")},
		{"unknown attendance role", MeetingAttended, nil, obj{"role": "observer"}, invalid("data.role")},
		{"attendance role organiser is fine", MeetingAttended, nil, obj{"role": "organiser"}, nil},

		// kind-specific fields
		{"instrument on an agreement", EngagementRecorded, nil, rec(KindAgreement, "instrument", "report"), invalid("data.instrument")},
		{"instrument on a meeting", EngagementRecorded, nil, rec(KindMeeting, "instrument", "report"), invalid("data.instrument")},
		{"instrument on an initiative", EngagementRecorded, nil, rec(KindInitiative, "instrument", "report"), invalid("data.instrument")},
		{"level on an agreement", EngagementRecorded, nil, rec(KindAgreement, "level", "ministerial"), invalid("data.level")},
		{"location on an initiative", EngagementRecorded, nil, rec(KindInitiative, "location", "Geneva"), invalid("data.location")},
		{"level and location on a policy", EngagementRecorded, nil, rec(KindPolicy, "level", "x", "location", "y"), invalid("data.level", "data.location")},
		{"meeting without level or location is fine", EngagementRecorded, nil, rec(KindMeeting, "level", nil, "location", nil), nil},
		{"meeting level too long", EngagementRecorded, nil, rec(KindMeeting, "level", strings.Repeat("l", MaxEntry+1)), invalid("data.level")},
		{"amend the instrument of an agreement", EngagementAmended, nil, obj{"instrument": "report"}, invalid("data.instrument")},
		{"amend the location of an agreement", EngagementAmended, nil, obj{"location": "Geneva"}, invalid("data.location")},

		// dates
		{"signed_on not a date", AgreementSigned, nil, obj{"signed_on": "yesterday"}, invalid("data.signed_on")},
		{"signed_on in another format", AgreementSigned, nil, obj{"signed_on": "15/01/2020"}, invalid("data.signed_on")},
		{"signed_on without zero padding", AgreementSigned, nil, obj{"signed_on": "2020-1-5"}, invalid("data.signed_on")},
		{"signed_on with a time", AgreementSigned, nil, obj{"signed_on": "2020-01-15T00:00:00Z"}, invalid("data.signed_on")},
		{"signed_on month 13", AgreementSigned, nil, obj{"signed_on": "2020-13-01"}, invalid("data.signed_on")},
		{"signed_on 30 February", AgreementSigned, nil, obj{"signed_on": "2020-02-30"}, invalid("data.signed_on")},
		{"signed_on 29 February of a leap year is fine", AgreementSigned, nil, obj{"signed_on": "2020-02-29"}, nil},
		{"signed_on as a number", AgreementSigned, nil, obj{"signed_on": 20200115}, malformed("data.signed_on")},
		{"signed_on in 1899", AgreementSigned, nil, obj{"signed_on": "1899-12-31"}, invalid("data.signed_on")},
		{"signed_on in 1900 is fine", AgreementSigned, nil, obj{"signed_on": "1900-01-01"}, nil},
		{"signed_on in 2199 is fine", AgreementSigned, nil, obj{"signed_on": "2199-12-30", "expires_on": "2199-12-31"}, nil},
		{"expires_on in 2200", AgreementSigned, nil, obj{"signed_on": "2020-01-15", "expires_on": "2200-01-01"}, invalid("data.expires_on")},
		{"expires_on before signed_on", AgreementSigned, nil, obj{"signed_on": "2020-01-15", "expires_on": "2019-01-15"}, invalid("data.expires_on")},
		{"expires_on on the signing day", AgreementSigned, nil, obj{"signed_on": "2020-01-15", "expires_on": "2020-01-15"}, invalid("data.expires_on")},
		{"expires_on the day after signing is fine", AgreementSigned, nil, obj{"signed_on": "2020-01-15", "expires_on": "2020-01-16"}, nil},
		{"renewed_on before signed_on", AgreementRenewed, []step{signed}, obj{"renewed_on": "2019-12-31"}, invalid("data.renewed_on")},
		{"renewed_on on the signing day is fine", AgreementRenewed, []step{signed}, obj{"renewed_on": "2020-01-15"}, nil},
		{"renewal expires_on before renewed_on", AgreementRenewed, []step{signed}, obj{"renewed_on": "2023-01-15", "expires_on": "2022-01-15"}, invalid("data.expires_on")},
		{"renewal expires_on before renewed_on, renewed_on before signed_on", AgreementRenewed, []step{signed}, obj{"renewed_on": "2019-01-15", "expires_on": "2018-01-15"}, invalid("data.renewed_on", "data.expires_on")},
		{"renewed_on not a date", AgreementRenewed, []step{signed}, obj{"renewed_on": "2023-02-31"}, invalid("data.renewed_on")},
		{"starts_on in 1850", MeetingScheduled, nil, obj{"starts_on": "1850-06-01"}, invalid("data.starts_on")},
		{"starts_on in the future is fine (meetings are scheduled ahead)", MeetingScheduled, nil, obj{"starts_on": "2150-06-01"}, nil},

		// ids
		{"target_id not a UUID", EngagementLinked, nil, obj{"target_id": "abc", "relation": "references"}, invalid("data.target_id")},
		{"target_id in upper case", EngagementLinked, nil, obj{"target_id": strings.ToUpper(otherID), "relation": "references"}, invalid("data.target_id")},
		{"target_id without dashes", EngagementLinked, nil, obj{"target_id": strings.ReplaceAll(otherID, "-", ""), "relation": "references"}, invalid("data.target_id")},
		{"target_id in braces", EngagementLinked, nil, obj{"target_id": "{" + otherID + "}", "relation": "references"}, invalid("data.target_id")},
		{"target_id as a URN", EngagementLinked, nil, obj{"target_id": "urn:uuid:" + otherID, "relation": "references"}, invalid("data.target_id")},
		{"target_id with a NATS wildcard", EngagementLinked, nil, obj{"target_id": "01900000-0000-7000-8000-00000000000>", "relation": "references"}, invalid("data.target_id")},
		{"target_id as a number", EngagementLinked, nil, obj{"target_id": 1, "relation": "references"}, malformed("data.target_id")},
	}
	for _, tt := range tests {
		outcome := "ok"
		if tt.check != nil {
			outcome = "rejected"
		}
		t.Run(fmt.Sprintf("%s: %s → %s", tt.typ, tt.name, outcome), func(t *testing.T) {
			var e *Engagement
			if tt.state != nil {
				e, _ = build(t, kindOf(tt.typ), tt.state...)
			} else {
				e = stateFor(t, tt.typ)
			}
			before := e.Clone()
			err := e.Apply(newEvent(t, e, tt.typ, tt.data))
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

// TestInvalidUTF8 sends bytes that are not UTF-8; encoding/json turns them into
// U+FFFD, which is refused rather than stored.
func TestInvalidUTF8(t *testing.T) {
	e, _ := record(t, KindAgreement)
	_, err := e.Decide(newEvent(t, e, EngagementNoted, "{\"note\": \"bad \xff byte\"}"))
	invalid("data.note")(t, err)
}

// TestNormalisation: Decide returns the data as it will be stored.
func TestNormalisation(t *testing.T) {
	tests := []struct {
		name string
		typ  EventType
		data string
		want map[string]any
	}{
		{
			name: "strings are trimmed and nulls dropped",
			typ:  EngagementRecorded,
			data: `{"kind":"agreement","title":"  MOU  ","parties":[" IOM ","WHO"],"description":null,"tags":null}`,
			want: map[string]any{"kind": "agreement", "title": "MOU", "parties": []any{"IOM", "WHO"}},
		},
		{
			name: "multi-line text keeps inner newlines",
			typ:  EngagementNoted,
			data: `{"note":"\n a\nb \n"}`,
			want: map[string]any{"note": "a\nb"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Engagement{}
			if tt.typ != EngagementRecorded {
				e, _ = record(t, KindAgreement)
			}
			in := newEvent(t, e, tt.typ, tt.data)
			out, err := e.Decide(in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			var got map[string]any
			if err := json.Unmarshal(out.Data, &got); err != nil {
				t.Fatalf("normalised data %s: %v", out.Data, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("data = %v, want %v", got, tt.want)
			}
			if out.ID != in.ID || out.Version != in.Version || !out.OccurredAt.Equal(in.OccurredAt) {
				t.Errorf("envelope changed: %+v → %+v", in, out)
			}
		})
	}
	t.Run("recorded takes its kind from the data", func(t *testing.T) {
		e := &Engagement{}
		in := newEvent(t, e, EngagementRecorded, recordedData(KindMeeting))
		in.Kind = ""
		out, err := e.Decide(in)
		if err != nil {
			t.Fatalf("Decide: %v", err)
		}
		if out.Kind != KindMeeting {
			t.Errorf("Kind = %q, want meeting", out.Kind)
		}
	})
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"2024-02-29", true},
		{"2023-02-29", false},
		{"1900-01-01", true},
		{"1899-12-31", false},
		{"2199-12-31", true},
		{"2200-01-01", false},
		{"0000-01-01", false},
		{"2024-00-10", false},
		{"2024-01-00", false},
		{"2024-01-32", false},
		{"", false},
		{" 2024-01-01", false},
		{"2024/01/01", false},
		{"+2024-01-01", false},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%q → ok", tt.in)
		if !tt.ok {
			name = fmt.Sprintf("%q → rejected", tt.in)
		}
		t.Run(name, func(t *testing.T) {
			d, err := ParseDate(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseDate(%q) = %v, %v", tt.in, d, err)
			}
			if tt.ok && d.Format(DateLayout) != tt.in {
				t.Errorf("ParseDate(%q) = %s", tt.in, d.Format(DateLayout))
			}
		})
	}
}

func TestCheckID(t *testing.T) {
	v7 := newID()
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"UUID v7 from google/uuid", v7, true},
		{"UUID v4", "6ba7b810-9dad-41d1-80b4-00c04fd430c8", true},
		{"upper case", strings.ToUpper(v7), false},
		{"no dashes", strings.ReplaceAll(v7, "-", ""), false},
		{"braces", "{" + v7 + "}", false},
		{"URN", "urn:uuid:" + v7, false},
		{"empty", "", false},
		{"36 characters but not hex", strings.Repeat("z", 8) + v7[8:], false},
		{"NATS wildcard", v7[:35] + "*", false},
		{"NATS token separator", v7[:35] + ".", false},
		{"dashes moved", v7[:7] + "-" + v7[7:8] + v7[9:], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckID(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckID(%q) = %v", tt.in, err)
			}
			if err != nil && !errors.Is(err, ErrInvalidID) {
				t.Errorf("CheckID(%q) = %v, want ErrInvalidID", tt.in, err)
			}
		})
	}
}

func TestValidationErrorMessages(t *testing.T) {
	v := &ValidationError{}
	if v.orNil() != nil {
		t.Fatal("an empty ValidationError must be nil")
	}
	v.add("data.title", "must be at most %d characters", 300)
	v.add("data.parties", "is required")
	msg := v.Error()
	for _, want := range []string{"data.title", "300", "data.parties"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	m := &MalformedError{Fields: []FieldError{{Field: "data", Message: "must be a JSON object"}}}
	if !strings.Contains(m.Error(), "data") {
		t.Errorf("message %q lacks the field", m.Error())
	}
	if !slices.Contains(kindNames(), "meeting") {
		t.Error("kindNames lacks meeting")
	}
}

// TestRepeatedNames: the library refuses repeated names, also when an
// escape spells the second one differently; the error names the member.
func TestRepeatedNames(t *testing.T) {
	for _, raw := range []string{`{"note":"a","note":"b"}`, `{"note":"a","\u006eote":"b"}`,
		`{"note":{"a":1,"a":2},"note":"b"}`} {
		var bad *MalformedError
		if _, err := decodeObject([]byte(raw)); !errors.As(err, &bad) || len(bad.Fields) != 1 ||
			bad.Fields[0] != (FieldError{Field: "data.note", Message: "appears more than once"}) {
			t.Errorf("decodeObject(%s) = %v, want data.note appears more than once", raw, err)
		}
	}
	// A name repeated deeper is left to the member's own check.
	if m, err := decodeObject([]byte(`{"note":"a","extra":{"a":1,"a":2}}`)); err != nil || len(m) != 2 {
		t.Errorf("decodeObject with a nested repeat = %v, %v; want both members", m, err)
	}
}

// CheckID and unmarshalString are the allocation-free forms of what
// uuid.Parse with a round trip, and json.Unmarshal into a string, decided.
func TestFastPathsAgreeWithTheLibraries(t *testing.T) {
	for _, s := range []string{
		"01a21734-82a4-77f1-8320-a3edaffce7f9", "01A21734-82A4-77F1-8320-A3EDAFFCE7F9",
		"01a21734-82a4-77f1-8320-a3edaffce7f", "01a21734x82a4-77f1-8320-a3edaffce7f9",
		"{01a21734-82a4-77f1-8320-a3edaffce7}", "urn:uuid:01a21734-82a4-77f1-8320-a3e",
		"01a2173482a477f18320a3edaffce7f9", "01a21734-82a4-77f1-8320-a3edaffce7g9", "",
		"01a21734-82a4-77f1-8320-a3edaffce7f9\n"[:36],
	} {
		u, err := uuid.Parse(s)
		want := err == nil && u.String() == s
		if got := CheckID(s) == nil; got != want {
			t.Errorf("CheckID(%q) ok = %v, want %v", s, got, want)
		}
	}
	for _, raw := range []string{`"plain"`, `""`, `"with \"escape\""`, `"tab\there"`, "\"raw\ttab\"",
		"\"\xff\xfe\"", `"é ü"`, `"\u00e9"`, `1`, `null`, `["x"]`, `"unterminated`} {
		var got, want string
		gotErr := unmarshalString(json.RawMessage(raw), &got)
		wantErr := json.Unmarshal([]byte(raw), &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%s: error %v, encoding/json %v", raw, gotErr, wantErr)
			continue
		}
		// encoding/json replaces invalid UTF-8; both are refused by checkText alike.
		if gotErr == nil && got != want && checkText(got, 100, true) != checkText(want, 100, true) {
			t.Errorf("%s: %q, encoding/json %q", raw, got, want)
		}
	}
}

// TestListDecodesAsEncodingJSONDid: list decodes with json v2; what it
// accepts and refuses is what encoding/json did (invalid UTF-8, which
// encoding/json replaced, is refused by checkText alike).
func TestListDecodesAsEncodingJSONDid(t *testing.T) {
	for _, raw := range []string{`["IOM","WHO"]`, `[]`, `[null]`, `["a",null]`, `[1]`, `"IOM"`, `{}`, `[["a"]]`,
		`["\u00e9"]`, `["\ud800"]`, "[\"\xff\"]", `[" IOM ","iom"]`, `["a\tb"]`, `[ "x" , "y" ]`, `[true]`,
		`["\"q\""]`, `null`} {
		var want []string
		wantErr := json.Unmarshal([]byte(raw), &want)
		got, problem, malformed := list(MaxListEntries, MaxEntry, 0)(json.RawMessage(raw))
		if malformed != (wantErr != nil) {
			t.Errorf("%s: malformed %v, encoding/json %v", raw, malformed, wantErr)
			continue
		}
		if malformed {
			continue
		}
		wantProblem := ""
		for i, it := range want {
			if p := checkText(strings.TrimSpace(it), MaxEntry, false); p != "" {
				wantProblem = fmt.Sprintf("entry %d %s", i, p)
				break
			}
		}
		if wantProblem != "" || problem != "" {
			if !strings.HasPrefix(problem, wantProblem) || wantProblem == "" && !strings.Contains(problem, "repeats") {
				t.Errorf("%s: %q, with encoding/json %q", raw, problem, wantProblem)
			}
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(want) && !(len(want) == 0 && fmt.Sprint(got) == "[]") {
			t.Errorf("%s: %q, encoding/json %q", raw, got, want)
		}
	}
}
