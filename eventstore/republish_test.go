package eventstore_test

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// coreSubscribe subscribes to engagements.> with no pending limits.
func coreSubscribe(t *testing.T, nc *nats.Conn) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync("engagements.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// checkCoreMatchesStream reads the core subscription until a last append
// (the barrier, after every other append was answered) arrives, and checks
// that it received each stored message once, in stream order, with the
// stored subject and bytes, and nothing else.
func checkCoreMatchesStream(t *testing.T, s *eventstore.Store, js jetstream.JetStream, sub *nats.Subscription) {
	t.Helper()
	barrier := mustAppend(t, s, newEvent(newID()), 0)
	stream, err := js.Stream(t.Context(), eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= barrier; want++ {
		msg, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("core subscriber: waiting for sequence %d of %d: %v", want, barrier, err)
		}
		got, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil || got != want {
			t.Fatalf("core subscriber got %s (Nats-Sequence %q) where stream sequence %d was due: a refused publish, a duplicate or out of order",
				msg.Subject, msg.Header.Get(jetstream.SequenceHeader), want)
		}
		stored, err := stream.GetMsg(t.Context(), want)
		if err != nil {
			t.Fatalf("GetMsg %d: %v", want, err)
		}
		if msg.Subject != stored.Subject || !bytes.Equal(msg.Data, stored.Data) {
			t.Fatalf("sequence %d: core subscriber got %s %q, stored is %s %q", want, msg.Subject, msg.Data, stored.Subject, stored.Data)
		}
		if msg.Header.Get(eventstore.HeaderHash) != stored.Header.Get(eventstore.HeaderHash) {
			t.Errorf("sequence %d: hash header %q, stored %q", want, msg.Header.Get(eventstore.HeaderHash), stored.Header.Get(eventstore.HeaderHash))
		}
	}
	if msg, err := sub.NextMsg(50 * time.Millisecond); err == nil {
		t.Errorf("core subscriber got %s (Nats-Sequence %q) after the last stored event", msg.Subject, msg.Header.Get(jetstream.SequenceHeader))
	}
}

// A core subscriber of the contract's subjects sees each stored event once,
// in stream order, and never an append JetStream refused: 48 writers on
// engagements of their own (stored in atomic batches) and 16 on 4 shared
// engagements with stale expectations (refused again and again).
func TestCoreSubscriberSeesStoredEventsOnly(t *testing.T) {
	s, nc, js := newListeningStore(t)
	sub := coreSubscribe(t, nc)

	const own, shared, rounds = 48, 16, 6
	sharedIDs := make([]string, 4)
	var (
		mu   sync.Mutex
		last = map[string]uint64{}
	)
	for i := range sharedIDs {
		sharedIDs[i] = newID()
		last[sharedIDs[i]] = mustAppend(t, s, newEvent(sharedIDs[i]), 0)
	}
	var conflicts atomic.Int64
	together(own+shared, func(w int) {
		if w < own {
			id, expected := newID(), uint64(0)
			for n := range rounds {
				ev := noted(id, n)
				if n == 0 {
					ev = newEvent(id)
				}
				seq, _, err := s.Append(t.Context(), ev, expected)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				expected = seq
			}
			return
		}
		id := sharedIDs[w%len(sharedIDs)]
		for n := 0; n < rounds; {
			mu.Lock()
			expected := last[id]
			mu.Unlock()
			seq, _, err := s.Append(t.Context(), noted(id, n), expected)
			switch {
			case errors.Is(err, domain.ErrConflict):
				conflicts.Add(1)
				// Until a winner records its sequence the writer keeps
				// trying with the stale one: more refused publishes.
				continue
			case err != nil:
				t.Errorf("writer %d: %v", w, err)
				return
			}
			mu.Lock()
			last[id] = max(last[id], seq)
			mu.Unlock()
			n++
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	if conflicts.Load() == 0 {
		t.Fatal("no append was refused: the test shows nothing")
	}
	batched := 0
	for seq := uint64(1); seq <= lastSequence(t, s); seq++ {
		if rawMessage(t, js, seq).Header.Get("Nats-Batch-Id") != "" {
			batched++
		}
	}
	if batched == 0 {
		t.Error("no append was stored in an atomic batch: group commit is not tested through the transform")
	}
	t.Logf("%d refused appends, %d of %d stored in batches", conflicts.Load(), batched, lastSequence(t, s))
	checkCoreMatchesStream(t, s, js, sub)
}

// Appends are published on the intake subjects and stored under the
// contract's; the chain hash covers the stored subject, so verify passes.
func TestAppendStoresUnderTheContractSubject(t *testing.T) {
	s, nc, js := newListeningStore(t)
	intake, err := nc.SubscribeSync("engagements-intake.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ev := newEvent(newID())
	seq := mustAppend(t, s, ev, 0)
	want, err := eventstore.Subject(ev.Kind, ev.EngagementID, ev.Type)
	if err != nil {
		t.Fatal(err)
	}
	if got := rawMessage(t, js, seq).Subject; got != want {
		t.Errorf("stored under %s, want %s", got, want)
	}
	msg, err := intake.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("nothing published on the intake subjects: %v", err)
	}
	if msg.Subject != eventstore.IntakeSubject(want) {
		t.Errorf("published on %s, want %s", msg.Subject, eventstore.IntakeSubject(want))
	}
	rep, err := s.Verify(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Errorf("verify: %+v", rep)
	}
}

func TestIntakeSubject(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"an engagement's subject", "engagements.agreement.x.renewed", "engagements-intake.agreement.x.renewed"},
		{"the contract's wildcard", "engagements.>", "engagements-intake.>"},
		{"a subject outside the stream", "other.agreement.x.renewed", "other.agreement.x.renewed"},
		{"a root that only starts alike", "engagementsx.a", "engagementsx.a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventstore.IntakeSubject(tt.in); got != tt.want {
				t.Errorf("IntakeSubject(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// A stream as releases before the intake subjects created it (subjects
// engagements.>, no transform, no republish) is migrated by Open: its
// messages keep their subjects and bytes, new appends chain onto them under
// the same subjects, and core subscribers get only the new stored ones.
func TestOpenMigratesAStreamWithoutIntake(t *testing.T) {
	dir := t.TempDir()
	cfg := eventstore.Config{DataDir: dir, NATSListen: "127.0.0.1:-1"}
	first, err := eventstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	old := newEvent(newID())
	subject, _ := eventstore.Subject(old.Kind, old.EngagementID, old.Type)
	payload, err := eventstore.Encode(old)
	if err != nil {
		t.Fatal(err)
	}
	err = func() error {
		nc, err := nats.Connect(first.ClientURL())
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		stream, err := js.Stream(t.Context(), eventstore.StreamName)
		if err != nil {
			return err
		}
		c := stream.CachedInfo().Config
		c.Subjects, c.SubjectTransform, c.RePublish = []string{"engagements.>"}, nil, nil
		if _, err := js.UpdateStream(t.Context(), c); err != nil {
			return err
		}
		// Stored as an earlier release's Append stored it.
		msg := nats.NewMsg(subject)
		msg.Data = payload
		msg.Header.Set(eventstore.HeaderHash, eventstore.ChainHash("", subject, payload))
		_, err = js.PublishMsg(t.Context(), msg)
		return err
	}()
	first.Close()
	if err != nil {
		t.Fatalf("make an old stream: %v", err)
	}

	s, nc, js := newListeningStoreIn(t, dir)
	sub := coreSubscribe(t, nc)
	stream, err := js.Stream(t.Context(), eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	c := stream.CachedInfo().Config
	if len(c.Subjects) != 1 || c.Subjects[0] != "engagements-intake.>" || c.SubjectTransform == nil || c.RePublish == nil {
		t.Fatalf("after Open: subjects %q, transform %+v, republish %+v", c.Subjects, c.SubjectTransform, c.RePublish)
	}
	got := rawMessage(t, js, 1)
	if got.Subject != subject || !bytes.Equal(got.Data, payload) {
		t.Errorf("the old message is now %s %q, want %s %q", got.Subject, got.Data, subject, payload)
	}
	first1, err := s.Event(t.Context(), 1)
	if err != nil {
		t.Fatalf("Event 1: %v", err)
	}
	next := noted(old.EngagementID, 1)
	next.PrevHash = first1.Hash
	seq := mustAppend(t, s, next, 1)
	nextSubject, _ := eventstore.Subject(next.Kind, next.EngagementID, next.Type)
	if got := rawMessage(t, js, seq).Subject; got != nextSubject {
		t.Errorf("new append stored under %s, want %s", got, nextSubject)
	}
	rep, err := s.Verify(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Errorf("verify after migration: %+v", rep)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("core subscriber: %v", err)
	}
	if msg.Subject != nextSubject || msg.Header.Get(jetstream.SequenceHeader) != strconv.FormatUint(seq, 10) {
		t.Errorf("core subscriber got %s at %q, want %s at %d", msg.Subject, msg.Header.Get(jetstream.SequenceHeader), nextSubject, seq)
	}
}
