package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Limits on event data. They keep one engagement's state and one event small.
const (
	MaxTitle       = 300
	MaxText        = 10_000
	MaxShortText   = 200
	MaxReason      = 2_000
	MaxListEntries = 50
	MaxEntry       = 100
	MinYear        = 1900
	MaxYear        = 2199
)

// DateLayout is the layout of date fields such as signed_on.
const DateLayout = "2006-01-02"

// parser checks one field's raw JSON. It returns the normalised value, or a
// problem; malformed is true when the JSON type itself is wrong (400, not 422).
type parser func(raw json.RawMessage) (value any, problem string, malformed bool)

type fieldSpec struct {
	name     string
	required bool
	parse    parser
}

// schemas describe the data of every event type except engagement.corrected,
// whose fields depend on the event it corrects.
var schemas = map[EventType][]fieldSpec{
	EngagementRecorded: {
		{"kind", true, enum(kindNames()...)},
		{"title", true, text(MaxTitle, false)},
		{"parties", true, list(MaxListEntries, MaxEntry, 1)},
		{"description", false, text(MaxText, true)},
		{"tags", false, list(MaxListEntries, MaxEntry, 0)},
		{"instrument", false, enum(Instruments...)},
		{"level", false, text(MaxEntry, false)},
		{"location", false, text(MaxShortText, false)},
	},
	EngagementAmended: {
		{"title", false, text(MaxTitle, false)},
		{"parties", false, list(MaxListEntries, MaxEntry, 1)},
		{"description", false, text(MaxText, true)},
		{"tags", false, list(MaxListEntries, MaxEntry, 0)},
		{"instrument", false, enum(Instruments...)},
		{"level", false, text(MaxEntry, false)},
		{"location", false, text(MaxShortText, false)},
	},
	EngagementLinked: {
		{"target_id", true, uuidText},
		{"relation", true, enum(Relations...)},
	},
	EngagementNoted: {
		{"note", true, text(MaxText, true)},
	},
	AgreementSigned: {
		{"signed_on", true, date},
		{"expires_on", false, date},
	},
	AgreementRenewed: {
		{"renewed_on", true, date},
		{"expires_on", false, date},
	},
	AgreementTerminated: {
		{"reason", true, text(MaxReason, true)},
	},
	PolicyContributed: {
		{"contribution", true, text(MaxReason, true)},
		{"role", true, text(MaxShortText, false)},
	},
	PolicyAdopted: {
		{"adopted_by", true, text(MaxShortText, false)},
	},
	PolicyCommitted: {
		{"commitment", true, text(MaxReason, true)},
	},
	InitiativeJoined: {
		{"role", true, text(MaxShortText, false)},
	},
	InitiativeRoleChanged: {
		{"role", true, text(MaxShortText, false)},
	},
	InitiativeLeft: {
		{"reason", false, text(MaxReason, true)},
	},
	MeetingScheduled: {
		{"starts_on", true, date},
		{"location", false, text(MaxShortText, false)},
	},
	MeetingAttended: {
		{"role", true, enum(AttendanceRoles...)},
		{"delegation", false, text(MaxReason, true)},
	},
	MeetingConcluded: {
		{"outcome", false, text(MaxReason, true)},
	},
}

// correctionSpecs are the fields of engagement.corrected itself; the
// corrected fields come from the schema of the corrected event's type.
var correctionSpecs = []fieldSpec{
	{"corrects", true, uuidText},
	{"reason", true, text(MaxReason, true)},
}

func kindNames() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = string(k)
	}
	return out
}

// decodeObject splits a JSON object into its fields. Null or empty data is an
// empty object.
func decodeObject(raw json.RawMessage) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return map[string]json.RawMessage{}, nil
	}
	if raw[0] != '{' {
		return nil, &MalformedError{Fields: []FieldError{{Field: "data", Message: "must be a JSON object"}}}
	}
	// json/v2 splits an object about twice as fast as encoding/json; the
	// options keep encoding/json's leniency here (repeated names are
	// reported below by name, invalid UTF-8 by the field's own check).
	var m map[string]json.RawMessage
	if err := jsonv2.Unmarshal(raw, &m, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)); err != nil {
		return nil, &MalformedError{Fields: []FieldError{{Field: "data", Message: "is not valid JSON: " + err.Error()}}}
	}
	if len(m) == topLevelMembers(raw) {
		// No name repeats (this count is cheap; duplicateKey is not).
	} else if key, ok := duplicateKey(raw); ok {
		// json.Unmarshal keeps the last value silently; another reader may keep the first.
		return nil, &MalformedError{Fields: []FieldError{{Field: "data." + truncate(key, 64), Message: "appears more than once"}}}
	}
	for k, v := range m {
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			delete(m, k) // an explicit null is the same as leaving the field out
		}
	}
	return m, nil
}

// topLevelMembers counts the members of the JSON object raw, which must be
// valid JSON: names that decode the same count twice.
func topLevelMembers(raw []byte) int {
	depth, n := 0, 0
	inString, expectName := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped character cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if depth == 1 && expectName {
				n++
				expectName = false
			}
		case '{':
			depth++
			expectName = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			expectName = depth == 1
		}
	}
	return n
}

// duplicateKey finds a key that appears twice in the JSON object raw, which
// must be valid JSON.
func duplicateKey(raw json.RawMessage) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return "", false
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		key, _ := tok.(string)
		if seen[key] {
			return key, true
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return "", false
		}
	}
	return "", false
}

