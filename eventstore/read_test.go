package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// delivery is one message a live Read yielded.
type delivery struct {
	seq uint64
	ev  domain.Event
	err error
}

// subscription runs a live Read in the background.
type subscription struct {
	ch      chan delivery
	cancel  context.CancelFunc
	done    chan error
	stopped bool
	err     error // the error Read yielded last, once stopped
}

// subscribe starts a live s.Read(after) of the whole stream; the test
// cleanup stops it.
func subscribe(t *testing.T, s *eventstore.Store, after uint64) *subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	sub := &subscription{ch: make(chan delivery), cancel: cancel, done: make(chan error, 1)}
	go func() {
		sub.done <- follow(ctx, s, after, func(m domain.Message) {
			select {
			case sub.ch <- delivery{m.Sequence, m.Event, m.Err}:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() { sub.stop(t) })
	return sub
}

// follow reads the whole stream live, passing each message to h, and
// returns the error that ends the read.
func follow(ctx context.Context, s *eventstore.Store, after uint64, h func(domain.Message)) error {
	for m, err := range s.Read(ctx, after, domain.Filter{Live: true}) {
		if err != nil {
			return err
		}
		h(m)
	}
	return nil
}

// patience bounds every wait, so that a missing delivery fails the test
// instead of hanging it; it asserts nothing about speed.
const patience = 30 * time.Second

// next waits for the next delivery.
func (sub *subscription) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-sub.ch:
		return d
	case err := <-sub.done:
		sub.done <- err
		t.Fatalf("Read ended early: %v", err)
	case <-time.After(patience):
		t.Fatal("no delivery")
	}
	return delivery{}
}

// stop cancels the subscription and returns the error that ended Read.
func (sub *subscription) stop(t *testing.T) error {
	t.Helper()
	if sub.stopped {
		return sub.err
	}
	sub.stopped = true
	sub.cancel()
	select {
	case sub.err = <-sub.done:
		return sub.err
	case <-time.After(patience):
		t.Fatal("Read did not end after its context was cancelled")
		return nil
	}
}

// expectEvent checks that the next delivery is the stored event at seq.
func (sub *subscription) expectEvent(t *testing.T, seq uint64, want domain.Event) {
	t.Helper()
	d := sub.next(t)
	if d.err != nil {
		t.Fatalf("delivery at %d: %v", d.seq, d.err)
	}
	if d.seq != seq {
		t.Fatalf("delivery at %d, want %d", d.seq, seq)
	}
	want.Sequence = seq
	assertEvent(t, d.ev, want)
}

func TestReadLive(t *testing.T) {
	tests := []struct {
		name  string
		after uint64
	}{
		{"from the start", 0},
		{"after the first", 1},
		{"after the middle", 2},
		{"after the last", 3},
		{"after the end of the stream", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t)
			// Three stored events across two engagements: 1 and 3 on a, 2 on b.
			a, b := newID(), newID()
			evs := []domain.Event{{}, newEvent(a), newEvent(b), newEvent(a)} // indexed by sequence
			evs[1].IdempotencyKey = "k1"
			evs[3].Type, evs[3].Version, evs[3].Data = domain.AgreementSigned, 2, []byte(`{"signed_on":"2020-01-01"}`)
			mustAppend(t, s, evs[1], 0)
			mustAppend(t, s, evs[2], 0)
			mustAppend(t, s, evs[3], 1)

			sub := subscribe(t, s, tt.after)
			for seq := tt.after + 1; seq <= 3; seq++ {
				sub.expectEvent(t, seq, evs[seq])
			}
			// Then live appends, in order, including those before after's
			// sequence is reached.
			for seq := uint64(4); seq <= 6; seq++ {
				ev := newEvent(newID())
				ev.IdempotencyKey = "live-" + newID()
				mustAppend(t, s, ev, 0)
				if seq > tt.after {
					sub.expectEvent(t, seq, ev)
				}
			}

			if err := sub.stop(t); !errors.Is(err, context.Canceled) {
				t.Errorf("Read ended with %v after cancel, want context.Canceled", err)
			}
			select {
			case d := <-sub.ch:
				t.Errorf("delivery at %d after Read ended", d.seq)
			default:
			}
		})
	}
}

