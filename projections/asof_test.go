package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// history is a generated stream: what the projector was handed and, per
// engagement, the events the domain accepted (what a replay folds).
type history struct {
	rng      *rand.Rand
	p        *testProjector
	seq      uint64
	ids      []string // in creation order (UUIDv7)
	folded   map[string][]domain.Event
	state    map[string]*domain.Engagement
	clock    time.Time // the system's clock: recorded_at
	times    []time.Time
	rejected int
	// fewer makes new engagements rarer (one step in 6+fewer): long
	// histories, with milestones.
	fewer int
}

var kinds = []domain.Kind{domain.KindAgreement, domain.KindPolicy, domain.KindInitiative, domain.KindMeeting}

// dataFor is valid-looking data for t (the domain may still refuse it in
// the engagement's state: then the event is handed over and rejected).
func (h *history) dataFor(id string, t domain.EventType) string {
	r := h.rng
	day := func() string {
		return time.Date(2015+r.IntN(10), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format(domain.DateLayout)
	}
	switch t {
	case domain.EngagementAmended:
		if r.IntN(2) == 0 {
			return fmt.Sprintf(`{"title":"Amended %d"}`, r.IntN(1000))
		}
		return fmt.Sprintf(`{"parties":["IOM",%q]}`, []string{"WHO", "UNHCR", "UNICEF"}[r.IntN(3)])
	case domain.EngagementLinked:
		return fmt.Sprintf(`{"target_id":%q,"relation":"references"}`, h.ids[r.IntN(len(h.ids))])
	case domain.EngagementNoted:
		return fmt.Sprintf(`{"note":"Note %d"}`, r.IntN(1000))
	case domain.EngagementCorrected:
		evs := h.folded[id]
		target := evs[r.IntN(len(evs))]
		fields := map[domain.EventType]string{
			domain.EngagementRecorded: fmt.Sprintf(`{"title":"Corrected %d"}`, r.IntN(1000)),
			domain.EngagementNoted:    `{"note":"Corrected note"}`,
			domain.AgreementSigned:    fmt.Sprintf(`{"expires_on":%q}`, day()),
			domain.PolicyAdopted:      `{"adopted_by":"UNGA"}`,
			domain.InitiativeJoined:   `{"role":"observer"}`,
		}[target.Type]
		if fields == "" {
			fields = `{"title":"x"}` // refused: not a field of that type
		}
		return fmt.Sprintf(`{"corrects":%q,"reason":"typo","fields":%s}`, target.ID, fields)
	case domain.AgreementSigned:
		return fmt.Sprintf(`{"signed_on":%q,"expires_on":%q}`, day(), day())
	case domain.AgreementRenewed:
		return fmt.Sprintf(`{"renewed_on":%q,"expires_on":%q}`, day(), day())
	case domain.AgreementTerminated, domain.InitiativeLeft:
		return `{"reason":"mandate ended"}`
	case domain.PolicyContributed:
		return `{"contribution":"drafted paragraph 3","role":"co-author"}`
	case domain.PolicyAdopted:
		return `{"adopted_by":"WHA"}`
	case domain.PolicyCommitted:
		return `{"commitment":"train 100 health workers"}`
	case domain.InitiativeJoined:
		return `{"role":"member"}`
	case domain.InitiativeRoleChanged:
		return `{"role":"chair"}`
	case domain.MeetingScheduled:
		return fmt.Sprintf(`{"starts_on":%q}`, day())
	case domain.MeetingAttended:
		return `{"role":"speaker"}`
	case domain.MeetingConcluded:
		return `{"outcome":"resolution adopted"}`
	}
	return `{}`
}

// step hands the projector one more event: a new engagement, or an event
// of an existing one, back-dated or recorded late at times, and now and
// then one the rules refuse.
func (h *history) step() {
	r := h.rng
	// The system clock mostly moves on, sometimes stands still (events
	// recorded in the same nanosecond) and sometimes steps back a little (a
	// cluster node's clock), so recorded_at is not monotone in the stream.
	switch r.IntN(10) {
	case 0:
	case 1:
		h.clock = h.clock.Add(-time.Duration(r.IntN(3600)) * time.Second)
	default:
		h.clock = h.clock.Add(time.Duration(1+r.IntN(72*3600)) * time.Second)
	}
	recordedAt := h.clock
	// occurred_at: usually just before it was recorded, often back-dated
	// by years (recorded late), never in the future.
	occurredAt := recordedAt.Add(-time.Duration(r.IntN(3600)) * time.Second)
	if r.IntN(3) == 0 {
		occurredAt = recordedAt.Add(-time.Duration(r.IntN(4*365*24)) * time.Hour)
	}
	var id string
	var kind domain.Kind
	var typ domain.EventType
	var data string
	if len(h.ids) == 0 || r.IntN(6+h.fewer) == 0 {
		id, kind, typ = newID(), kinds[r.IntN(len(kinds))], domain.EngagementRecorded
		raw, _ := json.Marshal(map[string]any{"kind": kind, "title": fmt.Sprintf("Engagement %d", len(h.ids)),
			"parties": []string{"IOM", []string{"WHO", "UNHCR"}[r.IntN(2)]}, "tags": []string{"t" + fmt.Sprint(r.IntN(3))}})
		data = string(raw)
		if kind == domain.KindPolicy {
			data = strings.Replace(data, `{`, `{"instrument":"framework",`, 1)
		}
	} else {
		id = h.ids[r.IntN(len(h.ids))]
		kind = h.state[id].Kind()
		var types []domain.EventType
		for _, t := range domain.EventTypes {
			if t != domain.EngagementRecorded && t.AppliesTo(kind) {
				types = append(types, t)
			}
		}
		typ = types[r.IntN(len(types))]
		if r.IntN(4) == 0 {
			typ = domain.EngagementCorrected
		} else if h.fewer > 0 && r.IntN(3) != 0 {
			typ = domain.EngagementNoted // a long history is mostly notes
		}
		data = h.dataFor(id, typ)
	}
	e := h.state[id]
	if e == nil {
		e = &domain.Engagement{}
	}
	ev := domain.Event{ID: newID(), Type: typ, EngagementID: id, Kind: kind, Version: e.Version() + 1,
		OccurredAt: occurredAt, RecordedAt: recordedAt, Actor: "gen", Data: json.RawMessage(data),
		PrevHash: e.Hash(), Hash: fmt.Sprintf("%064x", h.seq+1)}
	h.seq++
	h.times = append(h.times, occurredAt, recordedAt)
	next := e.Clone()
	if err := next.Apply(ev); err != nil {
		h.rejected++
	} else {
		if typ == domain.EngagementRecorded {
			h.ids = append(h.ids, id)
		}
		h.state[id] = next
		ev.Sequence = h.seq
		h.folded[id] = append(h.folded[id], ev)
	}
	h.p.Handle(h.seq, ev, nil)
}

// window picks a window: no bound, a bound on one axis or on both, often
// exactly at an event's time or a nanosecond either side of it.
func (h *history) window() domain.Window {
	r := h.rng
	pick := func() time.Time {
		if r.IntN(3) == 0 {
			return time.Time{}
		}
		t := h.times[r.IntN(len(h.times))]
		return t.Add(time.Duration(r.IntN(3)-1) * time.Nanosecond)
	}
	return domain.Window{AsOf: pick(), KnownAt: pick()}
}

// wantLast is the last change of substance within w, as the portfolio
// shows it: notes left out.
func wantLast(events []domain.Event, w domain.Window) projections.LastChange {
	var c projections.LastChange
	for _, ev := range events {
		if !w.Contains(ev) {
			continue
		}
		if ev.Type == domain.EngagementNoted && c.Type != "" {
			continue // a note is not a change of substance
		}
		if c.Type == "" || !ev.OccurredAt.Before(c.OccurredAt) {
			c.Type, c.OccurredAt = ev.Type, ev.OccurredAt
		}
	}
	return c
}

// stateJSON is what the API shows of a state.
func stateJSON(e *domain.Engagement, day time.Time) string {
	v := e.View()
	v.Status = v.StatusAt(day)
	b, _ := json.Marshal(v)
	return fmt.Sprintf("%s v%d %s", b, e.Version(), e.Hash())
}

func eventIDs(events []domain.Event) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i] = ev.ID
	}
	return out
}

