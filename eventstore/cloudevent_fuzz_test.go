package eventstore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

const fuzzSeq = 42

// fuzzEvent is a stored event of type t with data, for seeds.
func fuzzEvent(t domain.EventType, kind domain.Kind, version int, data string) domain.Event {
	return domain.Event{
		ID:            "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a0" + string(rune('0'+version)),
		Type:          t,
		EngagementID:  testID,
		Kind:          kind,
		Version:       version,
		OccurredAt:    time.Date(2019, 3, 14, 9, 26, 53, 589793000, time.UTC),
		RecordedAt:    time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Actor:         "fuzzer",
		CorrelationID: "req-1",
		Data:          json.RawMessage(data),
	}
}

// FuzzDecode feeds arbitrary subjects and payloads to Decode, as a message
// published straight to the stream could. Decode must never panic, must
// fail with ErrUndecodable, and what it accepts must be an allow-listed
// event with canonical ids, stored under the subject Subject builds for it,
// that survives Encode and Decode unchanged: the same event (times as
// instants, data as JSON values), and from then on the same bytes.
func FuzzDecode(f *testing.F) {
	seeds := []domain.Event{
		fuzzEvent(domain.EngagementRecorded, domain.KindAgreement, 1, `{"kind":"agreement","title":"MOU","parties":["IOM","WHO"]}`),
		fuzzEvent(domain.AgreementSigned, domain.KindAgreement, 2, `{"signed_on":"2020-01-15","expires_on":"2030-01-15"}`),
		fuzzEvent(domain.EngagementCorrected, domain.KindPolicy, 3, `{"corrects":"0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a01","reason":"typo","fields":{"title":"T"}}`),
		fuzzEvent(domain.InitiativeRoleChanged, domain.KindInitiative, 4, `{"role":"chair <&>"}`),
		fuzzEvent(domain.MeetingConcluded, domain.KindMeeting, 5, ``),
	}
	for _, ev := range seeds {
		subject, err := eventstore.Subject(ev.Kind, ev.EngagementID, ev.Type)
		if err != nil {
			f.Fatalf("seed subject: %v", err)
		}
		payload, err := eventstore.Encode(ev)
		if err != nil {
			f.Fatalf("seed payload: %v", err)
		}
		f.Add(subject, payload)
	}
	f.Fuzz(func(t *testing.T, subject string, payload []byte) {
		ev, err := eventstore.Decode(subject, payload, fuzzSeq)
		if err != nil {
			if !errors.Is(err, eventstore.ErrUndecodable) {
				t.Fatalf("Decode failed with %v, which is not ErrUndecodable", err)
			}
			return
		}
		if _, err := domain.ParseEventType(string(ev.Type)); err != nil {
			t.Fatalf("decoded type %q is not allow-listed: %v", ev.Type, err)
		}
		if err := domain.CheckID(ev.ID); err != nil {
			t.Fatalf("decoded event id: %v", err)
		}
		if err := domain.CheckID(ev.EngagementID); err != nil {
			t.Fatalf("decoded engagement id: %v", err)
		}
		if want, err := eventstore.Subject(ev.Kind, ev.EngagementID, ev.Type); err != nil || want != subject {
			t.Fatalf("decoded from %q, but Subject gives %q (%v)", subject, want, err)
		}
		if ev.Sequence != fuzzSeq {
			t.Fatalf("sequence = %d, want %d", ev.Sequence, fuzzSeq)
		}
		if len(ev.Data) > 0 && !json.Valid(ev.Data) {
			t.Fatalf("decoded data is not JSON: %q", ev.Data)
		}

		again, err := eventstore.Encode(ev)
		if err != nil {
			t.Fatalf("Encode of a decoded event: %v\nevent %+v", err, ev)
		}
		ev2, err := eventstore.Decode(subject, again, fuzzSeq)
		if err != nil {
			t.Fatalf("Decode(Encode(ev)): %v\npayload %s", err, again)
		}
		sameEvent(t, ev2, ev)
		if ev2.OccurredAt.Location() != time.UTC || ev2.RecordedAt.Location() != time.UTC {
			t.Fatalf("re-decoded times are not UTC: %v, %v", ev2.OccurredAt, ev2.RecordedAt)
		}
		third, err := eventstore.Encode(ev2)
		if err != nil {
			t.Fatalf("Encode(Decode(Encode(ev))): %v", err)
		}
		if !bytes.Equal(third, again) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, third)
		}
	})
}

// sameEvent asserts got is want after a trip through Encode and Decode:
// times are the same instants, data the same JSON value (absent data is an
// empty object), everything else equal.
func sameEvent(t *testing.T, got, want domain.Event) {
	t.Helper()
	if !got.OccurredAt.Equal(want.OccurredAt) || !got.RecordedAt.Equal(want.RecordedAt) {
		t.Fatalf("times changed: (%v, %v), want (%v, %v)", got.OccurredAt, got.RecordedAt, want.OccurredAt, want.RecordedAt)
	}
	if g, w := jsonValue(t, got.Data), jsonValue(t, want.Data); !reflect.DeepEqual(g, w) {
		t.Fatalf("data changed: %s, want %s", got.Data, want.Data)
	}
	got.OccurredAt, got.RecordedAt, got.Data = time.Time{}, time.Time{}, nil
	want.OccurredAt, want.RecordedAt, want.Data = time.Time{}, time.Time{}, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("event changed:\n  %+v\nwant\n  %+v", got, want)
	}
}

// jsonValue decodes raw, keeping numbers exact; empty is an empty object.
func jsonValue(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("data %q is not JSON: %v", raw, err)
	}
	return v
}