func TestReadLiveEndsWhenCancelledWhileWaiting(t *testing.T) {
	s := newTestStore(t)
	sub := subscribe(t, s, 0) // an empty stream: Read waits for the first event
	if err := sub.stop(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Read ended with %v, want context.Canceled", err)
	}
}

func TestReadLiveAlreadyCancelled(t *testing.T) {
	s := newTestStore(t)
	mustAppend(t, s, newEvent(newID()), 0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := follow(ctx, s, 0, func(domain.Message) {})
	if err == nil {
		t.Error("Read with a cancelled context ended without an error")
	}
}

// publishRaw stores payload under subject directly, bypassing Append (it
// publishes on the intake subject).
func publishRaw(t *testing.T, js jetstream.JetStream, subject string, payload []byte) uint64 {
	t.Helper()
	ack, err := js.Publish(t.Context(), eventstore.IntakeSubject(subject), payload)
	if err != nil {
		t.Fatalf("publish to %s: %v", subject, err)
	}
	return ack.Sequence
}

func TestUndecodableMessages(t *testing.T) {
	s, _, js := newListeningStore(t)
	id := newID()
	good := newEvent(id)
	mismatched, err := eventstore.Encode(newEvent(newID()))
	if err != nil {
		t.Fatal(err)
	}
	unhashed, err := eventstore.Encode(newEvent(id))
	if err != nil {
		t.Fatal(err)
	}
	subject := "engagements.agreement." + id + ".recorded"

	tests := []struct {
		name    string
		subject string
		payload []byte
		wantErr error
		wantID  string // the engagement the message counts for, if any
	}{
		{"not json", subject, []byte("not json"), eventstore.ErrUndecodable, id},
		{"empty", subject, nil, eventstore.ErrUndecodable, id},
		{"envelope names another engagement", subject, mismatched, eventstore.ErrUndecodable, id},
		{"unknown kind in the subject", "engagements.treaty." + id + ".recorded", mismatched, eventstore.ErrUndecodable, id},
		{"subject with too many tokens", subject + ".x", []byte("{}"), eventstore.ErrUndecodable, ""},
		{"valid envelope published around Append, without a hash", subject, unhashed, eventstore.ErrUnverified, id},
	}

	sub := subscribe(t, s, 0)
	seq1 := mustAppend(t, s, good, 0)
	sub.expectEvent(t, seq1, good)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := publishRaw(t, js, tt.subject, tt.payload)

			d := sub.next(t)
			if d.seq != seq {
				t.Fatalf("delivery at %d, want %d", d.seq, seq)
			}
			if !errors.Is(d.err, tt.wantErr) {
				t.Errorf("delivery err = %v, want %v", d.err, tt.wantErr)
			}
			if d.ev.EngagementID != tt.wantID {
				t.Errorf("delivered engagement id = %q, want %q", d.ev.EngagementID, tt.wantID)
			}
			if _, err := s.Event(t.Context(), seq); !errors.Is(err, tt.wantErr) {
				t.Errorf("Event(%d): err = %v, want %v", seq, err, tt.wantErr)
			}

			// The subscription goes on with the next good event.
			ev := newEvent(newID())
			next := mustAppend(t, s, ev, 0)
			sub.expectEvent(t, next, ev)
		})
	}

	// A raw message stored under the engagement counts for its sequence, so
	// it cannot be slipped past the conflict check either.
	last := publishRaw(t, js, subject, []byte("not json"))
	sub.next(t)
	second := newEvent(id)
	second.Version = 2
	if _, _, err := s.Append(t.Context(), second, seq1); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("Append after a raw message on the engagement: err = %v, want ErrConflict", err)
	}
	mustAppend(t, s, second, last)
}
