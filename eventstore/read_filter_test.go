package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// readAll reads to the end and returns the sequences yielded.
func readAll(t *testing.T, s *eventstore.Store, after uint64, f domain.Filter) []uint64 {
	t.Helper()
	var seqs []uint64
	for m, err := range s.Read(t.Context(), after, f) {
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if m.Err != nil {
			t.Errorf("sequence %d: %v", m.Sequence, m.Err)
		}
		seqs = append(seqs, m.Sequence)
	}
	return seqs
}

// Three stored events: 1 and 3 on agreement a (recorded, signed), 2 on b.
func storeThree(t *testing.T, s *eventstore.Store) (a, b string) {
	t.Helper()
	a, b = newID(), newID()
	mustAppend(t, s, newEvent(a), 0)
	mustAppend(t, s, newEvent(b), 0)
	signed := newEvent(a)
	signed.Type, signed.Version, signed.Data = domain.AgreementSigned, 2, []byte(`{"signed_on":"2020-01-01"}`)
	mustAppend(t, s, signed, 1)
	return a, b
}

func TestReadSelects(t *testing.T) {
	s := newTestStore(t)
	a, b := storeThree(t, s)
	for _, tt := range []struct {
		name  string
		after uint64
		sel   domain.Selection
		want  []uint64
	}{
		{"everything", 0, domain.Selection{}, []uint64{1, 2, 3}},
		{"after the first", 1, domain.Selection{}, []uint64{2, 3}},
		{"after the end", 3, domain.Selection{}, nil},
		{"one engagement", 0, domain.Selection{EngagementID: a}, []uint64{1, 3}},
		{"the other engagement", 0, domain.Selection{EngagementID: b}, []uint64{2}},
		{"one type", 0, domain.Selection{Types: []domain.EventType{domain.AgreementSigned}}, []uint64{3}},
		{"two types", 0, domain.Selection{Types: []domain.EventType{domain.EngagementRecorded, domain.AgreementSigned}}, []uint64{1, 2, 3}},
		{"a kind", 0, domain.Selection{Kind: domain.KindAgreement}, []uint64{1, 2, 3}},
		{"a kind with no events", 0, domain.Selection{Kind: domain.KindPolicy}, nil},
		{"kind, engagement and type", 1, domain.Selection{Kind: domain.KindAgreement, EngagementID: a,
			Types: []domain.EventType{domain.EngagementRecorded, domain.AgreementSigned}}, []uint64{3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := readAll(t, s, tt.after, domain.Filter{Selection: tt.sel}); !slices.Equal(got, tt.want) {
				t.Errorf("read %v, want %v", got, tt.want)
			}
		})
	}
}

