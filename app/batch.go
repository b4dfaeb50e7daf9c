package app

import (
	"context"
	"fmt"
	"sync"
)

// MaxBatch is the most commands one batch may hold.
const MaxBatch = 1000

// batchWorkers bounds how many engagements one batch writes to at once: all
// of a full batch, so that the store's group commit can put a batch of
// commands for as many engagements in one atomic batch (it takes up to
// 1000), one fsync for all (with 200, an import's batch of 1000 went as
// five or more; BenchmarkExecuteBatchSpread measures it).
const batchWorkers = MaxBatch

// BatchCommand is one command of a batch.
type BatchCommand struct {
	Command
	// Err, when set, refuses the command before it is tried (it could not
	// be read, say): it is its outcome, and it counts as a refusal for the
	// commands after it for the same engagement.
	Err error
}

// Outcome is what one command of a batch came to.
type Outcome struct {
	Result Result
	// Replayed is true when the command's IdempotencyKey had been used
	// before: Result is the first append's and nothing new was stored.
	Replayed bool
	// Err is why the command was refused (nothing of it stored).
	Err error
}

// DependencyError is the outcome of a command of a batch that was not
// tried because an earlier command for the same engagement was refused.
type DependencyError struct {
	// Index is the position in the batch of the refused command.
	Index int
}

func (e *DependencyError) Error() string {
	return fmt.Sprintf("not tried: command %d, for the same engagement, was refused", e.Index)
}

// ExecuteBatch runs each command through Execute and returns their
// outcomes in the order of cmds.
//
// Commands for one engagement (the same EngagementID) run one after another
// in the order given; once one is refused, the later ones are not tried and
// their outcome is a *DependencyError naming it. Commands for different
// engagements, and those that record new engagements, run concurrently
// (up to batchWorkers at once), so their appends share the store's group
// commits. Each outcome is final: an appended command was acknowledged by
// the stream and is shown by the projection, as with Execute. A batch is
// not atomic: commands for other engagements are stored whatever becomes
// of one engagement's.
func (s *Service) ExecuteBatch(ctx context.Context, cmds []BatchCommand) []Outcome {
	out := make([]Outcome, len(cmds))
	// Each engagement's commands, by index in cmds, in the order of the
	// first one; a new engagement's command is a group of its own.
	var groups [][]int
	byID := make(map[string]int)
	for i, c := range cmds {
		if c.EngagementID == "" {
			groups = append(groups, []int{i})
			continue
		}
		g, ok := byID[c.EngagementID]
		if !ok {
			g = len(groups)
			byID[c.EngagementID] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	// One catch-up for all: the projection then holds every append stored
	// before the batch came, which is what each keyed command, and each
	// command for an engagement recorded a moment ago elsewhere, would
	// otherwise make sure of by itself.
	caughtUp := s.catchUp(ctx) == nil
	sem := make(chan struct{}, batchWorkers)
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.runGroup(ctx, cmds, g, out, caughtUp)
		})
	}
	wg.Wait()
	return out
}

// runGroup runs the commands at indexes g of cmds in order, writing each
// outcome to out; after a refusal the rest are not tried.
func (s *Service) runGroup(ctx context.Context, cmds []BatchCommand, g []int, out []Outcome, caughtUp bool) {
	refused := -1
	for _, i := range g {
		switch {
		case refused >= 0:
			out[i].Err = &DependencyError{Index: refused}
		case cmds[i].Err != nil:
			out[i].Err = cmds[i].Err
		default:
			r, replayed, err := s.execute(ctx, cmds[i].Command, caughtUp)
			out[i] = Outcome{Result: r, Replayed: replayed, Err: err}
		}
		if out[i].Err != nil && refused < 0 {
			refused = i
		}
	}
}
