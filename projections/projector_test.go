package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memReader is an in-memory stand-in, of our own, for the store's lookup by
// sequence: it returns the events a test handed to the projector.
type memReader map[uint64]domain.Event

func (m memReader) Event(_ context.Context, seq uint64) (domain.Event, error) {
	ev, ok := m[seq]
	if !ok {
		return domain.Event{}, domain.ErrNotFound
	}
	ev.Sequence = seq
	return ev, nil
}

func (m memReader) Read(_ context.Context, after uint64, f domain.Filter) iter.Seq2[domain.Message, error] {
	return func(yield func(domain.Message, error) bool) {
		seqs := slices.Sorted(maps.Keys(m))
		for _, seq := range seqs {
			ev := m[seq]
			if seq <= after || f.Kind != "" && ev.Kind != f.Kind || len(f.Types) > 0 && !slices.Contains(f.Types, ev.Type) {
				continue
			}
			ev.Sequence = seq
			if !yield(domain.Message{Sequence: seq, Event: ev}, nil) {
				return
			}
		}
	}
}

// testProjector records what it is handed, so history can be read back.
type testProjector struct {
	*projections.Projector
	mem memReader
}

func newTestProjector() *testProjector {
	p := &testProjector{Projector: projections.New(nil), mem: memReader{}}
	p.UseReader(p.mem)
	return p
}

func (p *testProjector) Handle(seq uint64, ev domain.Event, err error) {
	if err == nil {
		p.mem[seq] = ev
	}
	p.Projector.Handle(seq, ev, err)
}

// state is the engagement's current state (a copy) and the expected
// sequence of its next append.
func state(p *projections.Projector, id string) (*domain.Engagement, uint64, bool) {
	var e *domain.Engagement
	var last uint64
	ok := p.Read(id, func(s *domain.Engagement, l uint64) { e, last = s.Clone(), l })
	return e, last, ok
}

// streamOf delivers m as the stream a checkpoint is checked against.
func streamOf(m projections.EventReader) <-chan projections.EventReader {
	ch := make(chan projections.EventReader, 1)
	ch <- m
	return ch
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// recorded builds engagement.recorded for a new engagement.
func recorded(id string, kind domain.Kind, title string, parties []string, tags []string) domain.Event {
	data := map[string]any{"kind": kind, "title": title, "parties": parties, "tags": tags}
	if kind == domain.KindPolicy {
		data["instrument"] = "framework"
	}
	raw, _ := json.Marshal(data)
	return event(id, kind, 1, domain.EngagementRecorded, string(raw))
}

func event(id string, kind domain.Kind, version int, t domain.EventType, data string) domain.Event {
	return domain.Event{ID: newID(), Type: t, EngagementID: id, Kind: kind, Version: version,
		OccurredAt: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), RecordedAt: time.Now(), Actor: "test",
		Data: json.RawMessage(data)}
}

func TestBadEventsAreCountedAndNeverBlockLaterOnes(t *testing.T) {
	p := newTestProjector()
	id := newID()
	p.Handle(1, recorded(id, domain.KindAgreement, "MOU", []string{"IOM"}, nil), nil)
	p.Handle(2, domain.Event{}, fmt.Errorf("garbage: %w", eventstore.ErrUndecodable))
	// Renewing a draft breaks the rules: rejected, state unchanged.
	p.Handle(3, event(id, domain.KindAgreement, 2, domain.AgreementRenewed, `{"renewed_on":"2019-01-01"}`), nil)
	p.Handle(4, event(id, domain.KindAgreement, 2, domain.AgreementSigned, `{"signed_on":"2019-01-01"}`), nil)
	p.Handle(4, event(id, domain.KindAgreement, 3, domain.EngagementNoted, `{"note":"repeat of 4"}`), nil) // a repeat is ignored

	st := p.Stats()
	if st.Applied != 4 || st.Events != 2 || st.Rejected != 1 || st.Undecodable != 1 {
		t.Errorf("stats = %+v, want applied 4, events 2, rejected 1, undecodable 1", st)
	}
	e, expected, ok := state(p.Projector, id)
	if !ok || e.Status() != domain.StatusActive || e.Version() != 2 {
		t.Fatalf("state = %+v (ok %v), want active version 2", e, ok)
	}
	if expected != 4 {
		t.Errorf("expected sequence = %d, want 4", expected)
	}
	h, _ := p.History(context.Background(), id, domain.Window{})
	if len(h) != 2 || h[0].Sequence != 1 || h[1].Sequence != 4 {
		t.Errorf("history sequences = %v, want [1 4]", h)
	}
	if err := p.WaitFor(context.Background(), 4); err != nil {
		t.Errorf("WaitFor(4) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.WaitFor(ctx, 5); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor(5) on a cancelled context = %v, want context.Canceled", err)
	}
}

