package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
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

func kindNames() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = string(k)
	}
	return out
}

// decodeObject splits a JSON object into its members. Null or empty data is
// an empty object. The library refuses repeated names (json.Unmarshal would
// keep the last value silently; another reader may keep the first); invalid
// UTF-8 is left to each field's own check, which names the field (422).
func decodeObject(raw json.RawMessage) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return map[string]json.RawMessage{}, nil
	}
	if raw[0] != '{' {
		return nil, &MalformedError{Fields: []FieldError{{Field: "data", Message: "must be a JSON object"}}}
	}
	var m map[string]json.RawMessage
	if err := jsonv2.Unmarshal(raw, &m, jsontext.AllowInvalidUTF8(true)); err != nil {
		if !errors.Is(err, jsontext.ErrDuplicateName) {
			return nil, notJSON(err)
		}
		// Only a name repeated at the top level is refused here; deeper
		// repeats are left to the member's own check (its field may not
		// exist, or not take an object).
		m = nil
		if err := jsonv2.Unmarshal(raw, &m, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)); err != nil {
			return nil, notJSON(err)
		}
		if name, ok := repeatedName(raw); ok {
			return nil, &MalformedError{Fields: []FieldError{{Field: "data." + truncate(name, 64), Message: "appears more than once"}}}
		}
	}
	for k, v := range m {
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			delete(m, k) // an explicit null is the same as leaving the field out
		}
	}
	return m, nil
}

func notJSON(err error) error {
	return &MalformedError{Fields: []FieldError{{Field: "data", Message: "is not valid JSON: " + err.Error()}}}
}

// repeatedName is the first member name of the valid JSON object raw that
// repeats an earlier one (as decoded: escapes do not make names differ).
func repeatedName(raw []byte) (string, bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(raw), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if _, err := dec.ReadToken(); err != nil {
		return "", false
	}
	seen := make(map[string]bool)
	for dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			return "", false
		}
		name := tok.String()
		if seen[name] {
			return name, true
		}
		seen[name] = true
		if err := dec.SkipValue(); err != nil {
			return "", false
		}
	}
	return "", false
}

// parseFields checks fields against specs. Unknown fields and wrong types are
// malformed (400); missing or out-of-range values are validation errors (422).
// It returns the normalised fields.
func parseFields(prefix string, fields map[string]json.RawMessage, specs []Field) (map[string]any, error) {
	out := make(map[string]any, len(fields))
	var bad MalformedError
	var invalid ValidationError
	for name := range fields {
		if !slices.ContainsFunc(specs, func(s Field) bool { return s.Name == name }) {
			bad.Fields = append(bad.Fields, FieldError{Field: prefix + truncate(name, 64), Message: "unknown field"})
		}
	}
	for _, s := range specs {
		raw, ok := fields[s.Name]
		if !ok {
			if s.Required && s.OnlyFor == "" {
				invalid.add(prefix+s.Name, "is required")
			}
			continue
		}
		v, problem, malformed := s.parse(raw)
		switch {
		case malformed:
			bad.Fields = append(bad.Fields, FieldError{Field: prefix + s.Name, Message: problem})
		case problem != "":
			invalid.add(prefix+s.Name, "%s", problem)
		default:
			out[s.Name] = v
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
		if err := jsonv2.Unmarshal(raw, &items, jsontext.AllowInvalidUTF8(true)); err != nil {
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

// whole accepts a whole JSON number between min and max.
func whole(min, max int) parser {
	return func(raw json.RawMessage) (any, string, bool) {
		var n float64 // a JSON number, not a string of one
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, "must be a whole number", true
		}
		i := int(n)
		if float64(i) != n {
			return nil, "must be a whole number", false
		}
		if i < min || i > max {
			return nil, fmt.Sprintf("must be between %d and %d", min, max), false
		}
		return i, "", false
	}
}

// MaxActionID is the longest action_id.
const MaxActionID = 64

// actionID accepts an action item's id: 1 to MaxActionID letters, digits,
// '.', '_' or '-' (a UUID is one).
func actionID(raw json.RawMessage) (any, string, bool) {
	var s string
	if err := unmarshalString(raw, &s); err != nil {
		return nil, "must be a string", true
	}
	if s == "" || len(s) > MaxActionID {
		return nil, fmt.Sprintf("must be 1 to %d characters", MaxActionID), false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return nil, "may hold only letters, digits, '.', '_' and '-'", false
		}
	}
	return s, "", false
}

// email accepts one e-mail address (RFC 5322 addr-spec, no display name).
func email(raw json.RawMessage) (any, string, bool) {
	v, p, malformed := text(MaxEmail, false)(raw)
	if p != "" {
		return nil, p, malformed
	}
	s := v.(string)
	if s == Erased {
		return s, "", false // what a reader folds once the address is erased
	}
	if a, err := mail.ParseAddress(s); err != nil || a.Address != s || a.Name != "" {
		return nil, "must be an e-mail address such as name@example.org", false
	}
	return s, "", false
}

// MaxEmail is the longest e-mail address.
const MaxEmail = 254

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

// date accepts YYYY-MM-DD, YYYY-MM or YYYY between MinYear and MaxYear:
// a date as precise as the record. Compared as strings, a partial date sorts
// before every day within it: as its first day.
func date(raw json.RawMessage) (any, string, bool) {
	var s string
	if err := unmarshalString(raw, &s); err != nil {
		return nil, "must be a date string (YYYY-MM-DD, YYYY-MM or YYYY)", true
	}
	if _, _, err := ParsePartialDate(s); err != nil {
		return nil, err.Error(), false
	}
	return s, "", false
}

// The precisions of a partial date or time (Event.TimePrecision).
const (
	PrecisionYear  = "year"
	PrecisionMonth = "month"
	// PrecisionNone: the record has no date; occurred_at is when it was
	// entered, and pages say "date not recorded".
	PrecisionNone = "none"
)

// ParsePartialDate parses YYYY-MM-DD, or YYYY-MM or YYYY when the record
// knows no more, into the first instant of that day, month or year (UTC),
// with the precision ("" for a day). The year must be within
// MinYear..MaxYear.
func ParsePartialDate(s string) (time.Time, string, error) {
	var layout, precision string
	switch len(s) {
	case 4:
		layout, precision = "2006", PrecisionYear
	case 7:
		layout, precision = "2006-01", PrecisionMonth
	default:
		t, err := ParseDate(s)
		return t, "", err
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("must be a date as YYYY-MM-DD, YYYY-MM or YYYY")
	}
	if t.Year() < MinYear || t.Year() > MaxYear {
		return time.Time{}, "", fmt.Errorf("year must be between %d and %d", MinYear, MaxYear)
	}
	return t, precision, nil
}

// CheckPrecision checks that t is the first instant of its year or month
// when precision says it is only that precise.
func CheckPrecision(t time.Time, precision string) error {
	t = t.UTC()
	switch precision {
	case "", PrecisionNone:
		return nil
	case PrecisionYear:
		if t.Equal(time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)) {
			return nil
		}
	case PrecisionMonth:
		if t.Equal(time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)) {
			return nil
		}
	default:
		return fmt.Errorf("time precision %q is not year, month or none", truncate(precision, 20))
	}
	return fmt.Errorf("a time of %s precision must be the first instant of its %s", precision, precision)
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
