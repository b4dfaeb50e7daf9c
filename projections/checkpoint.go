package projections

import (
	"bufio"
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/iom-who/engagements/domain"
	"golang.org/x/sync/errgroup"
)

// CheckpointVersion is the checkpoint file's schema version. Bump it when the
// read models or the domain state change shape: an older file is then
// ignored and the projections are rebuilt from the stream.
const CheckpointVersion = 6

// checkpointChunk is how many engagements one independently decodable part
// of a checkpoint holds; the parts are decoded in parallel on load.
const checkpointChunk = 8192

// checkpoint is what a checkpoint file holds.
type checkpoint struct {
	Version int
	Applied uint64
	// LastEventSeq and LastEventID name the last folded event, to check that
	// the file belongs to the stream it is loaded against.
	LastEventSeq uint64
	LastEventID  string
	// Chunks is how many gob encodings of []savedEngagement, in id order,
	// follow the header in the file; each is decoded on its own.
	Chunks int
	// OtherLastSeq holds the subject sequences of engagement ids that only
	// messages the rules refused or could not decode named.
	OtherLastSeq map[string]uint64
	RejectedSeqs []uint64
	CorrectedBy  map[string][]string
	Idempotency  map[string]Result
	Events       uint64
	Rejected     uint64
	Undecodable  uint64
}

// savedEngagement is one engagement with what the projector keeps beside it.
type savedEngagement struct {
	Snapshot domain.EngagementSnapshot
	History  []uint64
	LastSeq  uint64
}

// ErrNoCheckpoint means there is no usable checkpoint: none, another
// version, or unreadable. The caller rebuilds from the stream.
var ErrNoCheckpoint = errors.New("no usable checkpoint")

