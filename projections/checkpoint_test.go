package projections_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// filled folds a few engagements with corrections, links and a rejected event.
func filled(t *testing.T) (*testProjector, []string) {
	t.Helper()
	p := newTestProjector()
	var seq uint64
	add := func(ev domain.Event) {
		seq++
		p.Handle(seq, ev, nil)
	}
	mou, gap := newID(), newID()
	rec := recorded(mou, domain.KindAgreement, "IOM-WHO MOU", []string{"IOM", "WHO"}, []string{"mou"})
	rec.IdempotencyKey = "new:k1"
	add(rec)
	add(event(mou, domain.KindAgreement, 2, domain.AgreementSigned, `{"signed_on":"1999-01-01"}`))
	add(recorded(gap, domain.KindPolicy, "GAP", []string{"IOM"}, nil))
	add(event(mou, domain.KindAgreement, 3, domain.EngagementCorrected,
		fmt.Sprintf(`{"corrects":%q,"reason":"dash","fields":{"title":"IOM–WHO MOU"}}`, rec.ID)))
	add(event(gap, domain.KindPolicy, 2, domain.EngagementLinked, fmt.Sprintf(`{"target_id":%q,"relation":"references"}`, mou)))
	add(event(gap, domain.KindPolicy, 3, domain.PolicyCommitted, `{"commitment":"too early"}`)) // rejected
	return p, []string{mou, gap}
}

func TestCheckpointRestoresEveryReadModel(t *testing.T) {
	p, ids := filled(t)
	path := filepath.Join(t.TempDir(), "projections.checkpoint")
	seq, err := p.Checkpoint(path)
	if err != nil || seq != 6 {
		t.Fatalf("checkpoint = %d, %v", seq, err)
	}
	q := projections.New(nil)
	q.UseReader(p.mem)
	var asked uint64
	got, err := q.LoadCheckpoint(context.Background(), path, streamOf(askedReader{EventReader: p.mem, asked: &asked}))
	if err != nil || got != 6 || asked != 5 {
		t.Fatalf("load = %d, %v (asked about %d, want the last folded event 5)", got, err, asked)
	}
	same := func(what string, a, b any) {
		t.Helper()
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("%s differs after restore:\n%s\n%s", what, ja, jb)
		}
	}
	for _, id := range ids {
		a, sa, _ := state(p.Projector, id)
		b, sb, _ := state(q, id)
		same("state "+id, a, b)
		if sa != sb {
			t.Errorf("expected sequence %d vs %d", sa, sb)
		}
		ha, _ := p.History(context.Background(), id, domain.Window{})
		hb, _ := q.History(context.Background(), id, domain.Window{})
		same("history", ha, hb)
	}
	f := projections.Filter{Limit: 10, Now: time.Now(), Party: "who"}
	la, _, _ := p.List(context.Background(), f)
	lb, _, _ := q.List(context.Background(), f)
	same("list", la, lb)
	loga, _ := p.Log(context.Background(), projections.LogFilter{Limit: 10})
	logb, _ := q.Log(context.Background(), projections.LogFilter{Limit: 10})
	if len(loga) != 5 {
		t.Errorf("log has %d events, want the 5 folded", len(loga))
	}
	same("log", loga, logb)
	if !reflect.DeepEqual(p.Stats(), q.Stats()) {
		t.Errorf("stats %+v vs %+v", p.Stats(), q.Stats())
	}
	if r, ok := q.Idempotent("new:k1"); !ok || r.EngagementID != ids[0] {
		t.Errorf("idempotency key lost: %+v %v", r, ok)
	}
	// The restored state keeps what corrections need.
	e, _, _ := state(q, ids[0])
	if e.Title() != "IOM–WHO MOU" {
		t.Errorf("title %q", e.Title())
	}
	// Folding goes on from where the checkpoint was.
	q.Handle(7, event(ids[0], domain.KindAgreement, 4, domain.AgreementRenewed, `{"renewed_on":"2019-01-01"}`), nil)
	if e, _, _ := state(q, ids[0]); e.Version() != 4 || e.RenewedOn() != "2019-01-01" {
		t.Errorf("after a new event: %+v", e)
	}
}

