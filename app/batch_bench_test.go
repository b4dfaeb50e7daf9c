package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
)

// BenchmarkExecuteBatchSpread runs batches shaped as an import sends
// them (engagements import, bench's import_rate): 1000 keyed appends, each
// to an engagement of its own, under SyncAlways (group commit).
func BenchmarkExecuteBatchSpread(b *testing.B) {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: b.TempDir(), Sync: eventstore.SyncAlways})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	proj := projections.New(nil)
	proj.UseReader(store)
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = proj.Run(pctx, store) }()
	defer func() { cancel(); <-done }()
	svc := app.New(store, proj, nil)

	creates := make([]app.BatchCommand, app.MaxBatch)
	for i := range creates {
		creates[i] = app.BatchCommand{Command: app.Command{Type: domain.EngagementRecorded, Actor: "bench",
			IdempotencyKey: fmt.Sprint("create-", i),
			Data:           json.RawMessage(fmt.Sprintf(`{"kind":"agreement","title":"Agreement %d","parties":["IOM","WHO"]}`, i))}}
	}
	ids := make([]string, len(creates))
	for i, o := range svc.ExecuteBatch(ctx, creates) {
		if o.Err != nil {
			b.Fatal(o.Err)
		}
		ids[i] = o.Result.EngagementID
	}
	n := 0
	for b.Loop() {
		cmds := make([]app.BatchCommand, len(ids))
		for i, id := range ids {
			n++
			cmds[i] = app.BatchCommand{Command: app.Command{EngagementID: id, Type: domain.EngagementNoted, Actor: "bench",
				IdempotencyKey: fmt.Sprint("note-", n), Data: json.RawMessage(fmt.Sprintf(`{"note":"Imported note %d."}`, n))}}
		}
		for _, o := range svc.ExecuteBatch(ctx, cmds) {
			if o.Err != nil {
				b.Fatal(o.Err)
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