// check compares every windowed read of p with a replay of the folded
// events, for n random windows.
func (h *history) check(t *testing.T, p *projections.Projector, n int) {
	t.Helper()
	ctx := context.Background()
	for range n {
		w := h.window()
		day := w.Day(h.clock)
		for _, id := range h.ids {
			events := h.folded[id]
			want, exists := domain.Replay(events, w)
			got, err := p.Get(ctx, id, w)
			if !exists {
				if !errors.Is(err, domain.ErrNotFound) {
					t.Fatalf("Get(%s, %+v) = %v, want not found", id, w, err)
				}
			} else if err != nil || stateJSON(got, day) != stateJSON(want, day) {
				t.Fatalf("Get(%s, %+v) = %v\n got %s\nwant %s", id, w, err, stateJSON(got, day), stateJSON(want, day))
			}
			var in []domain.Event
			for _, ev := range events {
				if w.Contains(ev) {
					in = append(in, ev)
				}
			}
			if !exists {
				in = nil // it had not begun: none of its events are shown
			}
			hist, err := p.History(ctx, id, w)
			if exists != (err == nil) || !slices.Equal(eventIDs(hist), eventIDs(in)) {
				t.Fatalf("History(%s, %+v) = %d events, %v; want %d (exists %v)", id, w, len(hist), err, len(in), exists)
			}
			h.checkPage(t, p, id, w, exists)
		}
		h.checkList(t, p, w, day)
	}
}

