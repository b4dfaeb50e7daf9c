package domain

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// TestDataMatchesFields: every spec's data struct has exactly its fields as
// members, required ones plain and the others omitzero (init refuses a
// drift; this says which).
func TestDataMatchesFields(t *testing.T) {
	for _, s := range Specs() {
		if err := checkData(s); err != nil {
			t.Error(err)
		}
	}
}

// TestCheckDataFindsDrift: each way a struct can drift from its fields is
// caught.
func TestCheckDataFindsDrift(t *testing.T) {
	signed, _ := SpecOf(AgreementSigned)
	tests := []struct {
		name string
		data reflect.Type
	}{
		{"a field missing", reflect.TypeFor[struct {
			SignedOn string `json:"signed_on"`
		}]()},
		{"a member the spec lacks", reflect.TypeFor[struct {
			SignedOn  string `json:"signed_on"`
			ExpiresOn string `json:"expires_on,omitzero"`
			Note      string `json:"note,omitzero"`
		}]()},
		{"a required field omitzero", reflect.TypeFor[struct {
			SignedOn  string `json:"signed_on,omitzero"`
			ExpiresOn string `json:"expires_on,omitzero"`
		}]()},
		{"an optional field plain", reflect.TypeFor[struct {
			SignedOn  string `json:"signed_on"`
			ExpiresOn string `json:"expires_on"`
		}]()},
		{"a misspelt name", reflect.TypeFor[struct {
			SignedOn  string `json:"signedOn"`
			ExpiresOn string `json:"expires_on,omitzero"`
		}]()},
		{"a member without a JSON name", reflect.TypeFor[struct {
			SignedOn  string
			ExpiresOn string `json:"expires_on,omitzero"`
		}]()},
		{"a wrong Go type", reflect.TypeFor[struct {
			SignedOn  []string `json:"signed_on"`
			ExpiresOn string   `json:"expires_on,omitzero"`
		}]()},
		{"not a struct", reflect.TypeFor[string]()},
		{"no data", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := *signed
			s.Data = tt.data
			if err := checkData(&s); err == nil {
				t.Errorf("checkData accepts %v for %v", tt.data, fieldNamesOf(s.Fields))
			}
		})
	}
	t.Run("a correction without its corrected fields", func(t *testing.T) {
		s, _ := SpecOf(EngagementCorrected)
		c := *s
		c.Data = reflect.TypeFor[struct {
			Corrects string `json:"corrects"`
			Reason   string `json:"reason"`
		}]()
		if err := checkData(&c); err == nil {
			t.Error("checkData accepts a correction without fields")
		}
	})
}

func fieldNamesOf(fields []Field) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.Name
	}
	return out
}

// TestDecodeDataRefuses: the strict decoder refuses what the struct does not
// describe, naming the member as Decide does.
func TestDecodeDataRefuses(t *testing.T) {
	tests := []struct {
		name    string
		typ     EventType
		data    string
		field   string
		message string
	}{
		{"an unknown member", AgreementSigned, `{"signed_on":"2020-01-15","colour":"blue"}`, "data.colour", "unknown field"},
		{"a member in another case", AgreementSigned, `{"signedOn":"2020-01-15"}`, "data.signedOn", "unknown field"},
		{"a repeated name", EngagementNoted, `{"note":"a","note":"b"}`, "data.note", "appears more than once"},
		{"a repeated name inside the corrected fields", EngagementCorrected,
			`{"corrects":"` + otherID + `","reason":"typo","fields":{"title":"a","title":"b"}}`, "data.fields.title", "appears more than once"},
		{"a number for a text", EngagementNoted, `{"note":1}`, "data.note", "must be a string"},
		{"a number for a date", AgreementSigned, `{"signed_on":20200115}`, "data.signed_on", "must be a date string (YYYY-MM-DD)"},
		{"a text for a list", EngagementRecorded, `{"kind":"mou","title":"t","parties":"IOM"}`, "data.parties", "must be an array of strings"},
		{"a number in a list", EngagementAmended, `{"tags":["a",2]}`, "data.tags", "must be an array of strings"},
		{"corrected fields that are not an object", EngagementCorrected,
			`{"corrects":"` + otherID + `","reason":"typo","fields":["title"]}`, "data.fields", "must be a JSON object"},
		{"data that is not an object", EngagementNoted, `["note"]`, "data", "must be a JSON object"},
		{"data cut short", EngagementNoted, `{"note":`, "data.note", "is not valid JSON"},
		{"data that is not JSON", EngagementNoted, `{note}`, "data", "is not valid JSON"},
		{"data after the object", EngagementNoted, `{"note":"a"} {}`, "data", "is not valid JSON"},
		{"invalid UTF-8", EngagementNoted, "{\"note\":\"bad \xff byte\"}", "data.note", "is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := SpecOf(tt.typ)
			v, err := s.Decode([]byte(tt.data))
			var m *MalformedError
			if !errors.As(err, &m) {
				t.Fatalf("Decode(%s) = %+v, %v; want a *MalformedError", tt.data, v, err)
			}
			if len(m.Fields) != 1 || m.Fields[0].Field != tt.field || !strings.HasPrefix(m.Fields[0].Message, tt.message) {
				t.Errorf("Decode(%s): %v, want %s: %s", tt.data, err, tt.field, tt.message)
			}
		})
	}
}

