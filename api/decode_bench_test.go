package api

import (
	"testing"
)

// appendBody is a typical POST /v1/engagements/{id}/events body.
const appendBody = `{"type":"engagement.noted","occurred_at":"2024-03-01T09:00:00Z","data":{"note":"Discussed at the annual review."}}`

// BenchmarkDecodeAppend is what the append handler does with a body before
// the command path: check it, split its members, read the type.
func BenchmarkDecodeAppend(b *testing.B) {
	body := []byte(appendBody)
	b.ReportAllocs()
	for b.Loop() {
		if err := checkJSON(body); err != nil {
			b.Fatal(err)
		}
		m, err := fields(body, "type", "occurred_at", "data")
		if err != nil {
			b.Fatal(err)
		}
		if _, ok, err := stringField(m, "type"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkCheckJSON checks an append body: well-formed, one object, no
// duplicate keys, not too deep.
func BenchmarkCheckJSON(b *testing.B) {
	body := []byte(appendBody)
	b.ReportAllocs()
	for b.Loop() {
		if err := checkJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}