// parseFields checks fields against specs. Unknown fields and wrong types are
// malformed (400); missing or out-of-range values are validation errors (422).
// It returns the normalised fields.
func parseFields(prefix string, fields map[string]json.RawMessage, specs []fieldSpec, extra map[string]bool) (map[string]any, error) {
	out := make(map[string]any, len(fields))
	var bad MalformedError
	var invalid ValidationError
	for name := range fields {
		if extra[name] {
			continue
		}
		if !slices.ContainsFunc(specs, func(s fieldSpec) bool { return s.name == name }) {
			bad.Fields = append(bad.Fields, FieldError{Field: prefix + truncate(name, 64), Message: "unknown field"})
		}
	}
	for _, s := range specs {
		raw, ok := fields[s.name]
		if !ok {
			if s.required {
				invalid.add(prefix+s.name, "is required")
			}
			continue
		}
		v, problem, malformed := s.parse(raw)
		switch {
		case malformed:
			bad.Fields = append(bad.Fields, FieldError{Field: prefix + s.name, Message: problem})
		case problem != "":
			invalid.add(prefix+s.name, "%s", problem)
		default:
			out[s.name] = v
		}
	}
	if len(bad.Fields) > 0 {
		sortFields(bad.Fields)
		return nil, &bad
	}
	if err := invalid.orNil(); err != nil {
		return nil, err
	}
	return out, nil
}

func sortFields(f []FieldError) {
	slices.SortFunc(f, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
}

// text accepts a non-empty string of at most max characters, trimmed.
// Multi-line text may hold newlines and tabs; other control characters are
// never accepted.
func text(max int, multiline bool) parser {
	return func(raw json.RawMessage) (any, string, bool) {
		var s string
		if err := unmarshalString(raw, &s); err != nil {
			return nil, "must be a string", true
		}
		s = strings.TrimSpace(s)
		if p := checkText(s, max, multiline); p != "" {
			return nil, p, false
		}
		return s, "", false
	}
}

func checkText(s string, max int, multiline bool) string {
	if s == "" {
		return "must not be empty"
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError) {
		return "must be valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("must be at most %d characters (got %d)", max, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			return "must not contain control characters"
		}
	}
	return ""
}

// list accepts an array of distinct non-empty strings.
func list(maxItems, maxLen, minItems int) parser {
	return func(raw json.RawMessage) (any, string, bool) {
		var items []string
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, "must be an array of strings", true
		}
		if len(items) < minItems {
			return nil, fmt.Sprintf("must have at least %d entry", minItems), false
		}
		if len(items) > maxItems {
			return nil, fmt.Sprintf("must have at most %d entries (got %d)", maxItems, len(items)), false
		}
		out := make([]string, 0, len(items))
		seen := make(map[string]bool, len(items))
		for i, it := range items {
			it = strings.TrimSpace(it)
			if p := checkText(it, maxLen, false); p != "" {
				return nil, fmt.Sprintf("entry %d %s", i, p), false
			}
			key := strings.ToLower(it)
			if seen[key] {
				return nil, fmt.Sprintf("entry %d repeats %q", i, it), false
			}
			seen[key] = true
			out = append(out, it)
		}
		return out, "", false
	}
}

// enum accepts one of values.
func enum(values ...string) parser {
	return func(raw json.RawMessage) (any, string, bool) {
		var s string
		if err := unmarshalString(raw, &s); err != nil {
			return nil, "must be a string", true
		}
		if !slices.Contains(values, s) {
			return nil, "must be one of " + strings.Join(values, ", "), false
		}
		return s, "", false
	}
}

// date accepts YYYY-MM-DD between MinYear and MaxYear.
func date(raw json.RawMessage) (any, string, bool) {
	var s string
	if err := unmarshalString(raw, &s); err != nil {
		return nil, "must be a date string (YYYY-MM-DD)", true
	}
	if _, err := ParseDate(s); err != nil {
		return nil, err.Error(), false
	}
	return s, "", false
}

// ParseDate parses YYYY-MM-DD and checks the year is within MinYear..MaxYear.
func ParseDate(s string) (time.Time, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be a date as YYYY-MM-DD")
	}
	if t.Year() < MinYear || t.Year() > MaxYear {
		return time.Time{}, fmt.Errorf("year must be between %d and %d", MinYear, MaxYear)
	}
	return t, nil
}

// uuidText accepts a UUID in canonical lower-case form.
func uuidText(raw json.RawMessage) (any, string, bool) {
	var s string
	if err := unmarshalString(raw, &s); err != nil {
		return nil, "must be a string", true
	}
	if err := CheckID(s); err != nil {
		return nil, "must be a UUID in lower-case canonical form", false
	}
	return s, "", false
}

// CheckID reports whether s is a UUID in canonical lower-case form, the only
// form of id that may become part of a NATS subject. (Every event is checked
// several times on its way, so this allocates nothing.)
func CheckID(s string) error {
	if len(s) != 36 {
		return fmt.Errorf("%w: %q is not a UUID", ErrInvalidID, truncate(s, 40))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return fmt.Errorf("%w: %q is not a UUID", ErrInvalidID, truncate(s, 40))
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return fmt.Errorf("%w: %q is not a UUID", ErrInvalidID, truncate(s, 40))
			}
		}
	}
	return nil
}

// unmarshalString decodes the JSON string raw into s. A string without
// escapes or control characters (nearly all) is taken as it is, without
// encoding/json's reflection; anything else goes through encoding/json.
func unmarshalString(raw json.RawMessage, s *string) error {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		plain := true
		for _, c := range raw[1 : n-1] {
			if c == '\\' || c == '"' || c < 0x20 {
				plain = false
				break
			}
		}
		if plain {
			*s = string(raw[1 : n-1])
			return nil
		}
	}
	return json.Unmarshal(raw, s)
}
