package eventstore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// assertEvent compares every field of two events.
func assertEvent(t *testing.T, got, want domain.Event) {
	t.Helper()
	if !bytes.Equal(got.Data, want.Data) {
		t.Errorf("data = %s, want %s", got.Data, want.Data)
	}
	if !got.OccurredAt.Equal(want.OccurredAt) {
		t.Errorf("occurred_at = %v, want %v", got.OccurredAt, want.OccurredAt)
	}
	if !got.RecordedAt.Equal(want.RecordedAt) {
		t.Errorf("recorded_at = %v, want %v", got.RecordedAt, want.RecordedAt)
	}
	// Stored events carry their chain hash; it must be a SHA-256 in hex.
	if want.Hash == "" && got.Hash != "" {
		if len(got.Hash) != 64 || strings.Trim(got.Hash, "0123456789abcdef") != "" {
			t.Errorf("hash = %q, want 64 lower-case hex characters", got.Hash)
		}
		got.Hash = ""
	}
	got.Data, want.Data = nil, nil
	got.OccurredAt, want.OccurredAt = time.Time{}, time.Time{}
	got.RecordedAt, want.RecordedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("event =\n  %+v\nwant\n  %+v", got, want)
	}
}

// decodeMap decodes a payload into a generic map.
func decodeMap(t *testing.T, payload []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("payload is not a JSON object: %v\n%s", err, payload)
	}
	return m
}

// checkCloudEvent checks a stored payload against the contract's envelope.
func checkCloudEvent(t *testing.T, payload []byte, ev domain.Event) {
	t.Helper()
	m := decodeMap(t, payload)
	want := map[string]any{
		"specversion":     "1.0",
		"id":              ev.ID,
		"source":          "/engagements",
		"type":            string(ev.Type),
		"subject":         ev.EngagementID,
		"time":            ev.OccurredAt.UTC().Format(time.RFC3339Nano),
		"datacontenttype": "application/json",
		"dataschema":      domain.DataSchema("", ev.Type),
		"recordedat":      ev.RecordedAt.UTC().Format(time.RFC3339Nano),
		"actor":           ev.Actor,
		"kind":            string(ev.Kind),
		"version":         float64(ev.Version),
	}
	if ev.CorrelationID != "" {
		want["correlationid"] = ev.CorrelationID
	}
	if ev.CausationID != "" {
		want["causationid"] = ev.CausationID
	}
	var wantData any
	if err := json.Unmarshal(ev.Data, &wantData); err != nil {
		t.Fatalf("event data: %v", err)
	}
	want["data"] = wantData
	for k, v := range want {
		if !reflect.DeepEqual(m[k], v) {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	for k := range m {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected attribute %s = %#v", k, m[k])
		}
	}
}

func TestEncode(t *testing.T) {
	full := newEvent(testID)
	full.OccurredAt = time.Date(1999, 12, 31, 23, 0, 0, 0, time.FixedZone("CET", 3600))
	full.CorrelationID = newID()
	full.CausationID = newID()
	plain := newEvent(testID)
	bare := newEvent(testID)
	bare.Type, bare.Version, bare.Data = domain.InitiativeLeft, 4, nil

	tests := []struct {
		name string
		ev   domain.Event
		want domain.Event // as checkCloudEvent should see it
	}{
		{"recorded with correlation and causation", full, full},
		{"no correlation, no causation", plain, plain},
		{"empty data becomes an empty object", bare, func() domain.Event { e := bare; e.Data = json.RawMessage(`{}`); return e }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, err := eventstore.Encode(tt.ev)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			checkCloudEvent(t, payload, tt.want)
		})
	}
	t.Run("time is occurred_at in UTC", func(t *testing.T) {
		payload, err := eventstore.Encode(full)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if got := decodeMap(t, payload)["time"]; got != "1999-12-31T22:00:00Z" {
			t.Errorf("time = %v, want 1999-12-31T22:00:00Z", got)
		}
	})
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	ev := newEvent(testID)
	ev.Type, ev.Version = domain.AgreementSigned, 2
	ev.Data = json.RawMessage(`{"signed_on":"2020-01-02"}`)
	ev.CorrelationID, ev.CausationID = newID(), newID()
	payload, err := eventstore.Encode(ev)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	subject, err := eventstore.Subject(ev.Kind, ev.EngagementID, ev.Type)
	if err != nil {
		t.Fatalf("Subject: %v", err)
	}
	got, err := eventstore.Decode(subject, payload, 42)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	ev.Sequence = 42
	assertEvent(t, got, ev)
}

