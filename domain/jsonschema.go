package domain

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// JSONSchemaDialect is the JSON Schema draft DataJSONSchema writes.
const JSONSchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// DataJSONSchema is the JSON Schema (draft 2020-12) of version v of t's
// data, generated from t's spec: the one definition the service validates
// with. It is what a dataschema names (served at SchemaPath). ok is false
// for an unknown type or version.
//
// The schema says what every stored event's data is; the domain checks more
// than a schema can (dates within MinYear..MaxYear, lists without entries
// repeated in another case, the transitions): data the service stored always
// validates, data that validates may still be refused.
func DataJSONSchema(t EventType, v int) (schema []byte, ok bool) {
	s, ok := dataSchemas[schemaKey{t, v}]
	return s, ok
}

type schemaKey struct {
	t EventType
	v int
}

// dataSchemas holds every type's schemas, generated once at init.
var dataSchemas = func() map[schemaKey][]byte {
	m := make(map[schemaKey][]byte)
	for _, t := range EventTypes {
		for v := 1; v <= SchemaVersion(t); v++ {
			b, err := json.MarshalIndent(dataJSONSchema(specByTypeInit(t), v), "", "  ")
			if err != nil {
				panic(fmt.Sprintf("domain: JSON Schema of %s v%d: %v", t, v, err)) // a programming error, caught by every test
			}
			m[schemaKey{t, v}] = b
		}
	}
	return m
}()

// specByTypeInit finds t's spec before init has indexed them (package
// variables are initialised before init runs).
func specByTypeInit(t EventType) *Spec {
	for i := range specs {
		if specs[i].Type == t {
			return &specs[i]
		}
	}
	panic("domain: event type " + string(t) + " has no spec") // a programming error, caught by every test
}

// dataJSONSchema builds the schema of version v of s's data.
func dataJSONSchema(s *Spec, v int) map[string]any {
	props := make(map[string]any, len(s.Fields)+1)
	required := []string{}
	var conditions []any
	for i := range s.Fields {
		f := &s.Fields[i]
		props[f.Name] = fieldJSONSchema(f)
		switch {
		case f.Required && f.OnlyFor == "":
			required = append(required, f.Name)
		case f.Required && s.Type == EngagementRecorded:
			// Required of one kind only: engagement.recorded's data names it.
			conditions = append(conditions, map[string]any{
				"if":   map[string]any{"properties": map[string]any{"kind": map[string]any{"const": string(f.OnlyFor)}}},
				"then": map[string]any{"required": []string{f.Name}},
			})
		}
	}
	out := map[string]any{
		"$schema":    JSONSchemaDialect,
		"title":      string(s.Type) + " data, version " + strconv.Itoa(v),
		"type":       "object",
		"properties": props,
		"required":   required,
	}
	if len(conditions) > 0 {
		out["allOf"] = conditions
	}
	switch {
	case s.Type == AgreementRenewed && v == 1:
		delete(props, "notice_days")
		delete(props, "term")
		out["description"] = "Without expires_on the agreement became open-ended; readers upcast v1 to v2 " +
			`(term "open-ended").`
		out["additionalProperties"] = false
	case s.Type == EngagementCorrected && v == 1:
		// v1 carried the corrected fields beside corrects and reason.
		out["description"] = "The corrected fields sit beside corrects and reason; readers upcast v1 to v2."
		out["additionalProperties"] = true
	case s.Type == EngagementCorrected:
		props[correctedFields] = map[string]any{
			"type":          "object",
			"minProperties": 1,
			"description": "The corrected fields: members of the corrected event's type's data, " +
				"each valid as that type's schema says.",
		}
		out["required"] = append(required, correctedFields)
		out["additionalProperties"] = false
	default:
		out["additionalProperties"] = false
	}
	return out
}

// uuidPattern is a UUID in the lower-case canonical form CheckID accepts.
const uuidPattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

// fieldJSONSchema is the schema of one field's value as stored.
func fieldJSONSchema(f *Field) map[string]any {
	var s map[string]any
	switch {
	case f.Input == InputSelect:
		s = map[string]any{"type": "string", "enum": f.Options}
	case f.Input == InputDate:
		// A day, or a month or year when the record knows no more.
		s = map[string]any{"type": "string", "anyOf": []any{
			map[string]any{"format": "date", "pattern": `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`},
			map[string]any{"pattern": `^[0-9]{4}(-(0[1-9]|1[0-2]))?$`},
		}}
	case f.Input == InputNumber:
		s = map[string]any{"type": "integer", "minimum": f.Min, "maximum": f.Max}
	case f.Input == InputList:
		s = map[string]any{"type": "array", "uniqueItems": true, "maxItems": MaxListEntries,
			"items": map[string]any{"type": "string", "minLength": 1, "maxLength": f.Max}}
		if f.MinItems > 0 {
			s["minItems"] = f.MinItems
		}
	case f.Name == "action_id":
		s = map[string]any{"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}
	case f.Max > 0:
		s = map[string]any{"type": "string", "minLength": 1, "maxLength": f.Max}
	default: // an id: corrects, target_id
		s = map[string]any{"type": "string", "format": "uuid", "pattern": uuidPattern}
	}
	if f.Label != "" {
		s["title"] = f.Label
	}
	if f.Hint != "" {
		s["description"] = f.Hint
	}
	if f.OnlyFor != "" {
		s["description"] = joinHint(s["description"], "Only for a "+string(f.OnlyFor)+".")
	}
	return s
}

func joinHint(hint any, more string) string {
	if h, ok := hint.(string); ok && h != "" {
		return h + ". " + more
	}
	return more
}
