package domain

import (
	"encoding/json"
	"testing"
)

func TestCorrectionV2CorrectsATerminationReason(t *testing.T) {
	e, history := build(t, KindAgreement,
		step{typ: AgreementSigned, data: obj{"signed_on": "2019-01-01"}},
		step{typ: AgreementTerminated, data: obj{"reason": "superseeded"}})
	terminated := history[2]
	ev := mustApply(t, e, newEvent(t, e, EngagementCorrected,
		obj{"corrects": terminated.ID, "reason": "spelling", "fields": obj{"reason": "superseded"}}))
	if e.v.TerminationReason != "superseded" {
		t.Errorf("termination reason = %q, want superseded", e.v.TerminationReason)
	}
	var stored map[string]json.RawMessage
	if err := json.Unmarshal(ev.Data, &stored); err != nil {
		t.Fatal(err)
	}
	if string(stored["fields"]) != `{"reason":"superseded"}` || string(stored["reason"]) != `"spelling"` {
		t.Errorf("stored data = %s, want the v2 shape", ev.Data)
	}
}

func TestV1CorrectionInputIsStoredAsV2(t *testing.T) {
	e, history := record(t, KindAgreement)
	ev, err := e.Decide(newEvent(t, e, EngagementCorrected, obj{"corrects": history[0].ID, "reason": "typo", "title": "Fixed"}))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Fields map[string]string `json:"fields"`
		Title  *string           `json:"title"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Fields["title"] != "Fixed" || d.Title != nil {
		t.Errorf("normalised data = %s", ev.Data)
	}
}

func TestDataSchemas(t *testing.T) {
	tests := []struct {
		in      string
		typ     EventType
		version int
		ok      bool
	}{
		{"/schemas/agreement.renewed/v1", AgreementRenewed, 1, true},
		{"/schemas/engagement.corrected/v1", EngagementCorrected, 1, true},
		{"/schemas/engagement.corrected/v2", EngagementCorrected, 2, true},
		{"/schemas/engagement.corrected/v3", "", 0, false},
		{"/schemas/agreement.renewed/v0", "", 0, false},
		{"/schemas/agreement.bogus/v1", "", 0, false},
		{"agreement.renewed/v1", "", 0, false},
		{"/schemas/agreement.renewed/vx", "", 0, false},
		{"urn:engagements:schema:agreement.renewed:v1", AgreementRenewed, 1, true},
		{"urn:engagements:schema:engagement.corrected:v2", EngagementCorrected, 2, true},
		{"urn:engagements:schema:engagement.corrected:v3", "", 0, false},
		{"urn:engagements:schema:agreement.renewed/v1", "", 0, false},
		{"urn:other:schema:agreement.renewed:v1", "", 0, false},
		{"https://tracker.example.org/schemas/agreement.renewed/v1", AgreementRenewed, 1, true},
		{"http://localhost:8080/tracker/schemas/engagement.corrected/v1", EngagementCorrected, 1, true},
		{"https://tracker.example.org/schemas/agreement.bogus/v1", "", 0, false},
		{"ftp://tracker.example.org/schemas/agreement.renewed/v1", "", 0, false},
		{"https://tracker.example.org?q=/schemas/agreement.renewed/v1", "", 0, false},
		{"tracker.example.org/schemas/agreement.renewed/v1", "", 0, false},
	}
	for _, tt := range tests {
		typ, v, err := ParseDataSchema(tt.in)
		if (err == nil) != tt.ok || typ != tt.typ || v != tt.version {
			t.Errorf("ParseDataSchema(%q) = %s %d %v", tt.in, typ, v, err)
		}
	}
	if got := SchemaPath(EngagementCorrected); got != "/schemas/engagement.corrected/v2" {
		t.Errorf("SchemaPath(corrected) = %q", got)
	}
	if got := DataSchema("", AgreementRenewed); got != "urn:engagements:schema:agreement.renewed:v2" {
		t.Errorf("DataSchema(no base, renewed) = %q", got)
	}
	if got := DataSchema("https://tracker.example.org", AgreementRenewed); got != "https://tracker.example.org/schemas/agreement.renewed/v2" {
		t.Errorf("DataSchema(base, renewed) = %q", got)
	}
	if _, err := Upcast(AgreementSigned, 2, json.RawMessage(`{}`)); err == nil {
		t.Error("Upcast from a future version succeeded")
	}
}
