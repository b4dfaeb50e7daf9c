package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
)

// The tests here drive one batch by hand, to see each way a batch can end;
// commit_test.go appends concurrently through Append.

func TestPublishBatchAnswersEachAppend(t *testing.T) {
	s, err := Open(t.Context(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if s.committer == nil {
		t.Fatal("no committer under SyncAlways")
	}
	ctx := t.Context()
	newID := func() string { return uuid.Must(uuid.NewV7()).String() }
	event := func(id, key string) domain.Event {
		return domain.Event{
			ID: newID(), Type: domain.EngagementRecorded, EngagementID: id, Kind: domain.KindAgreement,
			Version: 1, OccurredAt: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), RecordedAt: time.Now().UTC(),
			Actor: "test", IdempotencyKey: key,
			Data: json.RawMessage(`{"kind":"agreement","title":"T","parties":["IOM"]}`),
		}
	}
	existing, keyed := newID(), "key-"+newID()
	existingSeq, _, err := s.Append(ctx, event(existing, ""), 0)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	keyedSeq, _, err := s.Append(ctx, event(newID(), keyed), 0)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}

	type append struct {
		id, key  string
		expected uint64
	}
	const (
		stored    = "stored"
		conflict  = "conflict"
		duplicate = "duplicate"
	)
	tests := []struct {
		name    string
		appends []append
		want    []string
		batched bool // the stored ones were stored as one batch
	}{
		{"every append valid: one batch",
			[]append{{id: newID()}, {id: newID(), key: "key-" + newID()}, {id: newID()}, {id: existing, expected: existingSeq}},
			[]string{stored, stored, stored, stored}, true},
		{"a stale sequence among valid appends",
			[]append{{id: newID()}, {id: existing, expected: existingSeq}, {id: newID()}},
			[]string{stored, conflict, stored}, false},
		{"a sequence from the future among valid appends",
			[]append{{id: existing, expected: 1 << 40}, {id: newID()}},
			[]string{conflict, stored}, false},
		{"a repeated idempotency key among valid appends",
			[]append{{id: newID()}, {id: newID(), key: keyed}, {id: newID()}},
			[]string{stored, duplicate, stored}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := s.LastSequence(ctx)
			if err != nil {
				t.Fatal(err)
			}
			evs := make([]domain.Event, len(tt.appends))
			reqs := make([]*commitReq, len(tt.appends))
			for i, a := range tt.appends {
				evs[i] = event(a.id, a.key)
				msg, err := s.appendMsg(evs[i], a.expected)
				if err != nil {
					t.Fatal(err)
				}
				reqs[i] = &commitReq{ctx: ctx, msg: msg, res: make(chan commitResult, 1)}
			}
			results := s.committer.publish(commitGroup{reqs: reqs, batch: true})

			n := uint64(0)
			for i := range reqs {
				res := results[i]
				switch want := tt.want[i]; {
				case want == conflict:
					if !isWrongLastSequence(res.err) {
						t.Errorf("append %d: %+v, %v; want a wrong-last-sequence error", i, res.ack, res.err)
					}
				case res.err != nil:
					t.Errorf("append %d: %v, want %s", i, res.err, want)
				case want == duplicate:
					if !res.ack.Duplicate || res.ack.Sequence != keyedSeq {
						t.Errorf("append %d: %+v, want duplicate of %d", i, res.ack, keyedSeq)
					}
				default:
					n++
					if res.ack.Duplicate {
						t.Errorf("append %d: duplicate, want stored", i)
					}
					if tt.batched && res.ack.Sequence != before+n {
						t.Errorf("append %d stored at %d, want %d: a batch is stored in order", i, res.ack.Sequence, before+n)
					}
					raw, err := s.stream.GetMsg(ctx, res.ack.Sequence)
					if err != nil {
						t.Fatalf("GetMsg %d: %v", res.ack.Sequence, err)
					}
					if got, err := decodeMsg(raw.Subject, raw.Header, raw.Data, raw.Sequence); err != nil || got.ID != evs[i].ID {
						t.Errorf("append %d: stored at %d is event %s (%v), want %s", i, raw.Sequence, got.ID, err, evs[i].ID)
					}
					if inBatch := raw.Header.Get(headerBatchID) != ""; inBatch != tt.batched {
						t.Errorf("append %d: stored in a batch = %v, want %v", i, inBatch, tt.batched)
					}
				}
			}
			if after, err := s.LastSequence(ctx); err != nil || after != before+n {
				t.Errorf("LastSequence = %d (%v), want %d: only the stored appends are in the stream", after, err, before+n)
			}
		})
	}
}

func TestPublishBatchCallerGone(t *testing.T) {
	s, err := Open(t.Context(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// A caller that gave up before its append was gathered is answered
	// with its context's error and nothing is published for it.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ev := domain.Event{
		ID: uuid.NewString(), Type: domain.EngagementRecorded, EngagementID: uuid.Must(uuid.NewV7()).String(),
		Kind: domain.KindAgreement, Version: 1, OccurredAt: time.Now(), RecordedAt: time.Now(), Actor: "test",
		Data: json.RawMessage(`{"kind":"agreement","title":"T","parties":["IOM"]}`),
	}
	if _, _, err := s.Append(ctx, ev, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context: %v, want context.Canceled", err)
	}
	if last, err := s.LastSequence(t.Context()); err != nil || last != 0 {
		t.Errorf("LastSequence = %d (%v), want 0", last, err)
	}
}