// checkPage compares a random page of the history within w.
func (h *history) checkPage(t *testing.T, p *projections.Projector, id string, w domain.Window, exists bool) {
	t.Helper()
	r := h.rng
	events := h.folded[id]
	n := len(events)
	q := projections.HistoryQuery{Window: w, Limit: r.IntN(4), Newest: r.IntN(2) == 0}
	if r.IntN(2) == 0 {
		q.After = r.IntN(n + 1)
	} else if r.IntN(2) == 0 {
		q.Before = 1 + r.IntN(n+1)
	}
	page, err := p.HistoryPage(context.Background(), id, q)
	if !exists {
		if !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("HistoryPage(%s, %+v) = %v, want not found", id, q, err)
		}
		return
	}
	lo, hi := min(q.After, n), n
	if q.Before > 0 {
		hi = min(hi, q.Before-1)
	}
	hi = max(hi, lo)
	var in []domain.Event
	for _, ev := range events[lo:hi] {
		if w.Contains(ev) {
			in = append(in, ev)
		}
	}
	from, to := 0, len(in)
	if q.Limit > 0 && to > q.Limit {
		if q.Newest {
			from = to - q.Limit
		} else {
			to = q.Limit
		}
	}
	older, newer := from > 0 || lo > 0, to < len(in) || hi < n
	if err != nil || !slices.Equal(eventIDs(page.Events), eventIDs(in[from:to])) || page.Older != older ||
		page.Newer != newer || page.Latest != n {
		t.Fatalf("HistoryPage(%s, %+v) = %d events older %v newer %v latest %d, %v; want %d, %v, %v, %d", id, q,
			len(page.Events), page.Older, page.Newer, page.Latest, err, to-from, older, newer, n)
	}
}