// Nothing a client sends becomes part of a subject unchecked: a filter with
// an id, kind or type that is not allow-listed yields its error and nothing
// else.
func TestReadRefusesUncheckedFilters(t *testing.T) {
	s := newTestStore(t)
	storeThree(t, s)
	for _, tt := range []struct {
		name string
		sel  domain.Selection
	}{
		{"id with a wildcard", domain.Selection{EngagementID: "a.>"}},
		{"id not in canonical form", domain.Selection{EngagementID: "not-an-id"}},
		{"unknown kind", domain.Selection{Kind: "treaty"}},
		{"type wildcard", domain.Selection{Types: []domain.EventType{"engagement.*"}}},
		{"unknown type", domain.Selection{Types: []domain.EventType{"agreement.renewed.x"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			for m, err := range s.Read(t.Context(), 0, domain.Filter{Selection: tt.sel}) {
				n++
				if err == nil {
					t.Errorf("yielded sequence %d, want an error", m.Sequence)
				}
			}
			if n != 1 {
				t.Errorf("yielded %d times, want once (the error)", n)
			}
		})
	}
}

// Breaking out of the loop ends the read and removes its consumer, live or
// not.
func TestReadEndsWhenTheLoopBreaks(t *testing.T) {
	s, _, js := newListeningStore(t)
	storeThree(t, s)
	stream, err := js.Stream(t.Context(), eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for _, live := range []bool{false, true} {
		for m, err := range s.Read(t.Context(), 0, domain.Filter{Live: live}) {
			if err != nil {
				t.Fatalf("live %v: %v", live, err)
			}
			if m.Sequence != 1 {
				t.Errorf("live %v: first message at %d", live, m.Sequence)
			}
			break
		}
		n := 0
		for range stream.ConsumerNames(t.Context()).Name() {
			n++
		}
		if n != 0 {
			t.Errorf("live %v: %d consumers left after the loop ended", live, n)
		}
	}
}

func TestDurable(t *testing.T) {
	s, _, js := newListeningStore(t)
	a, _ := storeThree(t, s)
	ctx := t.Context()
	const name = "test-durable"
	err := s.CreateDurable(ctx, name, eventstore.DurableConfig{
		Selection: domain.Selection{Types: []domain.EventType{domain.EngagementRecorded}},
		From:      2, AckWait: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Durable(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Stop() }()
	next := func() *eventstore.Delivery {
		t.Helper()
		nctx, cancel := context.WithTimeout(ctx, patience)
		defer cancel()
		m, err := d.Next(nctx)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		return m
	}
	// From 2, recorded events only: 2, then (3 is a signing) the next one.
	m := next()
	if m.Sequence != 2 || m.Err != nil || m.Event.Type != domain.EngagementRecorded {
		t.Fatalf("first delivery %d %s (%v), want 2", m.Sequence, m.Event.Type, m.Err)
	}
	stored := rawMessage(t, js, 2)
	if !bytes.Equal(m.Payload, stored.Data) {
		t.Errorf("payload differs from the stored bytes")
	}
	// Not acknowledged: handed back, it comes again, before anything later.
	mustAppend(t, s, newEvent(newID()), 0) // 4
	if err := m.Nak(); err != nil {
		t.Fatal(err)
	}
	if m := next(); m.Sequence != 2 {
		t.Fatalf("after a nak: delivery %d, want 2 again", m.Sequence)
	} else if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if m := next(); m.Sequence != 4 {
		t.Fatalf("delivery %d, want 4", m.Sequence)
	} else if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	// A message that fails its checks is handed out with its error.
	seq := publishRaw(t, js, "engagements.agreement."+a+".recorded", []byte("not json"))
	if m := next(); m.Sequence != seq || !errors.Is(m.Err, eventstore.ErrUndecodable) || m.Event.EngagementID != a {
		t.Fatalf("delivery %d (%v, engagement %q), want %d undecodable on %s", m.Sequence, m.Err, m.Event.EngagementID, seq, a)
	} else if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}

	// A process stopping hands back the message it holds, then stops: the
	// server hands the message straight out again to the pull still
	// waiting, and Stop hands that back too, so a new binding (another
	// process) gets it at once, well before the minute of AckWait.
	held := mustAppend(t, s, newEvent(newID()), 0)
	if m := next(); m.Sequence != held {
		t.Fatalf("delivery %d, want %d", m.Sequence, held)
	} else if err := m.Nak(); err != nil {
		t.Fatal(err)
	}
	d.Stop()
	if d, err = s.Durable(ctx, name); err != nil {
		t.Fatal(err)
	}
	if m := next(); m.Sequence != held {
		t.Fatalf("after a stop: delivery %d, want %d again", m.Sequence, held)
	} else if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	// Stopped by its ctx ending while it waits, with nothing in flight:
	// nothing is left handed out.
	nctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := d.Next(nctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("next with its ctx cancelled: %v", err)
	}
	if info, err := s.DurableInfo(ctx, name); err != nil || info.Pending != 0 || info.Acknowledged < held {
		t.Errorf("after the stop: %+v (%v), want nothing pending, acknowledged up to %d", info, err, held)
	}

	if err := s.DeleteDurable(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDurable(ctx, name); err != nil {
		t.Errorf("deleting it again: %v, want nil", err)
	}
	if _, err := s.Durable(ctx, name); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("binding a deleted durable: %v, want ErrNotFound", err)
	}
}
