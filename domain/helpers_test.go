package domain

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// occurred is when test events happened in the world unless a case says
// otherwise: in the past, and after the expiry dates the fixtures use.
var occurred = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)

// otherID is an engagement that is not the one under test.
var otherID = "0190a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b"

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// obj is event data built in Go and marshalled to JSON.
type obj = map[string]any

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return b
}

// recordedData is valid engagement.recorded data of each kind.
func recordedData(k Kind) obj {
	d := obj{"kind": string(k), "title": "IOM–WHO " + string(k), "parties": []string{"IOM", "WHO"}}
	switch k {
	case KindPolicy:
		d["instrument"] = "resolution"
	case KindMeeting:
		d["level"] = "ministerial"
		d["location"] = "Geneva"
	}
	return d
}

// sampleData is valid data for each event type, holding every required field.
func sampleData(typ EventType) obj {
	switch typ {
	case EngagementRecorded:
		return recordedData(KindAgreement)
	case EngagementAmended:
		return obj{"title": "Amended title"}
	case EngagementLinked:
		return obj{"target_id": otherID, "relation": "references"}
	case EngagementNoted:
		return obj{"note": "Discussed at the annual review."}
	case EngagementActionAssigned:
		return obj{"action_id": "a1", "title": "Send the draft work plan", "owner": "IOM MHD", "due_on": "2020-03-01"}
	case EngagementActionCompleted:
		return obj{"action_id": "a1"}
	case EngagementActionCancelled:
		return obj{"action_id": "a1", "reason": "no longer needed"}
	case EngagementFocalPointAssigned:
		return obj{"party": "WHO", "name": "Dr A. Example"}
	case EngagementFocalPointReleased:
		return obj{"party": "WHO", "name": "Dr A. Example"}
	case AgreementSigned:
		return obj{"signed_on": "2020-01-15"}
	case AgreementRenewed:
		return obj{"renewed_on": "2023-01-15", "expires_on": "2190-01-15"}
	case AgreementTerminated:
		return obj{"reason": "superseded by a new MOU"}
	case PolicyContributed:
		return obj{"contribution": "drafted operative paragraph 3", "role": "co-author"}
	case PolicyAdopted:
		return obj{"adopted_by": "WHA"}
	case PolicyCommitted:
		return obj{"commitment": "train 100 health workers"}
	case InitiativeJoined:
		return obj{"role": "member"}
	case InitiativeRoleChanged:
		return obj{"role": "chair"}
	case InitiativeLeft:
		return obj{"reason": "mandate ended"}
	case MeetingScheduled:
		return obj{"starts_on": "2024-05-27"}
	case MeetingAttended:
		return obj{"role": "speaker"}
	case MeetingConcluded:
		return obj{"outcome": "resolution adopted"}
	case EngagementDocumentAttached:
		return obj{"document_id": "0193a000-0000-7000-8000-0000000000d1", "name": "mou-1999-signed.pdf",
			"media_type": MediaPDF, "size": 1024, "sha256": strings.Repeat("ab", 32)}
	case AgreementExpiring:
		return obj{"expires_on": "2025-06-30", "days_left": 30, "deadline": "expiry"}
	case AgreementExpired:
		return obj{"expires_on": "2025-06-30"}
	case EngagementActionOverdue:
		return obj{"action_id": "a1", "due_on": "2020-03-01"}
	case MeetingUpcoming:
		return obj{"starts_on": "2024-05-27", "days_left": 7}
	case EngagementPersonalDataErased:
		return obj{"person_id": "p0123456789abcdef0123456789abcdef", "key_version": 1, "fields": []string{"meeting.attended delegation"},
			"events": []string{"0193a000-0000-7000-8000-0000000000e1"}}
	}
	panic("no sample data for " + string(typ))
}

// kindOf is the kind an event type's sample belongs to.
func kindOf(typ EventType) Kind {
	if typ.Prefix() == "engagement" {
		return KindAgreement
	}
	return Kind(typ.Prefix())
}

