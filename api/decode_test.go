package api

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// TestCheckJSON: what checkJSON answers for each kind of body, valid or
// not. jsontext does the reading; the answers are the API's: one object,
// no duplicate key at any depth (however it is spelt), at most maxDepth
// deep, nothing after it, and a syntax error that says what and where.
func TestCheckJSON(t *testing.T) {
	deep := func(n int) string { return `{"a":` + strings.Repeat("[", n-1) + "1" + strings.Repeat("]", n-1) + "}" }
	for _, c := range []struct{ body, want string }{
		// Accepted.
		{`{"type":"engagement.noted","data":{"note":"hello"}}`, ""},
		{`{"a":{"b":[1,2,{"c":null}]},"d":"\u00e9"}`, ""},
		{`{"a":1e999}`, ""}, // JSON sets no range; the field is refused as the wrong type
		{`{"a":1} `, ""},
		{` {"a":"\ud800"} `, ""}, // an escaped lone surrogate: the domain refuses it (422)
		{deep(maxDepth), ""},
		{deepObjects(maxDepth), ""},
		{`{"a":"a","b":["a","a"]}`, ""},       // a value like a key is no duplicate
		{`{"a":{"k":1},"b":{"k":2}}`, ""},     // nor the same key in two objects
		{`{"a":[{"b":1},{"b":2}],"b":3}`, ""}, // nor in an object and its member

		// Duplicate keys, found in document order, however they are spelt.
		{`{"a":1,"a":2}`, `duplicate key "a"`},
		{`{"a":{"b":1,"b":2}}`, `duplicate key "b"`},
		{`{"a":1,"\u0061":2}`, `duplicate key "a"`},
		{`{"a\ud800":1,"a\udbff":2}`, `duplicate key "a` + "\uFFFD" + `"`},
		{"{\"a\xff\":1,\"a\xfe\":2}", `duplicate key "a` + "\uFFFD" + `"`},
		{`{"a":[{"b":1},{"b":2}],"b":3,"a":4}`, `duplicate key "a"`},
		{`{"a":[{"b":1},{"b":2,"b":3}]}`, `duplicate key "b"`},
		{`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k3":3}`, `duplicate key "k3"`},
		{`{"a":"\"}","a\\":1,"a\\":2}`, `duplicate key "a\\"`},
		{`{"` + strings.Repeat("k", 100) + `":1,"` + strings.Repeat("k", 100) + `":2}`, `duplicate key "` + strings.Repeat("k", 64) + `…"`},

		// Too deep.
		{deep(maxDepth + 1), "JSON nested deeper than 32 levels"},
		{deepObjects(maxDepth + 1), "JSON nested deeper than 32 levels"},
		{`{"kind":` + strings.Repeat("[", 1000), "JSON nested deeper than 32 levels"},

		// Not an object.
		{`[{"a":1}]`, "the body must be a JSON object"},
		{` [1] `, "the body must be a JSON object"},
		{`"x"`, "the body must be a JSON object"},
		{`1`, "the body must be a JSON object"},
		{`null`, "the body must be a JSON object"},

		// Something after the object.
		{`{"a":1}{"b":2}`, "unexpected data after the JSON object"},
		{`{"a":1} x`, "unexpected data after the JSON object"},
		{`{"a":1}]`, "unexpected data after the JSON object"},
		{`{"a":{}}}`, "unexpected data after the JSON object"},

		// Incomplete.
		{``, "the JSON document is incomplete"},
		{`{"a":`, "the JSON document is incomplete"},
		{`{"a":[1,2`, "the JSON document is incomplete"},

		// Not JSON: the library's description, with where.
		{`{"a":1,}`, "the body is not valid JSON: invalid character ',' at start of value after offset 6"},
		{`{,}`, "the body is not valid JSON: invalid character ',' at start of value after offset 1"},
		{`{"a":[1,]}`, `the body is not valid JSON: invalid character ',' at start of value within "/a" after offset 7`},
		{`{"a":tru}`, `the body is not valid JSON: invalid character '}' in literal true (expecting 'e') within "/a" after offset 8`},
		{`{"a" 1}`, `the body is not valid JSON: invalid character '1' after object name (expecting ':') within "/a" after offset 5`},
		{`{"a"}`, `the body is not valid JSON: invalid character '}' after object name (expecting ':') within "/a" after offset 4`},
		{`{"a":01}`, `the body is not valid JSON: invalid character '1' after object value (expecting ',' or '}') after offset 6`},
		{"{\"a\":1,\x00\"b\":2}", `the body is not valid JSON: invalid character '\x00' at start of value after offset 7`},
		{"{\"a\":\"x\x00\"}", `the body is not valid JSON: invalid character '\x00' in string (expecting non-control character) within "/a" after offset 7`},
		{`{"a":"\x"}`, "the body is not valid JSON: invalid escape sequence `\\x` in string within \"/a\" after offset 6"},
		{"\xff\xfe{\x00}\x00", `the body is not valid JSON: invalid character '\xff' at start of value`},
	} {
		err := checkJSON([]byte(c.body))
		if got := errText(err); got != c.want {
			t.Errorf("checkJSON(%.80q) = %q, want %q", c.body, got, c.want)
		}
		if err != nil {
			continue
		}
		// What it accepts is one object, as encoding/json reads it.
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader([]byte(c.body)))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
			t.Errorf("checkJSON accepted %q, which encoding/json does not read as one object (%v)", c.body, err)
		}
	}
}