func TestDecodeRejects(t *testing.T) {
	ev := newEvent(testID)
	good, err := eventstore.Encode(ev)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	goodSubject := "engagements.agreement." + testID + ".recorded"
	if _, err := eventstore.Decode(goodSubject, good, 1); err != nil {
		t.Fatalf("Decode of the unchanged payload: %v", err)
	}
	// with returns the good payload with one attribute changed (nil deletes it).
	with := func(key string, value any) []byte {
		m := decodeMap(t, good)
		if value == nil {
			delete(m, key)
		} else {
			m[key] = value
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other := newID()

	tests := []struct {
		name    string
		subject string
		payload []byte
	}{
		{"not json", goodSubject, []byte("not json")},
		{"empty payload", goodSubject, nil},
		{"json array", goodSubject, []byte(`[1,2]`)},
		{"json null", goodSubject, []byte(`null`)},
		{"truncated document", goodSubject, good[:len(good)-1]},
		{"unknown field", goodSubject, with("extra", "x")},
		{"data_base64 instead of data", goodSubject, with("data_base64", "e30=")},
		{"specversion 0.3", goodSubject, with("specversion", "0.3")},
		{"specversion missing", goodSubject, with("specversion", nil)},
		{"other source", goodSubject, with("source", "/elsewhere")},
		{"xml content type", goodSubject, with("datacontenttype", "application/xml")},
		{"type not allow-listed", goodSubject, with("type", "agreement.exploded")},
		{"type with a wildcard", "engagements.agreement." + testID + ".*", with("type", "agreement.*")},
		{"version is a string", goodSubject, with("version", "1")},
		{"time is not a time", goodSubject, with("time", "yesterday")},
		{"event id not a uuid", goodSubject, with("id", "event-1")},
		{"event id upper-case", goodSubject, with("id", strings.ToUpper(newID()))},
		{"nats subject names another engagement", "engagements.agreement." + other + ".recorded", good},
		{"nats subject names another kind", "engagements.policy." + testID + ".recorded", good},
		{"nats subject names another verb", "engagements.agreement." + testID + ".signed", good},
		{"nats subject outside the root", "other.agreement." + testID + ".recorded", good},
		{"nats subject too short", "engagements.agreement." + testID, good},
		{"nats subject too long", goodSubject + ".x", good},
		{"envelope subject names another engagement", goodSubject, with("subject", other)},
		{"envelope kind differs", goodSubject, with("kind", "policy")},
		{"kind not allow-listed, on both sides", "engagements.treaty." + testID + ".recorded", with("kind", "treaty")},
		{"engagement id not a uuid, on both sides", "engagements.agreement.abc.recorded", with("subject", "abc")},
		{"engagement id upper-case, on both sides",
			"engagements.agreement." + strings.ToUpper(testID) + ".recorded", with("subject", strings.ToUpper(testID))},
		{"trailing document", goodSubject, append(append([]byte{}, good...), good...)},
		{"trailing garbage", goodSubject, append(append([]byte{}, good...), "x"...)},
		{"trailing brace", goodSubject, append(append([]byte{}, good...), '}')},
		{"trailing bracket", goodSubject, append(append([]byte{}, good...), ']')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eventstore.Decode(tt.subject, tt.payload, 7)
			if !errors.Is(err, eventstore.ErrUndecodable) {
				t.Fatalf("Decode = %+v, %v; want ErrUndecodable", got, err)
			}
			if !reflect.DeepEqual(got, domain.Event{}) {
				t.Errorf("Decode returned %+v with the error, want the zero event", got)
			}
		})
	}

	t.Run("trailing whitespace is fine", func(t *testing.T) {
		if _, err := eventstore.Decode(goodSubject, append(append([]byte{}, good...), " \n"...), 1); err != nil {
			t.Errorf("Decode: %v", err)
		}
	})
}