// Checkpoint writes the read models and the last applied sequence to path,
// atomically: a temp file is written and synced, then renamed over path.
// It returns the sequence saved.
func (p *Projector) Checkpoint(path string) (uint64, error) {
	cp, states, saved := p.snapshot()
	defer p.frozen.Add(-1) // states are not folded into until they are written
	tmp, err := os.CreateTemp(filepath.Dir(path), ".checkpoint-*")
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	enc := gob.NewEncoder(w)
	err = enc.Encode(cp)
	// Each part is encoded on its own (so that loading can decode them in
	// parallel) and written before the next is made.
	var buf bytes.Buffer
	for start := 0; start < len(saved) && err == nil; start += checkpointChunk {
		end := min(start+checkpointChunk, len(saved))
		for i := start; i < end; i++ {
			saved[i].Snapshot = states[i].Snapshot()
		}
		buf.Reset()
		if err = gob.NewEncoder(&buf).Encode(saved[start:end]); err == nil {
			err = enc.Encode(buf.Bytes())
		}
		for i := start; i < end; i++ {
			saved[i].Snapshot = domain.EngagementSnapshot{}
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	return cp.Applied, nil
}

// snapshot takes the read models at one applied sequence: the header, the
// engagements' states and what is saved beside each. Under the read lock it
// copies only pointers and small maps. It leaves the projector frozen
// (Handle folds into copies, so the states it returned stay as they are)
// until the caller calls p.frozen.Add(-1): the states are encoded after
// the lock is released, so writers, and the readers queued behind them,
// never wait for an encode.
func (p *Projector) snapshot() (*checkpoint, []*domain.Engagement, []savedEngagement) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	p.frozen.Add(1)
	cp := &checkpoint{
		Version: CheckpointVersion, Applied: p.applied, LastEventSeq: p.lastEventSeq, LastEventID: p.lastEventID,
		OtherLastSeq: make(map[string]uint64), RejectedSeqs: slices.Collect(maps.Keys(p.rejectedSeqs)),
		CorrectedBy: make(map[string][]string, len(p.correctedBy)), Idempotency: maps.Clone(p.idem),
		Events: p.events.Load(), Rejected: p.rejected.Load(), Undecodable: p.undecodable.Load(),
		Chunks: (len(p.order) + checkpointChunk - 1) / checkpointChunk,
	}
	for id, c := range p.correctedBy {
		cp.CorrectedBy[id] = slices.Clip(c) // Handle only appends
	}
	for id, seq := range p.lastSeq {
		if _, ok := p.byID[id]; !ok {
			cp.OtherLastSeq[id] = seq
		}
	}
	states := make([]*domain.Engagement, len(p.order))
	saved := make([]savedEngagement, len(p.order))
	for i, id := range p.order {
		states[i] = p.byID[id]
		// Handle appends to history beyond this length, never within it.
		saved[i] = savedEngagement{History: slices.Clip(p.history[id]), LastSeq: p.lastSeq[id]}
	}
	return cp, states, saved
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// saved is a checkpoint read from disk and decoded.
type saved struct {
	cp          *checkpoint
	engagements [][]savedEngagement
}

// readCheckpoint reads and decodes the checkpoint at path, each part as
// soon as it is read, in parallel. Errors wrap ErrNoCheckpoint (and os.ErrNotExist when there is
// no file).
func readCheckpoint(path string) (*saved, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoCheckpoint, err)
	}
	defer f.Close()
	var cp checkpoint
	dec := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	if err := dec.Decode(&cp); err != nil {
		return nil, fmt.Errorf("%w: decode %s: %w", ErrNoCheckpoint, path, err)
	}
	if cp.Version != CheckpointVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrNoCheckpoint, cp.Version, CheckpointVersion)
	}
	if cp.Chunks < 0 || cp.Chunks > 1<<24 {
		return nil, fmt.Errorf("%w: %s claims %d parts", ErrNoCheckpoint, path, cp.Chunks)
	}
	s := &saved{cp: &cp, engagements: make([][]savedEngagement, cp.Chunks)}
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range cp.Chunks {
		var chunk []byte
		if err := dec.Decode(&chunk); err != nil {
			_ = g.Wait()
			return nil, fmt.Errorf("%w: read %s part %d: %w", ErrNoCheckpoint, path, i, err)
		}
		g.Go(func() error {
			if err := gob.NewDecoder(bytes.NewReader(chunk)).Decode(&s.engagements[i]); err != nil {
				return fmt.Errorf("%w: decode %s part %d: %w", ErrNoCheckpoint, path, i, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return s, nil
}

// LoadCheckpoint fills an empty projector from path. belongs is asked
// whether the stream still holds, at the checkpoint's last folded
// sequence, the event the checkpoint saw (so a file from another stream is
// never used). On any mismatch it returns an error wrapping ErrNoCheckpoint
// and leaves the projector empty.
//
// With belongs nil the check is the caller's, before the projector is used:
// compare LastEvent with the stream (this lets loading run while the store
// opens).
func (p *Projector) LoadCheckpoint(path string, belongs func(seq uint64, eventID string) bool) (uint64, error) {
	s, err := readCheckpoint(path)
	if err != nil {
		return 0, err
	}
	cp := s.cp
	if belongs != nil && cp.LastEventSeq > 0 && !belongs(cp.LastEventSeq, cp.LastEventID) {
		return 0, fmt.Errorf("%w: the stream does not hold event %s at sequence %d", ErrNoCheckpoint, cp.LastEventID, cp.LastEventSeq)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.applied != 0 {
		return 0, errors.New("checkpoint: the projector is not empty")
	}
	n := 0
	for _, part := range s.engagements {
		n += len(part)
	}
	p.byID = make(map[string]*domain.Engagement, n)
	p.history = make(map[string][]uint64, n)
	p.lastSeq = make(map[string]uint64, n+len(cp.OtherLastSeq))
	p.order = make([]string, 0, n)
	engagements := make([]*domain.Engagement, 0, n)
	for _, part := range s.engagements {
		for _, saved := range part {
			e := domain.Restore(saved.Snapshot)
			engagements = append(engagements, e)
			p.order = append(p.order, e.ID)
		}
	}
	// The indexes and the maps by id are independent: build them side by side.
	var wg sync.WaitGroup
	wg.Go(func() { p.indexAll(engagements) })
	i := 0
	for _, part := range s.engagements {
		for _, saved := range part {
			e := engagements[i]
			i++
			p.byID[e.ID] = e
			p.history[e.ID] = saved.History
			p.lastSeq[e.ID] = saved.LastSeq
		}
	}
	wg.Wait()
	if !slices.IsSorted(p.order) {
		slices.Sort(p.order)
	}
	maps.Copy(p.lastSeq, cp.OtherLastSeq)
	for _, seq := range cp.RejectedSeqs {
		p.rejectedSeqs[seq] = struct{}{}
	}
	p.lastEventSeq = cp.LastEventSeq
	p.correctedBy = orEmpty(cp.CorrectedBy)
	p.lastEventID = cp.LastEventID
	p.idem = orEmpty(cp.Idempotency)
	p.events.Store(cp.Events)
	p.rejected.Store(cp.Rejected)
	p.undecodable.Store(cp.Undecodable)
	p.recentFrom = cp.Applied // what came before is in the log, not in memory
	p.advance(cp.Applied)
	return cp.Applied, nil
}

// indexAll fills the empty indexes with every engagement: the members of
// each set are gathered first, so each map is made once at its size.
func (p *Projector) indexAll(engagements []*domain.Engagement) {
	kinds := map[domain.Kind][]string{}
	statuses := map[domain.Status][]string{}
	parties := map[string][]string{}
	tags := map[string][]string{}
	for _, e := range engagements {
		kinds[e.Kind] = append(kinds[e.Kind], e.ID)
		statuses[e.Status] = append(statuses[e.Status], e.ID)
		for _, party := range e.Parties {
			k := strings.ToLower(party)
			parties[k] = append(parties[k], e.ID)
		}
		for _, tag := range e.Tags {
			k := strings.ToLower(tag)
			tags[k] = append(tags[k], e.ID)
		}
	}
	fill(p.byKind, kinds)
	fill(p.byStatus, statuses)
	fill(p.byParty, parties)
	fill(p.byTag, tags)
}

func fill[K comparable](index map[K]set, members map[K][]string) {
	for k, ids := range members {
		s := make(set, len(ids))
		for _, id := range ids {
			s[id] = struct{}{}
		}
		index[k] = s
	}
}

// LastEvent names the last event folded (sequence 0 if none): what a
// checkpoint loaded without a check must be compared with.
func (p *Projector) LastEvent() (seq uint64, id string) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.lastEventSeq, p.lastEventID
}

func orEmpty[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return make(map[K]V)
	}
	return m
}
