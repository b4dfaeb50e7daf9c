package api

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

// FuzzParseTime feeds arbitrary strings to the three parsers of times that
// clients send: domain.ParseDate (date fields in event data), parseTime
// (occurred_at) and parseBound (as_of, known_at). None may panic, and each
// success must lie in the years MinYear..MaxYear and survive formatting and
// parsing again:
//   - ParseDate: midnight UTC, and formatting it gives back the input exactly;
//   - parseTime: UTC, never the zero time (which the command path would read
//     as "not given"), and it parses back from RFC 3339 to the same instant;
//   - parseBound: UTC, parses back to the same instant, and never before
//     parseTime's reading of the same text (a bare date bounds the end of its
//     day, not its start).
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2024-03-01", "1900-01-01", "2199-12-31", "1899-12-31", "2200-01-01", "0000-01-01", "9999-12-31",
		"2024-02-30", "2024-3-1", "2024-03-01T09:00:00Z", "2024-03-01T09:00:00.123456789+02:00",
		"0001-01-01T00:00:00Z", "1900-01-01T00:30:00+01:00", "2199-12-31T23:30:00-01:00", "2024-03-01 09:00:00", "", "now",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := domain.ParseDate(s); err == nil {
			inRange(t, "ParseDate", s, d)
			if d.Location() != time.UTC || !d.Equal(d.Truncate(24*time.Hour)) {
				t.Fatalf("ParseDate(%q) = %v, not midnight UTC", s, d)
			}
			if got := d.Format(domain.DateLayout); got != s {
				t.Fatalf("ParseDate(%q) formats back as %q", s, got)
			}
		}

		tm, timeErr := parseTime(s)
		if timeErr == nil {
			if tm.Location() != time.UTC || tm.IsZero() {
				t.Fatalf("parseTime(%q) = %v, not a non-zero UTC time", s, tm)
			}
			inRange(t, "parseTime", s, tm)
			back, err := parseTime(tm.Format(time.RFC3339Nano))
			if err != nil || !back.Equal(tm) {
				t.Fatalf("parseTime(%q) = %v, which parses back as %v (%v)", s, tm, back, err)
			}
		}

		b, err := parseBound(s)
		if err != nil {
			return
		}
		if b.Location() != time.UTC {
			t.Fatalf("parseBound(%q) = %v, not UTC", s, b)
		}
		inRange(t, "parseBound", s, b)
		back, err := parseBound(b.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(b) {
			t.Fatalf("parseBound(%q) = %v, which parses back as %v (%v)", s, b, back, err)
		}
		if timeErr == nil && b.Before(tm) {
			t.Fatalf("parseBound(%q) = %v is before parseTime's %v", s, b, tm)
		}
	})
}

func inRange(t *testing.T, parser, s string, tm time.Time) {
	t.Helper()
	if y := tm.Year(); y < domain.MinYear || y > domain.MaxYear {
		t.Fatalf("%s(%q) = %v, a year outside %d..%d", parser, s, tm, domain.MinYear, domain.MaxYear)
	}
}

// FuzzCheckJSON feeds arbitrary bytes to checkJSON. It must never panic, and
// what it accepts must be one JSON object that encoding/json reads into a
// map, nested no deeper than maxDepth. Numbers are read as json.Number, as
// checkJSON reads them: JSON sets no range, and the API never reads a number
// into a float64 (1e999 is a well-formed body; its field is then refused as
// the wrong type).
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{
		`{"type":"engagement.noted","data":{"note":"hello"}}`,
		`{"a":{"b":[1,2,{"c":null}]},"d":"\u00e9"}`,
		`{"a":1,"a":2}`,
		`{"a":{"b":1,"b":2}}`,
		`{"a":1}{"b":2}`,
		`[{"a":1}]`,
		`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"a":1,}`,
		`{"a":1e999}`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := checkJSON(body); err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("checkJSON accepted %q, which does not unmarshal into a map: %v", body, err)
		}
		if _, err := dec.Token(); err != io.EOF {
			t.Fatalf("checkJSON accepted %q, which has more after the object", body)
		}
		if m == nil {
			t.Fatalf("checkJSON accepted %q, which is not an object", body)
		}
		if d := nesting(body); d > maxDepth {
			t.Fatalf("checkJSON accepted %q, nested %d deep (limit %d)", body, d, maxDepth)
		}
	})
}

// nesting is how deep the arrays and objects of valid JSON go.
func nesting(body []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range body {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// FuzzCheckShape checks checkJSON's fast path against walkTokens: for every
// input both must accept, or refuse with the same message.
func FuzzCheckShape(f *testing.F) {
	for _, s := range []string{
		`{"type":"engagement.noted","data":{"note":"hello"}}`,
		`{"a":{"b":[1,2,{"c":null}]},"d":"\u00e9"}`,
		`{"a":1,"a":2}`,
		`{"a":{"b":1,"b":2}}`,
		`{"a":1,"\u0061":2}`,
		`{"a\ud800":1,"a\udbff":2}`,
		"{\"a\xff\":1,\"a\xfe\":2}",
		`{"a":[{"b":1},{"b":2}],"b":3,"a":4}`,
		`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k3":3}`,
		`{"a":"\"}","a\\":1,"a\\":2}`,
		` [1] `, `"x"`, `1`, `{"a":1} `,
		`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"a":1}{"b":2}`, `{"a":1,}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, want := checkJSON(body), walkTokens(body)
		if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
			t.Fatalf("checkJSON(%q) = %v, walkTokens = %v", body, got, want)
		}
	})
}

// FuzzMembers checks fields' fast path against json.Unmarshal: for every
// body checkJSON accepts, members must find the same members with the same
// bytes, and stringField must read each string member as json.Unmarshal does.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{"type":"engagement.noted","occurred_at":"2024-03-01","data":{"note":"hello"}}`,
		` { "a" : [1, {"b": "}]"}] , "b":null,"c" :-1.5e3 ,"d":true, "e":"x\"y"} `,
		`{"\u0074ype":"a\u00e9","data":{}}`,
		`{"type":"a\u0000b","k":"\ud800"}`,
		"{\"t\xff\":\"v\xfe\"}",
		`{}`, `{"a":""}`, `{"a":"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkJSON(body) != nil {
			return
		}
		got, ok := members(body)
		if !ok {
			t.Fatalf("members(%q) failed on a body checkJSON accepted", body)
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("json.Unmarshal(%q): %v", body, err)
		}
		if len(got) != len(want) {
			t.Fatalf("members(%q) = %q, json.Unmarshal = %q", body, got, want)
		}
		for k, w := range want {
			if g, ok := got[k]; !ok || !bytes.Equal(g, w) {
				t.Fatalf("members(%q)[%q] = %q, json.Unmarshal = %q", body, k, g, w)
			}
			var ws string
			wantErr := json.Unmarshal(w, &ws) != nil || string(w) == "null"
			gs, found, err := stringField(got, k)
			if (err != nil || !found) != wantErr || !wantErr && gs != ws {
				t.Fatalf("stringField(%q) = %q, %v, %v; json.Unmarshal = %q", w, gs, found, err, ws)
			}
		}
	})
}
