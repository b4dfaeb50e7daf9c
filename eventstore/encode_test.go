package eventstore

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestEncodeAsEncodingJSON holds the CloudEvent encoder to json.Marshal,
// which wrote every event stored so far and whose bytes the hash chain
// covers: for each CloudEvent, the same bytes, or an error where
// json.Marshal fails. The cases are the corners where json v2's defaults
// differ from encoding/json: HTML and JavaScript escaping, invalid UTF-8,
// pre-escaped and spaced data, numbers written long, times at the edges of
// RFC 3339, empty optional attributes.
func TestEncodeAsEncodingJSON(t *testing.T) {
	for _, c := range []struct {
		name, text, data string
		sec, nsec        int64
		version          int
		fallback         bool // invalid UTF-8: encoding/json writes it
	}{
		{"ordinary", "anonymous", `{"note":"Discussed at the annual review."}`, 1700000000, 123456789, 2, false},
		{"empty text and data", "", `{}`, 0, 0, 1, false},
		{"HTML characters", "chair <&>", `{"role":"chair <&>"}`, -62135596800, 0, 3, false},
		{"quote, backslash, U+2028/9, spaced data", "quote \" and \\ and \u2028", "{ \"a\" : [1, 2.50, null],\n \"b\": \"\u2029\" }", 253402300799, 999999999, 10, false},
		{"non-ASCII, escaped in data", "naïve café", `{"note":"naïve \u00e9","n":1e2,"m":-0.0,"s":"\/\ud83d\ude00"}`, 1600000000, 100, 1 << 40, false},
		{"invalid UTF-8, data not JSON", "bad \xff utf-8", `{"a":1} x`, -62167219200, 1, -1, false},
		{"invalid UTF-8 in data", "x", "{\"a\":\"\xff\"}", 1600000000, 0, 1, true},
		{"invalid UTF-8 in attributes", "bad \xff utf-8 \xed\xa0\x80", `{"a":"\ud800"}`, 1600000000, 0, 1, true},
		{"control characters", "tab\there\n\r\b\f\x00\x1f\x7f", `{"a":"\t\u0000"}`, 1600000000, 0, 1, false},
		{"data smuggling a member", "x", `1,"version":2`, 1600000000, 0, 1, false},
		{"duplicate names in data", "x", `{"a":1,"a":2,"b":{}}`, 1600000000, 0, 1, false},
		{"data a string", "tab\there", `"just a string"`, 32503680000, 0, 0, false},
		{"year 10000", "x", `{}`, 253402300800, 0, 1, false},
		{"year -1", "x", `{}`, -62198755200, 0, 1, false},
		{"no data", "x", ``, 1600000000, 0, 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			at := time.Unix(c.sec, c.nsec).UTC()
			for _, optional := range []string{c.text, ""} {
				ce := CloudEvent{
					SpecVersion: "1.0", ID: c.text, Source: Source, Type: "engagement.noted", Subject: c.text,
					Time: at, DataContentType: "application/json", DataSchema: optional, Data: json.RawMessage(c.data),
					RecordedAt: at.Add(time.Duration(c.nsec)), Actor: c.text, Kind: "agreement", Version: c.version,
					CorrelationID: optional, CausationID: optional, TimePrecision: optional,
					ActorIssuer: optional, ActorSubject: optional,
				}
				got, gotErr := marshalCloudEvent(&ce)
				want, wantErr := json.Marshal(ce)
				if (gotErr != nil) != (wantErr != nil) {
					t.Fatalf("error %v, json.Marshal's %v", gotErr, wantErr)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("encoded\n  %s\njson.Marshal\n  %s", got, want)
				}
				// jsontext writes it, or refuses what encoding/json then
				// writes; events of valid UTF-8 it writes itself.
				written, err := writeCloudEvent(&ce)
				if err == nil && !bytes.Equal(written, want) {
					t.Fatalf("jsontext wrote\n  %s\njson.Marshal\n  %s", written, want)
				}
				if err != nil && wantErr == nil && !c.fallback {
					t.Fatalf("jsontext refused what json.Marshal writes: %v", err)
				}
			}
		})
	}
}

// TestEncodeStream: one pooled writer encodes event after event, whatever
// came before: a long event, an event it refused, many short ones (past the
// length at which it starts its stream again).
func TestEncodeStream(t *testing.T) {
	at := time.Date(2024, 3, 1, 9, 0, 0, 120000000, time.UTC)
	event := func(data string) CloudEvent {
		return CloudEvent{
			SpecVersion: "1.0", ID: "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a01", Source: Source, Type: "engagement.noted",
			Subject: "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a00", Time: at, DataContentType: "application/json",
			DataSchema: "/schemas/engagement.noted/v1", Data: json.RawMessage(data), RecordedAt: at, Actor: "IOM liaison",
			Kind: "agreement", Version: 7,
		}
	}
	long := `{"note":"` + strings.Repeat("<é>", 40000) + `"}`
	var events []CloudEvent
	for i, data := range []string{`{"note":"first"}`, long, `{"note":"after a long one"}`, `{"a":1} x`, `{"note":"after an error"}`} {
		events = append(events, event(data))
		if i == 3 {
			events[i].Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // and an error in a time
			events = append(events, event(data))
		}
	}
	for i := range 200 {
		events = append(events, event(`{"note":"`+strings.Repeat("x", i)+`"}`))
	}
	for i, ce := range events {
		got, gotErr := writeCloudEvent(&ce)
		want, wantErr := json.Marshal(ce)
		if (gotErr != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("event %d: written %.200s… (%v)\njson.Marshal %.200s… (%v)", i, got, gotErr, want, wantErr)
		}
	}
}
