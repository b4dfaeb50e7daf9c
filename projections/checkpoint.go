package projections

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/iom-who/engagements/domain"
)

// CheckpointVersion is the checkpoint file's schema version. Bump it when the
// read models or the domain state change shape: an older file is then
// ignored and the projections are rebuilt from the stream.
const CheckpointVersion = 4

// checkpoint is what a checkpoint file holds.
type checkpoint struct {
	Version int
	Applied uint64
	// LastEventSeq and LastEventID name the last folded event, to check that
	// the file belongs to the stream it is loaded against.
	LastEventSeq uint64
	LastEventID  string
	Engagements  []domain.EngagementSnapshot
	History      map[string][]uint64
	RejectedSeqs []uint64
	CorrectedBy  map[string][]string
	Idempotency  map[string]Result
	LastSeq      map[string]uint64
	Events       uint64
	Rejected     uint64
	Undecodable  uint64
}

// ErrNoCheckpoint means there is no usable checkpoint: none, another
// version, or unreadable. The caller rebuilds from the stream.
var ErrNoCheckpoint = errors.New("no usable checkpoint")

// Checkpoint writes the read models and the last applied sequence to path,
// atomically: a temp file is written and synced, then renamed over path.
// It returns the sequence saved.
func (p *Projector) Checkpoint(path string) (uint64, error) {
	p.mu.RLock()
	cp := checkpoint{
		Version: CheckpointVersion, Applied: p.applied, History: p.history, RejectedSeqs: slices.Collect(maps.Keys(p.rejectedSeqs)),
		CorrectedBy: p.correctedBy, Idempotency: p.idem,
		LastSeq: p.lastSeq, Events: p.events.Load(), Rejected: p.rejected.Load(), Undecodable: p.undecodable.Load(),
	}
	cp.LastEventID, cp.LastEventSeq = p.lastEventID, p.lastEventSeq
	cp.Engagements = make([]domain.EngagementSnapshot, 0, len(p.byID))
	for _, id := range p.order {
		cp.Engagements = append(cp.Engagements, p.byID[id].Snapshot())
	}
	// Encoding under the read lock keeps the maps still while gob walks them;
	// writers wait for the length of one encode.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".checkpoint-*")
	if err != nil {
		p.mu.RUnlock()
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	err = gob.NewEncoder(w).Encode(cp)
	p.mu.RUnlock()
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// LoadCheckpoint fills an empty projector from path. belongs is asked
// whether the stream still holds, at the checkpoint's last folded sequence,
// the event the checkpoint saw (so a file from another stream is never used). On any
// mismatch it returns an error wrapping ErrNoCheckpoint and leaves the
// projector empty.
func (p *Projector) LoadCheckpoint(path string, belongs func(seq uint64, eventID string) bool) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoCheckpoint, err)
	}
	defer f.Close()
	var cp checkpoint
	if err := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20)).Decode(&cp); err != nil {
		return 0, fmt.Errorf("%w: decode %s: %w", ErrNoCheckpoint, path, err)
	}
	if cp.Version != CheckpointVersion {
		return 0, fmt.Errorf("%w: version %d, this build reads %d", ErrNoCheckpoint, cp.Version, CheckpointVersion)
	}
	if cp.LastEventSeq > 0 && !belongs(cp.LastEventSeq, cp.LastEventID) {
		return 0, fmt.Errorf("%w: the stream does not hold event %s at sequence %d", ErrNoCheckpoint, cp.LastEventID, cp.LastEventSeq)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.applied != 0 {
		return 0, errors.New("checkpoint: the projector is not empty")
	}
	for _, s := range cp.Engagements {
		e := domain.Restore(s)
		p.byID[e.ID] = e
		p.order = append(p.order, e.ID)
		p.index(e)
	}
	slices.Sort(p.order)
	p.history = orEmpty(cp.History)
	for _, seq := range cp.RejectedSeqs {
		p.rejectedSeqs[seq] = struct{}{}
	}
	p.lastEventSeq = cp.LastEventSeq
	p.correctedBy = orEmpty(cp.CorrectedBy)
	p.lastEventID = cp.LastEventID
	p.idem = orEmpty(cp.Idempotency)
	p.lastSeq = orEmpty(cp.LastSeq)
	p.events.Store(cp.Events)
	p.rejected.Store(cp.Rejected)
	p.undecodable.Store(cp.Undecodable)
	p.advance(cp.Applied)
	return cp.Applied, nil
}

func orEmpty[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return make(map[K]V)
	}
	return m
}