func TestRejectedEventStillMovesTheExpectedSequence(t *testing.T) {
	p := projections.New(nil)
	id := newID()
	p.Handle(1, recorded(id, domain.KindMeeting, "HLM", []string{"IOM"}, nil), nil)
	p.Handle(2, event(id, domain.KindMeeting, 2, domain.MeetingConcluded, `{}`), nil) // forged: not attended
	_, expected, _ := state(p, id)
	if expected != 2 {
		t.Errorf("expected sequence = %d, want 2 (the subject's latest message)", expected)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	p := projections.New(nil)
	var seq uint64
	add := func(ev domain.Event) {
		seq++
		p.Handle(seq, ev, nil)
	}
	mou, gap, hlm := newID(), newID(), newID()
	add(recorded(mou, domain.KindAgreement, "IOM–WHO MOU", []string{"IOM", "WHO"}, []string{"mou"}))
	add(event(mou, domain.KindAgreement, 2, domain.AgreementSigned, `{"signed_on":"1999-01-01","expires_on":"2000-01-01"}`))
	add(recorded(gap, domain.KindPolicy, "Global Action Plan", []string{"IOM", "WHO"}, []string{"health"}))
	add(recorded(hlm, domain.KindMeeting, "UNGA HLM on TB", []string{"IOM", "UN"}, []string{"health", "tb"}))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	tests := []struct {
		name string
		f    projections.Filter
		want []string
	}{
		{"all", projections.Filter{}, []string{mou, gap, hlm}},
		{"kind", projections.Filter{Kind: domain.KindPolicy}, []string{gap}},
		{"derived expired status", projections.Filter{Status: domain.StatusExpired}, []string{mou}},
		{"active excludes the expired", projections.Filter{Status: domain.StatusActive}, nil},
		{"party, any case", projections.Filter{Party: "who"}, []string{mou, gap}},
		{"tag", projections.Filter{Tag: "HEALTH"}, []string{gap, hlm}},
		{"text", projections.Filter{Q: "action"}, []string{gap}},
		{"text in parties", projections.Filter{Q: "un"}, []string{hlm}},
		{"combined", projections.Filter{Party: "IOM", Tag: "tb"}, []string{hlm}},
		{"nothing", projections.Filter{Party: "UNICEF"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.Limit, tt.f.Now = 10, now
			items, more, _ := p.List(context.Background(), tt.f)
			var got []string
			for _, e := range items {
				got = append(got, e.ID())
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || more {
				t.Errorf("got %v (more %v), want %v", got, more, tt.want)
			}
		})
	}

	var all []string
	f := projections.Filter{Limit: 2, Now: now}
	for page := 0; page < 5; page++ {
		items, more, _ := p.List(context.Background(), f)
		for _, e := range items {
			all = append(all, e.ID())
		}
		if !more {
			break
		}
		f.After = items[len(items)-1].ID()
	}
	if fmt.Sprint(all) != fmt.Sprint([]string{mou, gap, hlm}) {
		t.Errorf("paging: %v", all)
	}
}

func TestStateIsACopy(t *testing.T) {
	p := projections.New(nil)
	id := newID()
	p.Handle(1, recorded(id, domain.KindInitiative, "GOARN", []string{"IOM"}, []string{"x"}), nil)
	e, _ := p.Get(context.Background(), id, domain.Window{})
	e.Parties()[0] = "changed" // (a reader cannot set a field such as Title at all)
	again, _ := p.Get(context.Background(), id, domain.Window{})
	if again.Parties()[0] != "IOM" || again.Title() != "GOARN" {
		t.Errorf("a reader's change leaked into the projection: %+v", again)
	}
}

// TestRunFollowsTheStream runs the projector against a real embedded
// nats-server: it catches up from the start and then follows live appends.
func TestRunFollowsTheStream(t *testing.T) {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	id := newID()
	seq, _, err := store.Append(ctx, recorded(id, domain.KindAgreement, "MOU", []string{"IOM"}, nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	p := projections.New(nil)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- p.Run(runCtx, store) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	}()
	first, err := store.Event(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	signed := event(id, domain.KindAgreement, 2, domain.AgreementSigned, `{"signed_on":"2019-01-01"}`)
	signed.PrevHash = first.Hash
	seq2, _, err := store.Append(ctx, signed, seq)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := p.WaitFor(wctx, seq2); err != nil {
		t.Fatal(err)
	}
	e, _ := p.Get(ctx, id, domain.Window{})
	if e.Status() != domain.StatusActive || e.Sequence() != seq2 {
		t.Errorf("state = %s at %d, want active at %d", e.Status(), e.Sequence(), seq2)
	}
}

func TestIdempotencyKeysAreForgottenAfterTheDuplicateWindow(t *testing.T) {
	p := projections.New(nil)
	old, recent := newID(), newID()
	first := recorded(old, domain.KindInitiative, "Old", []string{"IOM"}, nil)
	first.RecordedAt, first.IdempotencyKey = time.Now().Add(-48*time.Hour), "maria:new:old-key"
	p.Handle(1, first, nil)
	second := recorded(recent, domain.KindInitiative, "Recent", []string{"IOM"}, nil)
	second.IdempotencyKey = "maria:new:recent-key"
	p.Handle(2, second, nil)
	if _, ok := p.Idempotent("maria:new:old-key"); !ok {
		t.Fatal("a key is forgotten before any pruning")
	}
	// Pruning runs every few thousand folded events.
	for v := 2; v <= 4095; v++ {
		p.Handle(uint64(v+1), event(recent, domain.KindInitiative, v, domain.EngagementNoted, `{"note":"n"}`), nil)
	}
	if st := p.Stats(); st.Events != 4096 {
		t.Fatalf("folded %d events, want 4096", st.Events)
	}
	if _, ok := p.Idempotent("maria:new:old-key"); ok {
		t.Error("a key from two days ago is still remembered")
	}
	if _, ok := p.Idempotent("maria:new:recent-key"); !ok {
		t.Error("a key from today was forgotten")
	}
}

// Each engagement's last change is the folded event of substance that
// occurred last: a note never is one, and a refused event is no change.
func TestLastChange(t *testing.T) {
	p := newTestProjector()
	id := newID()
	on := func(ev domain.Event, day string) domain.Event {
		ev.OccurredAt, _ = time.Parse(time.DateOnly, day)
		return ev
	}
	last := func() projections.LastChange {
		t.Helper()
		items, _, err := p.List(context.Background(), projections.Filter{Limit: 1})
		if err != nil || len(items) != 1 {
			t.Fatalf("list: %v, %v", items, err)
		}
		return items[0].LastChange
	}
	p.Handle(1, on(recorded(id, domain.KindAgreement, "MOU", []string{"IOM"}, nil), "1999-01-01"), nil)
	if got := last(); got.Type != domain.EngagementRecorded {
		t.Errorf("after recording: %+v", got)
	}
	p.Handle(2, on(event(id, domain.KindAgreement, 2, domain.AgreementSigned, `{"signed_on":"1999-05-01"}`), "1999-05-01"), nil)
	p.Handle(3, on(event(id, domain.KindAgreement, 3, domain.EngagementNoted, `{"note":"why"}`), "1999-05-01"), nil)
	if got := last(); got.Type != domain.AgreementSigned || got.OccurredAt.Format(time.DateOnly) != "1999-05-01" {
		t.Errorf("a note on the day of the signature: %+v, want the signature", got)
	}
	p.Handle(4, on(event(id, domain.KindAgreement, 4, domain.AgreementRenewed, `{"renewed_on":"1998-01-01"}`), "1998-01-01"), nil)
	if got := last(); got.Type != domain.AgreementSigned {
		t.Errorf("an event that occurred earlier: %+v, want the signature still", got)
	}
	// A note that occurred later is not a change of substance.
	p.Handle(5, on(event(id, domain.KindAgreement, 5, domain.EngagementNoted, `{"note":"later"}`), "2001-01-01"), nil)
	if got := last(); got.Type != domain.AgreementSigned {
		t.Errorf("a later note: %+v, want the signature still", got)
	}
	p.Handle(6, on(event(id, domain.KindAgreement, 2, domain.AgreementRenewed, `{"renewed_on":"2030-01-01"}`), "2030-01-01"), nil) // stale version: refused
	if got := last(); got.Type != domain.AgreementSigned {
		t.Errorf("a refused event: %+v, want the signature still", got)
	}
	// As of a date, the last change within the window: the signature of
	// May came later, the renewal of 1998 occurred before the recording.
	items, _, err := p.List(context.Background(), projections.Filter{Limit: 1,
		Window: domain.Window{AsOf: time.Date(1999, 3, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil || len(items) != 1 || items[0].LastChange.Type != domain.EngagementRecorded {
		t.Errorf("as of 1999-03-01: %+v, %v; want the recording", items, err)
	}
}