func TestUnusableCheckpointsAreRefused(t *testing.T) {
	p, _ := filled(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "cp")
	if _, err := p.Checkpoint(path); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a checkpoint"), 0o600); err != nil {
		t.Fatal(err)
	}
	older := filepath.Join(dir, "older")
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(struct{ Version int }{projections.CheckpointVersion - 1}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(older, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		belongs bool
	}{
		{"missing file", filepath.Join(dir, "none"), true},
		{"an older version", older, true},
		{"garbage", garbage, true},
		{"another stream", path, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := projections.New(nil)
			stream := memReader{}
			if tt.belongs {
				stream = p.mem
			}
			_, err := q.LoadCheckpoint(context.Background(), tt.path, streamOf(stream))
			if !errors.Is(err, projections.ErrNoCheckpoint) {
				t.Errorf("err = %v, want ErrNoCheckpoint", err)
			}
			if q.Applied() != 0 || q.Count() != 0 {
				t.Errorf("projector not left empty: applied %d, %d engagements", q.Applied(), q.Count())
			}
		})
	}
}

// A checkpoint taken while events keep being folded is one consistent cut:
// every engagement holds exactly the events up to the saved sequence, so
// folding on from there neither repeats nor skips one.
func TestCheckpointWhileFoldingIsConsistent(t *testing.T) {
	const engagements, rounds = 50, 40
	var events []domain.Event
	ids := make([]string, engagements)
	for i := range ids {
		ids[i] = newID()
		events = append(events, recorded(ids[i], domain.KindAgreement, fmt.Sprintf("MOU %d", i), []string{"IOM", "WHO"}, nil))
	}
	for v := 2; v <= rounds; v++ {
		for _, id := range ids {
			events = append(events, event(id, domain.KindAgreement, v, domain.EngagementNoted, fmt.Sprintf(`{"note":"n%d"}`, v)))
		}
	}
	stream := memReader{}
	for i, ev := range events {
		stream[uint64(i+1)] = ev
	}
	p := projections.New(nil)
	dir := t.TempDir()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, ev := range events {
			p.Handle(uint64(i+1), ev, nil)
		}
	}()
	var paths []string
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			path := filepath.Join(dir, fmt.Sprintf("cp%d", i))
			if _, err := p.Checkpoint(path); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, path)
			continue
		}
		break
	}
	if len(paths) == 0 {
		t.Fatal("no checkpoint taken while folding")
	}
	for _, path := range paths {
		q := projections.New(nil)
		applied, err := q.LoadCheckpoint(context.Background(), path, streamOf(stream))
		if err != nil {
			t.Fatal(err)
		}
		for i := applied; i < uint64(len(events)); i++ {
			q.Handle(i+1, events[i], nil)
		}
		if st := q.Stats(); st.Rejected != 0 || st.Events != uint64(len(events)) {
			t.Fatalf("checkpoint at %d, folded on: %+v (a torn cut repeats or skips events)", applied, st)
		}
		for _, id := range ids {
			e, seq, _ := state(q, id)
			if e.Version() != rounds || seq != p.Applied()-uint64(engagements)+uint64(slices.Index(ids, id))+1 {
				t.Fatalf("checkpoint at %d: %s at version %d, expected sequence %d", applied, id, e.Version(), seq)
			}
		}
	}
	t.Logf("%d checkpoints while folding %d events", len(paths), len(events))
}

// askedReader notes the sequence a checkpoint's check asks about.
type askedReader struct {
	projections.EventReader
	asked *uint64
}

func (r askedReader) Event(ctx context.Context, seq uint64) (domain.Event, error) {
	*r.asked = seq
	return r.EventReader.Event(ctx, seq)
}
