package importer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// BatchSize is how many commands the importer sends in one batch (the
// service takes up to 1000).
const BatchSize = 1000

// Client posts batches to a running service.
type Client struct {
	// URL is the service's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Token is a coordinator's (or an admin's) bearer token.
	Token string
	// HTTP is the client to use; nil means one with a two-minute timeout.
	HTTP *http.Client
}

// Batcher records a batch of commands (POST /v1/batches' commands, at most
// BatchSize) and answers each one's result, in order. Client does it over
// HTTP; the web UI's import page does it in process, on the same command
// path. An error means the batch's outcome is unknown (and the import
// stops): it is safe to send again, every command being keyed.
type Batcher interface {
	Batch(ctx context.Context, cmds []map[string]any) ([]Result, error)
}

// Result is one command's result in a batch's answer.
type Result struct {
	Index        int      `json:"index"`
	Status       int      `json:"status"`
	EngagementID string   `json:"engagement_id"`
	Replayed     bool     `json:"replayed"`
	Problem      *Refusal `json:"problem"`
}

// Refusal is why the service refused a command: its problem+json.
type Refusal struct {
	Title  string       `json:"title"`
	Detail string       `json:"detail"`
	Errors []FieldError `json:"errors"`
}

// FieldError is one field of a refused command and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// maxAttempts bounds the tries of one batch the service answers with 429
// or 503 (safe to repeat: every command carries an idempotency key).
const maxAttempts = 8

// Batch posts commands as one NDJSON batch and returns their results.
func (c *Client) Batch(ctx context.Context, cmds []map[string]any) ([]Result, error) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	for _, cmd := range cmds {
		if err := enc.Encode(cmd); err != nil {
			return nil, err
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/v1/batches",
			bytes.NewReader(body.Bytes()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			var ans struct{ Results []Result }
			if err := json.Unmarshal(b, &ans); err != nil {
				return nil, fmt.Errorf("the service's answer does not decode: %w", err)
			}
			if len(ans.Results) != len(cmds) {
				return nil, fmt.Errorf("the service answered %d results for %d commands", len(ans.Results), len(cmds))
			}
			return ans.Results, nil
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if attempt < maxAttempts {
				if err := pause(ctx, resp.Header.Get("Retry-After"), attempt); err != nil {
					return nil, err
				}
				continue
			}
		}
		var p struct{ Title, Detail string }
		_ = json.Unmarshal(b, &p)
		return nil, fmt.Errorf("POST /v1/batches: %s: %s %s", resp.Status, p.Title, p.Detail)
	}
}