// deepObjects is an object nested n deep: {"a":{"a":…1}}.
func deepObjects(n int) string {
	return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestMembers: fields splits a checked object into its members, with the
// values' bytes as they are in the body (as json.Unmarshal into a map of
// json.RawMessage gives them), and stringField reads each as
// json.Unmarshal into a string would.
func TestMembers(t *testing.T) {
	type str struct {
		value string
		found bool
		err   bool
	}
	for _, c := range []struct {
		body    string
		members map[string]string
		strings map[string]str
	}{
		{
			body:    `{"type":"engagement.noted","occurred_at":"2024-03-01","data":{"note":"hello"}}`,
			members: map[string]string{"type": `"engagement.noted"`, "occurred_at": `"2024-03-01"`, "data": `{"note":"hello"}`},
			strings: map[string]str{"type": {"engagement.noted", true, false}, "occurred_at": {"2024-03-01", true, false}, "data": {err: true}},
		},
		{
			body:    ` { "a" : [1, {"b": "}]"}] , "b":null,"c" :-1.5e3 ,"d":true, "e":"x\"y"} `,
			members: map[string]string{"a": `[1, {"b": "}]"}]`, "b": `null`, "c": `-1.5e3`, "d": `true`, "e": `"x\"y"`},
			strings: map[string]str{"a": {err: true}, "b": {}, "c": {err: true}, "d": {err: true}, "e": {`x"y`, true, false}, "absent": {}},
		},
		{
			body:    `{"\u0074ype":"a\u00e9","data":{}}`,
			members: map[string]string{"type": `"a\u00e9"`, "data": `{}`},
			strings: map[string]str{"type": {"aé", true, false}, "data": {err: true}},
		},
		{
			body:    `{"type":"a\u0000b","k":"\ud800"}`,
			members: map[string]string{"type": `"a\u0000b"`, "k": `"\ud800"`},
			strings: map[string]str{"type": {"a\x00b", true, false}, "k": {"\uFFFD", true, false}},
		},
		{
			body:    `{"long":"` + strings.Repeat("é", 100) + `"}`,
			members: map[string]string{"long": `"` + strings.Repeat("é", 100) + `"`},
			strings: map[string]str{"long": {strings.Repeat("é", 100), true, false}},
		},
		{body: `{}`, members: map[string]string{}},
		{body: `{"a":""}`, members: map[string]string{"a": `""`}, strings: map[string]str{"a": {"", true, false}}},
		{body: `{"a":"\\"}`, members: map[string]string{"a": `"\\"`}, strings: map[string]str{"a": {`\`, true, false}}},
	} {
		if err := checkJSON([]byte(c.body)); err != nil {
			t.Fatalf("checkJSON(%q): %v", c.body, err)
		}
		m, err := fields([]byte(c.body), keysOf(c.members)...)
		if err != nil {
			t.Fatalf("fields(%q): %v", c.body, err)
		}
		got := map[string]string{}
		for k, v := range m {
			got[k] = string(v)
		}
		if !maps.Equal(got, c.members) {
			t.Errorf("fields(%q) = %q, want %q", c.body, got, c.members)
		}
		for name, want := range c.strings {
			s, found, err := stringField(m, name)
			if s != want.value || found != want.found || (err != nil) != want.err {
				t.Errorf("stringField(%q, %q) = %q, %v, %v; want %q, %v, error %v", c.body, name, s, found, err, want.value, want.found, want.err)
			}
		}
	}
}

func keysOf(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// TestFieldsUnknown: members other than the allowed ones are a 400 naming
// each, sorted, long names cut.
func TestFieldsUnknown(t *testing.T) {
	long := strings.Repeat("z", 100)
	_, err := fields([]byte(`{"type":"x","b":1,"`+long+`":2,"a":3}`), "type")
	p := toProblem(err)
	if p.Status != 400 || len(p.Errors) != 3 || p.Errors[0].Field != "a" || p.Errors[1].Field != "b" ||
		p.Errors[2].Field != strings.Repeat("z", 64)+"…" || p.Errors[0].Message != "unknown field" {
		t.Fatalf("fields with unknown members = %+v", p)
	}
}
