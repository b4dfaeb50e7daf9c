package eventstore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// rawMessage reads the stored message at seq with a plain JetStream client.
func rawMessage(t *testing.T, js jetstream.JetStream, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	stream, err := js.Stream(t.Context(), "ENGAGEMENTS")
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	msg, err := stream.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatalf("GetMsg %d: %v", seq, err)
	}
	return msg
}

func TestAppendThenRead(t *testing.T) {
	s, _, js := newListeningStore(t)

	full := newEvent(newID())
	full.CorrelationID = newID()
	full.CausationID = newID()
	full.IdempotencyKey = "key-" + newID()

	signed := newEvent(newID())
	signed.Type, signed.Version = domain.AgreementSigned, 3
	signed.Data = json.RawMessage(`{"signed_on":"2021-05-06","expires_on":"2026-05-06"}`)

	noted := newEvent(newID())
	noted.Type, noted.Version = domain.EngagementNoted, 2
	noted.Data = json.RawMessage(`{"note":"ünïcode \"quoted\"\nline"}`)

	meeting := newEvent(newID())
	meeting.Kind, meeting.Type = domain.KindMeeting, domain.MeetingAttended
	meeting.Data = json.RawMessage(`{"role":"observer"}`)

	tests := []struct {
		name    string
		ev      domain.Event
		subject string
	}{
		{"recorded with every optional field", full, "engagements.agreement." + full.EngagementID + ".recorded"},
		{"agreement signed", signed, "engagements.agreement." + signed.EngagementID + ".signed"},
		{"engagement noted on an agreement", noted, "engagements.agreement." + noted.EngagementID + ".noted"},
		{"meeting attended", meeting, "engagements.meeting." + meeting.EngagementID + ".attended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := lastSequence(t, s)
			seq := mustAppend(t, s, tt.ev, 0)
			if seq != before+1 {
				t.Errorf("sequence = %d, want %d", seq, before+1)
			}

			raw := rawMessage(t, js, seq)
			if raw.Subject != tt.subject {
				t.Errorf("NATS subject = %q, want %q", raw.Subject, tt.subject)
			}
			// The payload is stored exactly as Encode wrote it, and hashed.
			payload, err := eventstore.Encode(tt.ev)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(raw.Data, payload) {
				t.Errorf("stored payload =\n  %s\nwant Encode's\n  %s", raw.Data, payload)
			}
			hash := eventstore.ChainHash(tt.ev.PrevHash, tt.subject, payload)
			if got := raw.Header.Get(eventstore.HeaderHash); got != hash {
				t.Errorf("%s = %q, want %q", eventstore.HeaderHash, got, hash)
			}

			got, err := s.Event(t.Context(), seq)
			if err != nil {
				t.Fatalf("Event %d: %v", seq, err)
			}
			want := tt.ev
			want.Sequence, want.Hash = seq, hash
			assertEvent(t, got, want)

			if got := raw.Header.Get("Nats-Msg-Id"); got != tt.ev.IdempotencyKey {
				t.Errorf("Nats-Msg-Id = %q, want %q", got, tt.ev.IdempotencyKey)
			}
			checkCloudEvent(t, raw.Data, tt.ev)
		})
	}
}

func TestEventNotFound(t *testing.T) {
	s := newTestStore(t)
	mustAppend(t, s, newEvent(newID()), 0)
	for _, seq := range []uint64{2, 1000} {
		if ev, err := s.Event(t.Context(), seq); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("Event(%d) = %+v, %v; want ErrNotFound", seq, ev, err)
		}
	}
}

func TestAppendRejectsBadSubjects(t *testing.T) {
	s := newTestStore(t)
	tests := []struct {
		name   string
		change func(*domain.Event)
	}{
		{"upper-case engagement id", func(e *domain.Event) { e.EngagementID = "0193A5B2-7C3D-7E4F-8A9B-0C1D2E3F40E1" }},
		{"wildcard engagement id", func(e *domain.Event) { e.EngagementID = ">" }},
		{"engagement id with a dot", func(e *domain.Event) { e.EngagementID = "a.b" }},
		{"unknown kind", func(e *domain.Event) { e.Kind = "treaty" }},
		{"unknown type", func(e *domain.Event) { e.Type = "agreement.exploded" }},
		{"wildcard type", func(e *domain.Event) { e.Type = "agreement.*" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := newEvent(newID())
			tt.change(&ev)
			if seq, _, err := s.Append(t.Context(), ev, 0); err == nil {
				t.Errorf("Append stored it at %d, want an error", seq)
			}
		})
	}
	if got := lastSequence(t, s); got != 0 {
		t.Errorf("LastSequence = %d after refused appends, want 0", got)
	}
}

