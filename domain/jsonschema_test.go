package domain_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/iom-who/engagements/domain"
)

// TestDataJSONSchemas: every type's schema compiles as draft 2020-12, and
// it says what the spec says (a sample of accepted and refused data).
func TestDataJSONSchemas(t *testing.T) {
	compile := func(t *testing.T, typ domain.EventType, v int) *jsonschema.Schema {
		t.Helper()
		b, ok := domain.DataJSONSchema(typ, v)
		if !ok {
			t.Fatalf("no schema for %s v%d", typ, v)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		url := "urn:test:" + string(typ)
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile(url)
		if err != nil {
			t.Fatalf("%s v%d: %v", typ, v, err)
		}
		return s
	}
	for _, typ := range domain.EventTypes {
		for v := 1; v <= domain.SchemaVersion(typ); v++ {
			compile(t, typ, v)
		}
		if _, ok := domain.DataJSONSchema(typ, domain.SchemaVersion(typ)+1); ok {
			t.Errorf("%s has a schema for a version it never had", typ)
		}
	}
	if _, ok := domain.DataJSONSchema("agreement.torn_up", 1); ok {
		t.Error("an unknown type has a schema")
	}

	tests := []struct {
		name string
		typ  domain.EventType
		data string
		ok   bool
	}{
		{"a recorded agreement", domain.EngagementRecorded, `{"kind":"agreement","title":"MOU","parties":["IOM","WHO"]}`, true},
		{"a recorded policy without its instrument", domain.EngagementRecorded, `{"kind":"policy","title":"P","parties":["WHO"]}`, false},
		{"a recorded policy", domain.EngagementRecorded, `{"kind":"policy","title":"P","parties":["WHO"],"instrument":"framework"}`, true},
		{"an unknown kind", domain.EngagementRecorded, `{"kind":"treaty","title":"T","parties":["IOM"]}`, false},
		{"no parties", domain.EngagementRecorded, `{"kind":"agreement","title":"MOU","parties":[]}`, false},
		{"a title too long", domain.EngagementRecorded, `{"kind":"agreement","title":"` + strings.Repeat("a", domain.MaxTitle+1) + `","parties":["IOM"]}`, false},
		{"an unknown member", domain.AgreementSigned, `{"signed_on":"2020-01-01","by":"x"}`, false},
		{"a date that is no date", domain.AgreementSigned, `{"signed_on":"2020-02-30"}`, false},
		{"a link", domain.EngagementLinked, `{"target_id":"0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a01","relation":"supersedes"}`, true},
		{"a link to an upper-case id", domain.EngagementLinked, `{"target_id":"0193A5B2-7C3D-7E4F-8A9B-0C1D2E3F4A01","relation":"supersedes"}`, false},
		{"a correction", domain.EngagementCorrected, `{"corrects":"0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a01","reason":"typo","fields":{"title":"T"}}`, true},
		{"a correction with no corrected field", domain.EngagementCorrected, `{"corrects":"0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a01","reason":"typo","fields":{}}`, false},
		{"a correction without fields", domain.EngagementCorrected, `{"corrects":"0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a01","reason":"typo"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := compile(t, tt.typ, domain.SchemaVersion(tt.typ))
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(inst); (err == nil) != tt.ok {
				t.Errorf("%s: Validate(%s) = %v, want ok %v", tt.typ, tt.data, err, tt.ok)
			}
		})
	}
}