// checkList pages through the portfolio within w with a random filter and
// page size, and compares it with a replay of every engagement.
func (h *history) checkList(t *testing.T, p *projections.Projector, w domain.Window, day time.Time) {
	t.Helper()
	r := h.rng
	f := projections.Filter{Window: w, Now: day, Limit: 1 + r.IntN(7)}
	switch r.IntN(6) {
	case 0:
		f.Kind = kinds[r.IntN(len(kinds))]
	case 1:
		f.Status = []domain.Status{domain.StatusActive, domain.StatusExpired, domain.StatusDraft}[r.IntN(3)]
	case 2:
		f.Party = "unhcr"
	case 3:
		f.Q = "amended"
	}
	var want []string
	for _, id := range h.ids {
		e, ok := domain.Replay(h.folded[id], w)
		if !ok || f.Kind != "" && e.Kind() != f.Kind || f.Status != "" && e.StatusAt(day) != f.Status ||
			f.Party != "" && !slices.ContainsFunc(e.Parties(), func(s string) bool { return strings.EqualFold(s, f.Party) }) ||
			f.Q != "" && !strings.Contains(strings.ToLower(e.Title()), f.Q) {
			continue
		}
		last := wantLast(h.folded[id], w)
		want = append(want, fmt.Sprintf("%s %s %s %s", id, stateJSON(e, day), last.Type, last.OccurredAt.Format(time.RFC3339Nano)))
	}
	var got []string
	for pages := 0; ; pages++ {
		items, more, err := p.List(context.Background(), f)
		if err != nil {
			t.Fatalf("List(%+v) = %v", f, err)
		}
		if more && len(items) != f.Limit || pages > len(h.ids) {
			t.Fatalf("List(%+v): %d items and more", f, len(items))
		}
		for _, it := range items {
			got = append(got, fmt.Sprintf("%s %s %s %s", it.ID(), stateJSON(it.Engagement, day), it.LastChange.Type,
				it.LastChange.OccurredAt.Format(time.RFC3339Nano)))
		}
		if !more {
			break
		}
		f.After = items[len(items)-1].ID()
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List within %+v (filter %+v): got %d\n%s\nwant %d\n%s", w, f, len(got), strings.Join(got, "\n"),
			len(want), strings.Join(want, "\n"))
	}
}

// checkReloaded saves a checkpoint of the projection, loads it into a new
// one and compares that with a replay; then it folds steps more events
// into the loaded one (appends to the loaded marks and milestones must not
// overwrite another engagement's) and compares checks windows again.
func (h *history) checkReloaded(t *testing.T, steps, checks int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "projections.checkpoint")
	if _, err := h.p.Checkpoint(path); err != nil {
		t.Fatal(err)
	}
	q := projections.New(nil)
	q.UseReader(h.p.mem)
	if _, err := q.LoadCheckpoint(context.Background(), path, streamOf(h.p.mem)); err != nil {
		t.Fatal(err)
	}
	h.check(t, q, 6)
	inner := h.p.Projector
	h.p.Projector = q
	defer func() { h.p.Projector = inner }()
	for range steps {
		h.step()
	}
	h.check(t, q, checks)
}

// TestWindowedReadsMatchReplay generates histories with back-dated and
// late-recorded events, corrections, refused events and a clock that
// steps back, and compares every read within random windows (as answered
// from the projection's timeline) with a replay of the events, also after
// a checkpoint is loaded and more events are folded on top of it.
func TestWindowedReadsMatchReplay(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			h := &history{rng: rand.New(rand.NewPCG(seed, 18)), p: newTestProjector(),
				folded: map[string][]domain.Event{}, state: map[string]*domain.Engagement{},
				clock: time.Date(2019, 1, 1, 12, 0, 0, 123456789, time.UTC)}
			for range 300 {
				h.step()
			}
			if st := h.p.Stats(); int(st.Rejected) != h.rejected || h.rejected == 0 {
				t.Fatalf("rejected %d, generated %d refused events (want some)", st.Rejected, h.rejected)
			}
			h.check(t, h.p.Projector, 12)

			h.checkReloaded(t, 150, 8)
		})
	}
}

// TestWindowedReadsOfLongHistoriesMatchReplay is the same comparison on a
// few engagements with hundreds of events each, so that windowed reads
// start from milestones; and it counts what they read: a window that holds
// an engagement's first few hundred events reads no more than
// milestoneEvery (64) of them plus what is out of order.
func TestWindowedReadsOfLongHistoriesMatchReplay(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			h := &history{rng: rand.New(rand.NewPCG(seed, 64)), p: newTestProjector(),
				folded: map[string][]domain.Event{}, state: map[string]*domain.Engagement{},
				clock: time.Date(2019, 1, 1, 12, 0, 0, 123456789, time.UTC), fewer: 300}
			for range 900 {
				h.step()
			}
			long := 0
			for _, id := range h.ids {
				if len(h.folded[id]) >= 128 {
					long++
				}
			}
			if long == 0 {
				t.Fatalf("no engagement with 128 events or more (%d engagements, %d rejected): no milestones to start from", len(h.ids), h.rejected)
			}
			h.check(t, h.p.Projector, 10)
			h.checkReloaded(t, 200, 6)
		})
	}
}