// pause waits as Retry-After says, or a second more each attempt.
func pause(ctx context.Context, retryAfter string, attempt int) error {
	d := time.Duration(attempt) * time.Second
	if n, err := strconv.Atoi(retryAfter); err == nil && n >= 0 && n <= 60 {
		d = time.Duration(n) * time.Second
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Summary is what an import did.
type Summary struct {
	// Recorded engagements and events were stored by this run; Existing
	// ones had been stored by an earlier run (their keys were known).
	Recorded, Existing             int
	EventsRecorded, EventsExisting int
	// Refused commands were refused by the service; NotTried were not
	// sent (or not tried) because an earlier row of their engagement, or
	// the engagement a link names, was refused.
	Refused, NotTried int
	// Problems are the service's refusals, by row.
	Problems []Problem
}

// InFlight is how many batches Import has the service work on at once:
// while one is being stored (its fsync), the next is being decided.
const InFlight = 4

// flight is a batch sent and not yet accounted for.
type flight struct {
	cmds    []map[string]any
	results []Result
	err     error
	done    chan struct{}
}

// send posts f's commands in a goroutine of its own; f.done is closed once
// they are answered.
func (f *flight) send(ctx context.Context, b Batcher) {
	f.done = make(chan struct{})
	if len(f.cmds) == 0 {
		close(f.done)
		return
	}
	go func() {
		defer close(f.done)
		f.results, f.err = b.Batch(ctx, f.cmds)
	}()
}

// Import records the plan through b: the engagements first (their ids are
// needed by their events and by links), then the events, each engagement's
// in the order of the file, up to InFlight batches at a time (a batch
// never holds an engagement that one in flight holds, so each engagement's
// events still go one after another). progress, when set, is told how many
// commands each batch held. The plan must have no problems (run Check
// first). An error means the import stopped: what was stored stays stored,
// and running the file again records the rest.
func Import(ctx context.Context, b Batcher, p *Plan, progress func(n int)) (Summary, error) {
	var s Summary
	if len(p.Problems) > 0 {
		return s, errors.New("the file has problems; fix them first (a dry run lists them)")
	}
	// The creates: independent of one another, InFlight batches at once,
	// accounted for in order.
	ids := make(map[string]string)
	type createBatch struct {
		flight
		chunk []*Engagement
	}
	var creates []*createBatch
	var firstErr error
	account := func(c *createBatch) {
		<-c.done
		if c.err != nil {
			firstErr = cmp.Or(firstErr, c.err)
			return
		}
		done := len(c.chunk)
		for i, r := range c.results {
			e := c.chunk[i]
			switch {
			case r.Status == http.StatusCreated && r.Replayed:
				s.Existing++
			case r.Status == http.StatusCreated:
				s.Recorded++
			default:
				s.Refused++
				s.NotTried += len(e.Events)
				done += len(e.Events)
				s.Problems = append(s.Problems, refusal(e.Row, r, engagementColumn)...)
				continue
			}
			ids[e.Key] = r.EngagementID
		}
		if progress != nil {
			progress(done)
		}
	}
	for start := 0; start < len(p.Engagements) && firstErr == nil; start += BatchSize {
		chunk := p.Engagements[start:min(start+BatchSize, len(p.Engagements))]
		c := &createBatch{chunk: chunk}
		c.cmds = make([]map[string]any, len(chunk))
		for i, e := range chunk {
			cmd := map[string]any{"op": "create", "idempotency_key": e.IdempotencyKey}
			for k, v := range e.Body {
				cmd[k] = v
			}
			c.cmds[i] = cmd
		}
		c.send(ctx, b)
		creates = append(creates, c)
		if len(creates) == InFlight {
			account(creates[0])
			creates = creates[1:]
		}
	}
	for _, c := range creates {
		account(c)
	}
	if firstErr != nil {
		SortProblems(s.Problems)
		return s, firstErr
	}
	// The events, in batches of rounds: each round takes the next event of
	// every engagement not in a batch in flight, so that a batch holds as
	// many engagements as it can (the service writes to them concurrently;
	// one engagement's events go one after another) and an engagement's
	// events are sent in the order of the file. An engagement whose command
	// was refused has the rest of its events left out of the next batches
	// (within a batch the service does that, with 424).
	type lane struct {
		e    *Engagement
		next int
	}
	type pending struct {
		e  *Engagement
		ev *Event
	}
	type eventBatch struct {
		flight
		batch   []pending
		skipped int
	}
	var lanes []*lane
	for _, e := range p.Engagements {
		if ids[e.Key] != "" && len(e.Events) > 0 {
			lanes = append(lanes, &lane{e: e})
		}
	}
	failed := make(map[string]bool)
	busy := make(map[string]bool) // engagements in a batch in flight
	finish := func(f *eventBatch) {
		<-f.done
		for _, q := range f.batch {
			delete(busy, q.e.Key)
		}
		if f.err != nil {
			// Its outcome is unknown: its engagements get no more events.
			firstErr = cmp.Or(firstErr, f.err)
			return
		}
		for i, r := range f.results {
			q := f.batch[i]
			switch {
			case r.Status == http.StatusCreated && r.Replayed:
				s.EventsExisting++
			case r.Status == http.StatusCreated:
				s.EventsRecorded++
			case r.Status == http.StatusFailedDependency:
				s.NotTried++
				failed[q.e.Key] = true
			default:
				s.Refused++
				failed[q.e.Key] = true
				s.Problems = append(s.Problems, refusal(q.ev.Row, r, eventColumn)...)
			}
		}
		if progress != nil {
			progress(len(f.batch) + f.skipped)
		}
	}
	var inflight []*eventBatch
	for (len(lanes) > 0 && firstErr == nil) || len(inflight) > 0 {
		f := &eventBatch{}
		for len(inflight) < InFlight && firstErr == nil && len(f.batch) < BatchSize {
			var rest []*lane
			took := false
			for _, l := range lanes {
				if len(f.batch) == BatchSize || busy[l.e.Key] {
					rest = append(rest, l)
					continue
				}
				took = true
				if failed[l.e.Key] {
					n := len(l.e.Events) - l.next
					s.NotTried += n
					f.skipped += n
					continue
				}
				ev := l.e.Events[l.next]
				l.next++
				if l.next < len(l.e.Events) {
					rest = append(rest, l)
				}
				cmd, err := appendCommand(ids, ids[l.e.Key], ev)
				if err != nil {
					s.NotTried++
					f.skipped++
					failed[l.e.Key] = true
					s.Problems = append(s.Problems, Problem{Sheet: ev.Row.Sheet, Row: ev.Row.Num,
						Column: ev.Row.Column(ColTarget), Message: err.Error()})
					continue
				}
				f.batch = append(f.batch, pending{l.e, ev})
				f.cmds = append(f.cmds, cmd)
			}
			lanes = rest
			if !took {
				break // every lane left is in flight
			}
		}
		if len(f.batch) > 0 || f.skipped > 0 {
			for _, q := range f.batch {
				busy[q.e.Key] = true
			}
			f.send(ctx, b)
			inflight = append(inflight, f)
			continue
		}
		if len(inflight) == 0 {
			break
		}
		finish(inflight[0])
		inflight = inflight[1:]
	}
	SortProblems(s.Problems)
	return s, firstErr
}

// appendCommand is the batch command that appends ev to the engagement
// id; ids are the recorded engagements' ids by key, for a link's target.
func appendCommand(ids map[string]string, id string, ev *Event) (map[string]any, error) {
	cmd := map[string]any{"op": "append", "engagement_id": id, "idempotency_key": ev.IdempotencyKey, "type": ev.Type}
	if ev.OccurredAt != "" {
		cmd["occurred_at"] = ev.OccurredAt
	}
	data := make(map[string]any, len(ev.Data)+1)
	for k, v := range ev.Data {
		data[k] = v
	}
	if ev.Target != "" {
		target := ev.Target
		if ev.TargetKey {
			if target = ids[ev.Target]; target == "" {
				return nil, errors.New("not recorded: the engagement it links to was refused")
			}
		}
		data["target_id"] = target
	}
	if len(data) > 0 {
		cmd["data"] = data
	}
	return cmd, nil
}

// refusal is the service's refusal of a row's command as problems.
func refusal(r Row, res Result, col func(string) string) []Problem {
	if res.Problem == nil {
		return []Problem{{Sheet: r.Sheet, Row: r.Num, Message: fmt.Sprintf("refused with status %d", res.Status)}}
	}
	if len(res.Problem.Errors) == 0 {
		return []Problem{{Sheet: r.Sheet, Row: r.Num, Message: res.Problem.Title + ": " + res.Problem.Detail}}
	}
	out := make([]Problem, len(res.Problem.Errors))
	for i, fe := range res.Problem.Errors {
		out[i] = Problem{Sheet: r.Sheet, Row: r.Num, Column: r.Column(col(fe.Field)), Message: fe.Message}
	}
	return out
}
