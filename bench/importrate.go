package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// importEvents and importEngagements size import_rate: what a migration of
// years of records sends through POST /v1/batches (engagements imports
// through it); importInFlight is how many batches are sent at once.
var (
	importEvents      = 100_000
	importEngagements = 10_000
	importInFlight    = 4
)

// batchSize is the most commands a batch takes (api.MaxBatchCommands).
const batchSize = 1000

// batchResult is what the bench reads of one command's result.
type batchResult struct {
	Status       int    `json:"status"`
	EngagementID string `json:"engagement_id"`
}

// postBatch sends lines as one NDJSON batch and returns its results.
func postBatch(ctx context.Context, base, token string, lines []string) ([]batchResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/batches",
		strings.NewReader(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		return nil, err
	}
	req.Header = authHeader(token, false)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST /v1/batches: %s: %.200s", resp.Status, body)
	}
	var answer struct {
		Results []batchResult `json:"results"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&answer); err != nil {
		return nil, err
	}
	if len(answer.Results) != len(lines) {
		return nil, fmt.Errorf("POST /v1/batches: %d results for %d commands", len(answer.Results), len(lines))
	}
	return answer.Results, nil
}

// importRate records importEngagements engagements, then notes up to
// importEvents events in all, through POST /v1/batches with an idempotency
// key per command (as engagements import sends them), importInFlight
// batches at a time; it returns the events stored per second and how many
// commands were refused.
func importRate(ctx context.Context, base, token string) (rate float64, stored, refused int, elapsed time.Duration, err error) {
	send := func(batches [][]string, onResult func(batch int, r []batchResult)) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(importInFlight)
		for i, lines := range batches {
			g.Go(func() error {
				r, err := postBatch(gctx, base, token, lines)
				if err == nil {
					onResult(i, r)
				}
				return err
			})
		}
		return g.Wait()
	}
	began := time.Now()
	var creates [][]string
	for i := 0; i < importEngagements; i += batchSize {
		var lines []string
		for j := i; j < min(i+batchSize, importEngagements); j++ {
			lines = append(lines, fmt.Sprintf(`{"op":"create","idempotency_key":"import-%d","kind":"agreement",`+
				`"title":"Imported agreement %d","parties":["IOM","WHO"],"occurred_at":"2010-01-01"}`, j, j))
		}
		creates = append(creates, lines)
	}
	ids := make([][]string, len(creates))
	var results = make([][]batchResult, len(creates))
	if err := send(creates, func(b int, r []batchResult) { results[b] = r }); err != nil {
		return 0, 0, 0, 0, err
	}
	for b, rs := range results {
		for _, r := range rs {
			if r.Status == http.StatusCreated && r.EngagementID != "" {
				ids[b] = append(ids[b], r.EngagementID)
				stored++
			} else {
				refused++
			}
		}
	}
	var all []string
	for _, part := range ids {
		all = append(all, part...)
	}
	if len(all) == 0 {
		return 0, stored, refused, 0, fmt.Errorf("no engagement was created")
	}
	// The notes, round-robin over the engagements: each batch spans
	// batchSize engagements, so its commands run concurrently.
	var appends [][]string
	var lines []string
	for k := 0; k < importEvents-len(all); k++ {
		lines = append(lines, fmt.Sprintf(`{"op":"append","engagement_id":%q,"idempotency_key":"import-note-%d",`+
			`"type":"engagement.noted","occurred_at":"2011-01-01","data":{"note":"Imported note %d."}}`, all[k%len(all)], k, k))
		if len(lines) == batchSize {
			appends, lines = append(appends, lines), nil
		}
	}
	if len(lines) > 0 {
		appends = append(appends, lines)
	}
	counts := make([][2]int, len(appends))
	if err := send(appends, func(b int, r []batchResult) {
		for _, x := range r {
			if x.Status == http.StatusCreated {
				counts[b][0]++
			} else {
				counts[b][1]++
			}
		}
	}); err != nil {
		return 0, stored, refused, 0, err
	}
	for _, c := range counts {
		stored += c[0]
		refused += c[1]
	}
	elapsed = time.Since(began)
	return float64(stored) / elapsed.Seconds(), stored, refused, elapsed, nil
}

func init() {
	flag.IntVar(&importEvents, "import-events", importEvents, "events import_rate sends through POST /v1/batches")
	flag.IntVar(&importEngagements, "import-engagements", importEngagements, "engagements those events are spread over")
	flag.IntVar(&importInFlight, "import-in-flight", importInFlight, "batches import_rate sends at once")
}