// TestDecodeData: the typed decoder reads a type's data into its struct, and
// only into that one.
func TestDecodeData(t *testing.T) {
	ev := Event{Type: EngagementLinked, Data: []byte(`{"target_id":"` + otherID + `","relation":"references"}`)}
	d, err := DecodeData[LinkedData](ev)
	if err != nil || d != (LinkedData{TargetID: otherID, Relation: "references"}) {
		t.Errorf("DecodeData[LinkedData] = %+v, %v", d, err)
	}
	if _, err := DecodeData[NotedData](ev); err == nil {
		t.Error("DecodeData[NotedData] of a link: no error")
	}
	if _, err := DecodeData[NotedData](Event{Type: "engagement.frobbed", Data: []byte(`{}`)}); !errors.Is(err, ErrUnknownEventType) {
		t.Errorf("DecodeData of an unknown type: %v, want ErrUnknownEventType", err)
	}
	c, err := DecodeData[CorrectedData](Event{Type: EngagementCorrected,
		Data: []byte(`{"corrects":"` + otherID + `","reason":"typo","fields":{"title":"Fixed"}}`)})
	if err != nil || c.Corrects != otherID || c.Reason != "typo" || string(c.Fields) != `{"title":"Fixed"}` {
		t.Errorf("DecodeData[CorrectedData] = %+v, %v", c, err)
	}
	if n, err := DecodeData[LeftData](Event{Type: InitiativeLeft, Data: []byte(" null ")}); err != nil || n != (LeftData{}) {
		t.Errorf("DecodeData of null data = %+v, %v; want the zero value", n, err)
	}
}

// TestDecideOutputDecodes: what Decide stores for every type's sample data,
// and for a correction of every type, decodes strictly into the type's
// struct with the same values.
func TestDecideOutputDecodes(t *testing.T) {
	for _, typ := range EventTypes {
		if typ == EngagementCorrected {
			continue
		}
		t.Run(string(typ), func(t *testing.T) {
			e := stateFor(t, typ)
			ev, err := e.Decide(newEvent(t, e, typ, sampleData(typ)))
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			v := decodesStrictly(t, ev)
			if !sameMembers(t, v, sampleData(typ)) {
				t.Errorf("decoded %+v from %s, want the sample %v", v, ev.Data, sampleData(typ))
			}
			if err := e.Apply(ev); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if s, _ := SpecOf(typ); s.System {
				return // a reminder is not corrected: TestReminderRules
			}
			fix := obj{"corrects": ev.ID, "reason": "typo", "fields": sampleData(typ)}
			if typ == EngagementRecorded {
				fix["fields"] = obj{"title": "Fixed"}
			}
			c, err := e.Decide(newEvent(t, e, EngagementCorrected, fix))
			if s, _ := SpecOf(typ); s.Upload || s.Erasure {
				invalid("data.corrects")(t, err) // an attached document is superseded, an erasure stands
				return
			}
			if err != nil {
				t.Fatalf("Decide correction: %v", err)
			}
			cd := decodesStrictly(t, c).(CorrectedData)
			if cd.Corrects != ev.ID || cd.Reason != "typo" || cd.Fields.Kind() != '{' {
				t.Errorf("decoded correction %+v from %s", cd, c.Data)
			}
		})
	}
}

// decodesStrictly decodes ev's data with its spec, failing t if it does not.
func decodesStrictly(t testing.TB, ev Event) any {
	t.Helper()
	s, ok := SpecOf(ev.Type)
	if !ok {
		t.Fatalf("no spec for %s", ev.Type)
	}
	v, err := s.Decode(ev.Data)
	if err != nil {
		t.Fatalf("stored %s data %s does not decode strictly: %v", ev.Type, ev.Data, err)
	}
	if reflect.TypeOf(v) != s.Data {
		t.Fatalf("Decode gave a %T, want a %v", v, s.Data)
	}
	return v
}

// sameMembers reports whether the struct v holds want's members.
func sameMembers(t testing.TB, v any, want obj) bool {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
		w, ok := want[name]
		switch got := rv.Field(i).Interface().(type) {
		case string:
			if ok && got != w || !ok && got != "" {
				return false
			}
		case []string:
			if ws, _ := w.([]string); !slices.Equal(got, ws) {
				return false
			}
		case int:
			if wi, _ := w.(int); got != wi {
				return false
			}
		case int64:
			if wn, _ := w.(int); int64(wn) != got {
				return false
			}
		case jsontext.Value:
		default:
			t.Fatalf("member %s is a %T", name, got)
		}
	}
	return true
}

// TestUpcastCorrectionDecodes: a v1 correction, as readers get it after
// Upcast (eventstore/testdata/corrected-v1.json's data), decodes strictly.
func TestUpcastCorrectionDecodes(t *testing.T) {
	v1 := []byte(`{"corrects":"0193b0c0-0000-7000-8000-000000000001","reason":"typo in the title","title":"IOM–WHO Memorandum of Understanding"}`)
	data, err := Upcast(EngagementCorrected, 1, v1)
	if err != nil {
		t.Fatalf("Upcast: %v", err)
	}
	c, err := DecodeData[CorrectedData](Event{Type: EngagementCorrected, Data: data})
	if err != nil {
		t.Fatalf("DecodeData(%s): %v", data, err)
	}
	if c.Corrects != "0193b0c0-0000-7000-8000-000000000001" || c.Reason != "typo in the title" ||
		string(c.Fields) != `{"title":"IOM–WHO Memorandum of Understanding"}` {
		t.Errorf("decoded %+v", c)
	}
	if _, err := DecodeData[CorrectedData](Event{Type: EngagementCorrected, Data: v1}); err == nil {
		t.Error("a v1 correction decodes without Upcast: the struct would drop its fields")
	}
}