func TestAppendConflict(t *testing.T) {
	s := newTestStore(t)
	a, b, p := newID(), newID(), newID()
	// seqs remembers the sequence of each successful step by name.
	seqs := map[string]uint64{"none": 0}
	steps := []struct {
		name     string
		id       string
		kind     domain.Kind
		expected string // a step name, or "none" for 0
		future   bool   // expect a sequence beyond the end of the stream
		conflict bool
	}{
		{name: "record A", id: a, expected: "none"},
		{name: "record A again as new", id: a, expected: "none", conflict: true},
		{name: "record B, unaffected by A", id: b, expected: "none"},
		{name: "append to A after A's last, though B came later", id: a, expected: "record A"},
		{name: "append to A with A's stale sequence", id: a, expected: "record A", conflict: true},
		{name: "append to A with B's sequence", id: a, expected: "record B, unaffected by A", conflict: true},
		{name: "append to A with a sequence from the future", id: a, future: true, conflict: true},
		{name: "append to A under another kind as new", id: a, kind: domain.KindPolicy, expected: "none", conflict: true},
		{name: "append to B after B's last", id: b, expected: "record B, unaffected by A"},
		{name: "append to A after A's last again", id: a, expected: "append to A after A's last, though B came later"},
		{name: "record P, a policy", id: p, kind: domain.KindPolicy, expected: "none"},
		{name: "record P again as new", id: p, kind: domain.KindPolicy, expected: "none", conflict: true},
		{name: "append to P with A's sequence", id: p, kind: domain.KindPolicy, expected: "append to A after A's last again", conflict: true},
		{name: "append to P after P's last", id: p, kind: domain.KindPolicy, expected: "record P, a policy"},
	}
	for i, st := range steps {
		ev := newEvent(st.id)
		ev.Version = i + 1
		if st.kind != "" {
			ev.Kind = st.kind
		}
		expected := seqs[st.expected]
		if st.future {
			expected = 1000
		}
		before := lastSequence(t, s)
		seq, dup, err := s.Append(t.Context(), ev, expected)
		switch {
		case st.conflict && !errors.Is(err, domain.ErrConflict):
			t.Fatalf("%s: Append(expected %d) = %d, %v; want ErrConflict", st.name, expected, seq, err)
		case st.conflict:
			if got := lastSequence(t, s); got != before {
				t.Fatalf("%s: LastSequence = %d after a conflict, want %d", st.name, got, before)
			}
		case err != nil || dup:
			t.Fatalf("%s: Append(expected %d) = %d, dup %v, %v; want success", st.name, expected, seq, dup, err)
		default:
			seqs[st.name] = seq
		}
	}
}

func TestAppendConcurrentWritersOneWins(t *testing.T) {
	s := newTestStore(t)
	id := newID()
	first := mustAppend(t, s, newEvent(id), 0)

	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			ev := newEvent(id)
			ev.Type, ev.Version, ev.Data = domain.EngagementNoted, 2, json.RawMessage(`{"note":"n"}`)
			_, _, errs[i] = s.Append(t.Context(), ev, first)
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, domain.ErrConflict):
			t.Errorf("writer %d: %v, want success or ErrConflict", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d writers won, want exactly 1", wins)
	}
	if got := lastSequence(t, s); got != first+1 {
		t.Errorf("LastSequence = %d, want %d", got, first+1)
	}
}

func TestAppendIdempotencyKey(t *testing.T) {
	s, _, js := newListeningStore(t)
	id := newID()
	ev := newEvent(id)
	ev.IdempotencyKey = "req-" + newID()
	first := mustAppend(t, s, ev, 0)

	// JetStream checks the expected sequence before the key: a retry that
	// did not re-read the engagement conflicts, and stores nothing.
	stale := ev
	stale.ID = newID()
	if _, _, err := s.Append(t.Context(), stale, 0); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("repeated key with the stale sequence: err = %v, want ErrConflict", err)
	}

	tests := []struct {
		name     string
		change   func(*domain.Event)
		expected uint64
	}{
		{"retry after re-reading the engagement", func(e *domain.Event) { e.Version = 2 }, first},
		{"retry with other data", func(e *domain.Event) {
			e.Type, e.Version, e.Data = domain.EngagementNoted, 2, json.RawMessage(`{"note":"n"}`)
		}, first},
		// The key is stream-wide, as the api scopes keys itself; a retried
		// create picks a new engagement id and so cannot conflict.
		{"retry on another engagement", func(e *domain.Event) { e.EngagementID = newID() }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retry := ev
			retry.ID = newID()
			tt.change(&retry)
			seq, dup, err := s.Append(t.Context(), retry, tt.expected)
			if err != nil {
				t.Fatalf("repeated Append: %v", err)
			}
			if !dup || seq != first {
				t.Errorf("repeated Append = seq %d, duplicate %v; want %d, true", seq, dup, first)
			}
			if got := lastSequence(t, s); got != first {
				t.Errorf("LastSequence = %d, want %d: the stream must hold one message", got, first)
			}
		})
	}

	stored, err := s.Event(t.Context(), first)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	if stored.ID != ev.ID || stored.IdempotencyKey != ev.IdempotencyKey {
		t.Errorf("stored event id %s key %q, want the first append's %s %q", stored.ID, stored.IdempotencyKey, ev.ID, ev.IdempotencyKey)
	}
	if raw := rawMessage(t, js, first); raw.Header.Get("Nats-Msg-Id") != ev.IdempotencyKey {
		t.Errorf("Nats-Msg-Id = %q, want %q", raw.Header.Get("Nats-Msg-Id"), ev.IdempotencyKey)
	}

	// A new key is a new append.
	next := newEvent(id)
	next.Version, next.IdempotencyKey = 2, "req-"+newID()
	if second := mustAppend(t, s, next, first); second != first+1 {
		t.Errorf("second sequence = %d, want %d", second, first+1)
	}
	// Without a key, two identical appends are two events.
	plain := newEvent(newID())
	p1 := mustAppend(t, s, plain, 0)
	plain.Version = 2
	if p2 := mustAppend(t, s, plain, p1); p2 != p1+1 {
		t.Errorf("second keyless append stored at %d, want %d", p2, p1+1)
	}
}