// TestWindowOutsideTheTimelineYearsIsReplayed: a bound beyond the years the
// timeline compares exactly is answered by a replay from the stream, with
// the same result.
func TestWindowOutsideTheTimelineYearsIsReplayed(t *testing.T) {
	h := &history{rng: rand.New(rand.NewPCG(7, 18)), p: newTestProjector(),
		folded: map[string][]domain.Event{}, state: map[string]*domain.Engagement{},
		clock: time.Date(2019, 1, 1, 12, 0, 0, 0, time.UTC)}
	for range 60 {
		h.step()
	}
	for _, w := range []domain.Window{
		{AsOf: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)},
		{KnownAt: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)},
		{AsOf: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), KnownAt: h.times[40]},
	} {
		for _, id := range h.ids {
			want, exists := domain.Replay(h.folded[id], w)
			got, err := h.p.Get(context.Background(), id, w)
			if exists != (err == nil) || exists && stateJSON(got, w.Day(h.clock)) != stateJSON(want, w.Day(h.clock)) {
				t.Fatalf("Get(%s, %+v) = %v, exists %v", id, w, err, exists)
			}
		}
	}
}

// batchReader is memReader as a projections.BatchReader, counting the
// batches it was asked for.
type batchReader struct {
	memReader
	batches *int
}

func (r batchReader) Events(ctx context.Context, seqs []uint64) ([]domain.Event, error) {
	*r.batches++
	out := make([]domain.Event, len(seqs))
	for i, seq := range seqs {
		ev, err := r.Event(ctx, seq)
		if err != nil {
			return nil, err
		}
		out[i] = ev
	}
	return out, nil
}

// TestWindowedReadsInBatchesMatchReplay is TestWindowedReadsMatchReplay
// with a reader that fetches many events at once: a list page within a
// window then reads the events of all its engagements in one batch, split
// among them again to fold, and those cached on the way are used by later
// reads (also after more events and corrections were folded): all must
// still give what a replay gives.
func TestWindowedReadsInBatchesMatchReplay(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			h := &history{rng: rand.New(rand.NewPCG(seed, 81)), p: newTestProjector(),
				folded: map[string][]domain.Event{}, state: map[string]*domain.Engagement{},
				clock: time.Date(2019, 1, 1, 12, 0, 0, 123456789, time.UTC)}
			batches := 0
			h.p.UseReader(batchReader{h.p.mem, &batches})
			// Rounds of events between the checks: events cached by one
			// check are corrected, or followed by others, before the next.
			for range 3 {
				for range 100 {
					h.step()
				}
				h.check(t, h.p.Projector, 6)
			}
			if batches == 0 {
				t.Fatal("no batch read: the windowed reads did not use the BatchReader")
			}
			// A page read again within the same window comes from the
			// cache: no event is read from the stream.
			f := projections.Filter{Limit: 100, Window: domain.Window{AsOf: h.times[len(h.times)/2]}, Now: h.clock}
			h.p.UseReader(batchReader{h.p.mem, &batches}) // a new reader: nothing cached
			before := batches
			first, _, err := h.p.List(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			if batches == before {
				t.Fatal("the page read nothing from the stream: no event of it to cache")
			}
			before = batches
			again, _, err := h.p.List(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			if batches != before {
				t.Errorf("the same page again read %d batches from the stream, want 0", batches-before)
			}
			if len(again) != len(first) {
				t.Fatalf("the same page again: %d items, first %d", len(again), len(first))
			}
			for i := range first {
				if a, b := stateJSON(first[i].Engagement, h.clock), stateJSON(again[i].Engagement, h.clock); a != b {
					t.Fatalf("item %d again: %s, first %s", i, b, a)
				}
			}
		})
	}
}
