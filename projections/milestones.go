package projections

import (
	"errors"
	"math"
	"slices"
	"sort"

	"github.com/iom-who/engagements/domain"
)

// milestoneEvery is how many events apart an engagement's milestones are:
// a read within a window folds at most this many events after the last
// milestone inside it, plus those recorded or back-dated out of order.
const milestoneEvery = 64

// milestones is the read model that bounds the cost of a long history
// within a window: for each engagement with at least milestoneEvery events,
// its state after every milestoneEvery-th event, with the largest
// occurred_at and recorded_at of the events up to there. A window that
// holds all of those events starts its fold from the milestone instead of
// the engagement's first event, so an engagement page or portfolio row as
// of a date reads no more than about milestoneEvery events from the
// stream, however long the history is. A milestone keeps the state but not
// the event references, which are a prefix of the engagement's own
// (domain.Engagement.Refs): engagements with few events cost nothing.
type milestones struct {
	byID map[string][]milestone
}

type milestone struct {
	version            int
	occurred, recorded int64 // the largest marks of events 1 … version
	state              domain.EngagementSnapshot
}

func newMilestones() milestones { return milestones{byID: make(map[string][]milestone)} }

// Apply records a milestone when the engagement's marks m (its event just
// folded included) reach a multiple of milestoneEvery; e is its state now.
func (ms *milestones) Apply(id string, e *domain.Engagement, m marks) {
	n := m.len()
	if n == 0 || n%milestoneEvery != 0 {
		return
	}
	list := ms.byID[id]
	occurred, recorded, from := int64(math.MinInt64), int64(math.MinInt64), 0
	if k := len(list); k > 0 {
		occurred, recorded, from = list[k-1].occurred, list[k-1].recorded, list[k-1].version
	}
	for i := from; i < n; i++ {
		occurred, recorded = max(occurred, m.at[2*i]), max(recorded, m.at[2*i+1])
	}
	ms.byID[id] = append(list, milestone{version: n, occurred: occurred, recorded: recorded,
		state: e.MilestoneSnapshot()})
}

// best is the engagement's latest milestone whose events all fall inside
// b. The maxima only grow along the list, so it is a binary search.
func (ms *milestones) best(id string, b bounds) (milestone, bool) {
	list := ms.byID[id]
	i := sort.Search(len(list), func(i int) bool {
		return list[i].occurred > b.occurred || list[i].recorded > b.recorded
	})
	if i == 0 {
		return milestone{}, false
	}
	return list[i-1], true
}

// engagement is the state at the milestone, a copy of its own; now is the
// engagement's current state, whose first event references are the
// milestone's.
func (m milestone) engagement(now *domain.Engagement) *domain.Engagement {
	s := m.state
	s.Events = now.Refs(m.version)
	return domain.Restore(s).Clone()
}

// savedMilestones is some engagements' milestones in the checkpoint.
type savedMilestones struct {
	IDs  []string
	Kept [][]savedMilestone
}

type savedMilestone struct {
	Version            int
	Occurred, Recorded int64
	State              domain.EngagementSnapshot
}

// save takes the milestones: Apply only appends beyond the lengths taken
// here, and a milestone never changes.
func (ms *milestones) save() saving {
	ids := make([]string, 0, len(ms.byID))
	lists := make([][]milestone, 0, len(ms.byID))
	for id, l := range ms.byID {
		ids = append(ids, id)
		lists = append(lists, slices.Clip(l))
	}
	return saving{parts: chunks(len(ids)), part: func(i int) any {
		start, end := chunk(i, len(ids))
		part := savedMilestones{IDs: ids[start:end]}
		for _, l := range lists[start:end] {
			kept := make([]savedMilestone, len(l))
			for j, m := range l {
				kept[j] = savedMilestone{Version: m.version, Occurred: m.occurred, Recorded: m.recorded, State: m.state}
			}
			part.Kept = append(part.Kept, kept)
		}
		return part
	}}
}

func (ms *milestones) load(n int) (loader, error) {
	return &milestonesLoader{ms: ms, parts: make([]savedMilestones, n)}, nil
}

type milestonesLoader struct {
	ms    *milestones
	parts []savedMilestones
}

func (l *milestonesLoader) decode(i int, b []byte) error {
	if err := decodePart(b, &l.parts[i]); err != nil {
		return err
	}
	p := l.parts[i]
	if len(p.IDs) != len(p.Kept) {
		return errors.New("milestones of unequal lengths")
	}
	for _, kept := range p.Kept {
		for j, m := range kept {
			if m.Version != (j+1)*milestoneEvery {
				return errors.New("milestone out of place")
			}
		}
	}
	return nil
}

func (l *milestonesLoader) restore(uint64) {
	ms := newMilestones()
	for _, p := range l.parts {
		for i, id := range p.IDs {
			list := make([]milestone, len(p.Kept[i]))
			for j, m := range p.Kept[i] {
				list[j] = milestone{version: m.Version, occurred: m.Occurred, recorded: m.Recorded, state: m.State}
			}
			ms.byID[id] = list
		}
	}
	*l.ms = ms
}
