package eventstore

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzAppendCloudEvent holds the hand-written encoder to json.Marshal: when
// it says it could encode a CloudEvent, the bytes must be json.Marshal's.
func FuzzAppendCloudEvent(f *testing.F) {
	for _, s := range []struct {
		text, data string
		sec        int64
		nsec       int64
		version    int
	}{
		{"anonymous", `{"note":"Discussed at the annual review."}`, 1700000000, 123456789, 2},
		{"", `{}`, 0, 0, 1},
		{"chair <&>", `{"role":"chair <&>"}`, -62135596800, 0, 3},
		{"quote \" and \\ and \u2028", "{ \"a\" : [1, 2.50, null],\n \"b\": \"\u2029\" }", 253402300799, 999999999, 10},
		{"naïve café", `{"note":"naïve \u00e9"}`, 1600000000, 100, 1 << 40},
		{"bad \xff utf-8", `{"a":1} x`, -62167219200, 1, -1},
		{"tab\there", `"just a string"`, 32503680000, 0, 0},
	} {
		f.Add(s.text, s.data, s.sec, s.nsec, s.version)
	}
	f.Fuzz(func(t *testing.T, text, data string, sec, nsec int64, version int) {
		at := time.Unix(sec, nsec).UTC()
		ce := CloudEvent{
			SpecVersion: "1.0", ID: text, Source: Source, Type: "engagement.noted", Subject: text,
			Time: at, DataContentType: "application/json", DataSchema: text, Data: json.RawMessage(data),
			RecordedAt: at.Add(time.Duration(nsec)), Actor: text, Kind: "agreement", Version: version,
			CorrelationID: text, CausationID: text,
		}
		got, ok := appendCloudEvent(nil, &ce)
		want, err := json.Marshal(ce)
		if !ok {
			return // Encode falls back to json.Marshal
		}
		if err != nil {
			t.Fatalf("appendCloudEvent encoded what json.Marshal refuses (%v): %s", err, got)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendCloudEvent = %s\njson.Marshal       = %s", got, want)
		}
	})
}

// TestEncodeTakesTheFastPath makes sure an ordinary event is encoded by
// hand: the fuzz test alone would pass if appendCloudEvent always gave up.
func TestEncodeTakesTheFastPath(t *testing.T) {
	at := time.Date(2024, 3, 1, 9, 0, 0, 120000000, time.UTC)
	ce := CloudEvent{
		SpecVersion: "1.0", ID: "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a01", Source: Source, Type: "engagement.noted",
		Subject: "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a00", Time: at, DataContentType: "application/json",
		DataSchema: "/schemas/engagement.noted/v1", Data: json.RawMessage(`{"note":"Discussed at the annual review, naïvely."}`),
		RecordedAt: at, Actor: "IOM liaison", Kind: "agreement", Version: 7,
	}
	got, ok := appendCloudEvent(nil, &ce)
	if !ok {
		t.Fatal("appendCloudEvent gave up on an ordinary event")
	}
	want, _ := json.Marshal(ce)
	if !bytes.Equal(got, want) {
		t.Fatalf("appendCloudEvent = %s\njson.Marshal       = %s", got, want)
	}
}