// newEvent builds the next event of e: fresh id, next version, occurred in
// the past, recorded now.
func newEvent(t testing.TB, e *Engagement, typ EventType, data any) Event {
	t.Helper()
	ev := Event{
		ID:           newID(),
		Type:         typ,
		EngagementID: e.v.ID,
		Kind:         e.v.Kind,
		Version:      e.v.Version + 1,
		OccurredAt:   occurred,
		RecordedAt:   time.Now(),
		Actor:        "test",
	}
	if s, ok := SpecOf(typ); ok && s.System {
		ev.Actor = SystemActor
	}
	switch d := data.(type) {
	case string:
		ev.Data = json.RawMessage(d)
	case json.RawMessage:
		ev.Data = d
	case nil:
	default:
		ev.Data = mustJSON(t, d)
	}
	if typ == EngagementRecorded && !e.Exists() {
		ev.EngagementID = newID()
		if m, ok := data.(obj); ok {
			if k, ok := m["kind"].(string); ok {
				ev.Kind = Kind(k)
			}
		}
	}
	return ev
}

// step is one event of a history, with data and an optional occurred_at.
type step struct {
	typ  EventType
	data obj
	at   time.Time
}

func (s step) event(t testing.TB, e *Engagement) Event {
	t.Helper()
	data := s.data
	if data == nil {
		data = sampleData(s.typ)
	}
	ev := newEvent(t, e, s.typ, data)
	if !s.at.IsZero() {
		ev.OccurredAt = s.at
	}
	return ev
}

// mustApply applies ev and fails the test if it is refused.
func mustApply(t testing.TB, e *Engagement, ev Event) Event {
	t.Helper()
	if err := e.Apply(ev); err != nil {
		t.Fatalf("apply %s %s: %v", ev.Type, ev.Data, err)
	}
	return ev
}

// record returns a freshly recorded engagement of kind k and its history.
func record(t testing.TB, k Kind) (*Engagement, []Event) {
	t.Helper()
	e := &Engagement{}
	ev := mustApply(t, e, newEvent(t, e, EngagementRecorded, recordedData(k)))
	return e, []Event{ev}
}

// build records an engagement of kind k and applies steps, all of which must
// be accepted. It returns the state and every event applied.
func build(t testing.TB, k Kind, steps ...step) (*Engagement, []Event) {
	t.Helper()
	e, history := record(t, k)
	for _, s := range steps {
		history = append(history, mustApply(t, e, s.event(t, e)))
	}
	return e, history
}

// fold applies events to a new engagement.
func fold(t testing.TB, events []Event) *Engagement {
	t.Helper()
	e := &Engagement{}
	for _, ev := range events {
		mustApply(t, e, ev)
	}
	return e
}

// errCheck asserts something about an error; a nil errCheck means success.
type errCheck func(t *testing.T, err error)

// invalid expects a *ValidationError naming exactly fields.
func invalid(fields ...string) errCheck {
	return func(t *testing.T, err error) {
		t.Helper()
		var v *ValidationError
		if !errors.As(err, &v) {
			t.Fatalf("err = %v (%T), want *ValidationError on %v", err, err, fields)
		}
		if got := fieldNames(v.Fields); !sameSet(got, fields) {
			t.Fatalf("validation fields = %v, want %v (%v)", got, fields, err)
		}
		if errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("validation error %v must not be an invalid transition", err)
		}
	}
}

// malformed expects a *MalformedError naming exactly fields.
func malformed(fields ...string) errCheck {
	return func(t *testing.T, err error) {
		t.Helper()
		var m *MalformedError
		if !errors.As(err, &m) {
			t.Fatalf("err = %v (%T), want *MalformedError on %v", err, err, fields)
		}
		if got := fieldNames(m.Fields); !sameSet(got, fields) {
			t.Fatalf("malformed fields = %v, want %v (%v)", got, fields, err)
		}
		var v *ValidationError
		if errors.As(err, &v) {
			t.Fatalf("malformed error %v must not also be a validation error", err)
		}
	}
}

// denied expects an invalid transition reported as *TransitionError.
func denied(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("err = %v (%T), want ErrInvalidTransition", err, err)
	}
	var te *TransitionError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v (%T), want *TransitionError", err, err)
	}
	if te.Error() == "" {
		t.Fatal("TransitionError has no message")
	}
}

// is expects errors.Is(err, target).
func is(target error) errCheck {
	return func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("err = %v (%T), want %v", err, err, target)
		}
	}
}

func fieldNames(f []FieldError) []string {
	out := make([]string, len(f))
	for i, fe := range f {
		out[i] = fe.Field
		if fe.Message == "" {
			out[i] += " (no message)"
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// with returns a copy of d with the given fields set; a nil value deletes it.
func with(d obj, kv ...any) obj {
	out := maps.Clone(d)
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

func strs(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}
