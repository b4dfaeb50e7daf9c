package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/iom-who/engagements/domain"
)

// MaxBatch is the most commands one batch may hold.
const MaxBatch = 1000

// batchWorkers bounds how many engagements one batch writes to at once
// when the store takes one append at a time: all
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
// engagements, and those that record new engagements, are appended
// together, so that they share the store's group commits: in rounds (see
// runRounds) when the store takes many appends at once, else each on a
// goroutine of its own (up to batchWorkers at once). Each outcome is final: an appended command was acknowledged by
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
	if bs, ok := s.store.(batchStore); ok && caughtUp {
		s.runRounds(ctx, bs, cmds, groups, out)
		return out
	}
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

// batchStore is a Store that takes many appends at once (eventstore.Store
// is one): AppendAll appends each of evs as Append does, evs[i] expecting
// expected[i], and returns each one's outcome; the engagements are
// distinct.
type batchStore interface {
	AppendAll(ctx context.Context, evs []domain.Event, expected []uint64) (seqs []uint64, duplicates []bool, errs []error)
}

// runRounds runs the groups' commands (as ExecuteBatch does) in rounds:
// the first command of every group, then the second of every group whose
// first was stored, and so on. A round's commands are for distinct
// engagements, so they are decided one after another on this goroutine and
// appended together, with one wait for the projection: the same steps as
// Execute's, without a goroutine and a wait of their own each (which cost
// more than the decisions did). A command that cannot go that way (see
// inRound) goes through execute on a goroutine of its own, during its
// round.
func (s *Service) runRounds(ctx context.Context, bs batchStore, cmds []BatchCommand, groups [][]int, out []Outcome) {
	refused := make([]int, len(groups))
	longest := 0
	for g := range groups {
		refused[g] = -1
		longest = max(longest, len(groups[g]))
	}
	var round, of []int // command indexes, and each one's group
	for pos := range longest {
		round, of = round[:0], of[:0]
		for g, idx := range groups {
			if pos >= len(idx) {
				continue
			}
			i := idx[pos]
			switch {
			case refused[g] >= 0:
				out[i].Err = &DependencyError{Index: refused[g]}
			case cmds[i].Err != nil:
				out[i].Err = cmds[i].Err
				refused[g] = i
			default:
				round, of = append(round, i), append(of, g)
			}
		}
		s.runRound(ctx, bs, cmds, round, out)
		for k, i := range round {
			if out[i].Err != nil {
				refused[of[k]] = i
			}
		}
	}
}

// inRound reports whether cmd may go with a round of runRounds: not a
// type that takes a lock across engagements (links) or may write keys to
// seal personal fields.
func (s *Service) inRound(cmd Command) bool {
	switch {
	case cmd.Type == domain.EngagementLinked || cmd.Type == domain.EngagementCorrected:
		return false
	case s.keys != nil && len(domain.PersonalFields(cmd.Type)) > 0:
		return false
	}
	return true
}

// runRound runs the commands at indexes round of cmds, each for an
// engagement of its own, writing each outcome to out.
func (s *Service) runRound(ctx context.Context, bs batchStore, cmds []BatchCommand, round []int, out []Outcome) {
	if len(round) == 0 {
		return
	}
	var wg sync.WaitGroup
	alone := func(i int, caughtUp bool) {
		wg.Go(func() {
			r, replayed, err := s.execute(ctx, cmds[i].Command, caughtUp)
			out[i] = Outcome{Result: r, Replayed: replayed, Err: err}
		})
	}
	var (
		ready    = make([]int, 0, len(round)) // indexes of the commands decided here
		writes   = make([]write, 0, len(round))
		gates    = make([]*gate, 0, len(round))
		evs      = make([]domain.Event, 0, len(round))
		expected = make([]uint64, 0, len(round))
	)
	for _, i := range round {
		cmd := cmds[i].Command
		if !s.inRound(cmd) {
			alone(i, true)
			continue
		}
		w, r, replayed, err := s.prepare(ctx, cmd, true)
		if replayed || err != nil {
			out[i] = Outcome{Result: r, Replayed: replayed, Err: err}
			continue
		}
		var g *gate
		if cmd.EngagementID != "" {
			var ok bool
			if g, ok = s.gates.tryEnter(cmd.EngagementID); !ok {
				alone(i, true) // another append to it is under way: queue behind it
				continue
			}
		}
		ev, exp, seal, err := s.load(ctx, &w)
		if err == nil {
			err = s.seal(ctx, &ev, seal)
		}
		if err != nil {
			if g != nil {
				s.gates.leave(cmd.EngagementID, g)
			}
			out[i].Err = err
			continue
		}
		ev.IdempotencyKey = w.key
		ready, writes, gates = append(ready, i), append(writes, w), append(gates, g)
		evs, expected = append(evs, ev), append(expected, exp)
	}
	var seqs []uint64
	var dups []bool
	var errs []error
	if len(evs) > 0 {
		seqs, dups, errs = bs.AppendAll(ctx, evs, expected)
	}
	var last uint64
	for k := range ready {
		if errs[k] == nil {
			last = max(last, seqs[k])
		}
	}
	// One wait for the projection: it applies in stream order, so once it
	// shows the last of the round it shows every one.
	waited := s.waitFor(ctx, last)
	for k, i := range ready {
		w, id := writes[k], cmds[i].EngagementID
		switch err := errs[k]; {
		case errors.Is(err, domain.ErrConflict):
			// Another instance appended to the engagement since the
			// projection showed it. With If-Match, or for a new
			// engagement, that is the answer (again says which);
			// otherwise Execute tries again, on a goroutine of its own,
			// from the state and the idempotency keys as they are now.
			if gates[k] != nil {
				s.gates.leave(id, gates[k])
				gates[k] = nil
			}
			if w.cmd.IfMatch > 0 || w.newID != "" {
				out[i].Err = s.again(ctx, &w, expected[k], err)
			} else {
				alone(i, false)
			}
		case err != nil:
			out[i].Err = err
		case waited != nil:
			out[i].Err = waited
		default:
			r, err := s.written(ctx, w.key, evs[k], seqs[k], dups[k])
			out[i] = Outcome{Result: r, Replayed: dups[k], Err: err}
		}
		if gates[k] != nil {
			s.gates.leave(id, gates[k])
		}
	}
	wg.Wait()
}
