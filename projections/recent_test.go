package projections_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// Recent serves the latest folded events from memory, in order, and says
// when what was asked for goes back further than it keeps.
func TestRecentChanges(t *testing.T) {
	p := newTestProjector()
	id := newID()
	p.Handle(1, recorded(id, domain.KindAgreement, "MOU", []string{"IOM"}, nil), nil)
	const n = 5000 // more than the memory holds
	for v := 2; v <= n; v++ {
		p.Handle(uint64(v), event(id, domain.KindAgreement, v, domain.EngagementNoted, fmt.Sprintf(`{"note":"n%d"}`, v)), nil)
	}
	// A rejected event (wrong version) is not a change.
	p.Handle(n+1, event(id, domain.KindAgreement, 1, domain.EngagementNoted, `{"note":"stale"}`), nil)

	if _, ok := p.Recent(0, 10); ok {
		t.Error("Recent(0) answered from memory after the first events were overwritten")
	}
	got, ok := p.Recent(n-3, 10)
	if !ok || len(got) != 3 || got[0].Sequence != n-2 || got[2].Sequence != n {
		t.Fatalf("Recent(%d) = %+v, %v; want sequences %d..%d", n-3, got, ok, n-2, n)
	}
	if got[0].EngagementID != id || got[0].Type != domain.EngagementNoted || got[0].Actor != "test" {
		t.Errorf("change %+v", got[0])
	}
	oldest := uint64(n - 4096) // the last sequence no longer kept
	if _, ok := p.Recent(oldest-1, 1); ok {
		t.Errorf("Recent(%d) answered from memory; %d is overwritten", oldest-1, oldest)
	}
	if got, ok := p.Recent(oldest, 2); !ok || len(got) != 2 || got[0].Sequence != oldest+1 || got[1].Sequence != oldest+2 {
		t.Errorf("Recent(%d, 2) = %+v, %v", oldest, got, ok)
	}
	if got, ok := p.Recent(n+1, 10); !ok || len(got) != 0 {
		t.Errorf("Recent past the end = %+v, %v", got, ok)
	}

	// After a checkpoint is loaded, what came before it is not in memory.
	path := filepath.Join(t.TempDir(), "cp")
	if _, err := p.Checkpoint(path); err != nil {
		t.Fatal(err)
	}
	q := projections.New(nil)
	if _, err := q.LoadCheckpoint(context.Background(), path, streamOf(p.mem)); err != nil {
		t.Fatal(err)
	}
	if _, ok := q.Recent(n-3, 10); ok {
		t.Error("a loaded projector answered from memory for events before its checkpoint")
	}
	q.Handle(n+2, event(id, domain.KindAgreement, n+1, domain.EngagementNoted, `{"note":"after"}`), nil)
	if got, ok := q.Recent(n+1, 10); !ok || len(got) != 1 || got[0].Sequence != n+2 {
		t.Errorf("after the checkpoint: %+v, %v", got, ok)
	}
}
