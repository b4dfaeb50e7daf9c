package projections

import (
	"bufio"
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"
)

// CheckpointVersion is the checkpoint file's schema version. Bump it when the
// read models or the domain state change shape: an older file is then
// ignored and the projections are rebuilt from the stream.
const CheckpointVersion = 10

// checkpointChunk is how many entries (engagements, keys) one independently
// decodable part of a section holds; the parts are decoded in parallel on
// load. A part of 256 engagements takes a few milliseconds to encode, the
// span the save runs before it yields (Checkpoint); 8192 loaded no faster
// (measured under the same load: BenchmarkLoadCheckpoint 0.75 s at 8192,
// 0.61 s at 1024, and no worse at 256).
const checkpointChunk = 256

// A checkpoint file is a gob stream: the header, then each section's parts
// in the header's order, each part a gob encoding of its own (as []byte) so
// that it decodes on its own, in parallel with the others, as soon as it is
// read.
type checkpoint struct {
	Version int
	Applied uint64
	// LastEventSeq and LastEventID name the last folded event, to check that
	// the file belongs to the stream it is loaded against.
	LastEventSeq uint64
	LastEventID  string
	Events       uint64
	Rejected     uint64
	Undecodable  uint64
	Sections     []sectionHeader
}

// sectionHeader names one read model's section and counts its parts.
type sectionHeader struct {
	Name  string
	Parts int
}

// section is a read model as the checkpoint sees it.
type section interface {
	// save takes what the model saves. It is called under the projector's
	// read lock and copies only pointers and small things; the parts are
	// encoded after the lock is released.
	save() saving
	// load returns what decodes a section of n parts into the model.
	load(n int) (loader, error)
}

// saving is a read model's section being saved: part returns part i (of
// parts) to encode, and done, called once every part is written, releases
// what save held.
type saving struct {
	parts int
	part  func(i int) any
	done  func()
}

// loader decodes one section and then restores the model from it.
type loader interface {
	// decode decodes part i; parts decode concurrently.
	decode(i int, b []byte) error
	// restore replaces the model with what was decoded, the projector being
	// at sequence applied. It runs under the write lock, concurrently with
	// the other models' restores.
	restore(applied uint64)
}

// sections lists the read models in the order their sections are saved.
func (p *Projector) sections() []struct {
	name string
	s    section
} {
	return []struct {
		name string
		s    section
	}{{"current", &p.current}, {"sequences", &p.sequences}, {"keys", &p.keys}, {"recent", &p.recent},
		{"timeline", &p.timeline}, {"milestones", &p.milestones}}
}

// chunks is how many parts of checkpointChunk hold n entries, and chunk the
// bounds of part i.
func chunks(n int) int { return (n + checkpointChunk - 1) / checkpointChunk }

func chunk(i, n int) (start, end int) {
	return i * checkpointChunk, min((i+1)*checkpointChunk, n)
}

// ErrNoCheckpoint means there is no usable checkpoint: none, another
// version, unreadable, or of another stream. The caller rebuilds from the
// stream.
var ErrNoCheckpoint = errors.New("no usable checkpoint")

// Checkpoint writes the read models and the last applied sequence to path,
// atomically: a temp file is written and synced, then renamed over path.
// It returns the sequence saved.
func (p *Projector) Checkpoint(path string) (uint64, error) {
	cp, savings := p.snapshot()
	defer func() {
		for _, s := range savings {
			if s.done != nil {
				s.done()
			}
		}
	}()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".checkpoint-*")
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	enc := gob.NewEncoder(w)
	err = enc.Encode(cp)
	// Each part is encoded on its own and written before the next is made.
	// Between parts the save yields its P: a save of 100k engagements is
	// about a second of CPU, and without the yields the goroutines that
	// became runnable meanwhile (requests, appends, the embedded server)
	// would wait for the scheduler's 10 ms preemption, twice per request
	// on a 2-core machine (measured: the GETs over a save were most of
	// the bench's p99).
	var buf bytes.Buffer
	for _, s := range savings {
		var parts partEncoder
		for i := 0; i < s.parts && err == nil; i++ {
			var part []byte
			if part, err = parts.encode(&buf, s.part(i)); err == nil {
				err = enc.Encode(part)
			}
			runtime.Gosched()
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

// partEncoder encodes the parts of one section, each a gob stream that
// decodes on its own, with one encoder: what a fresh encoder would write for
// a part is the type definitions it needs, then the value; this one sends
// each definition once, and every part is written with the definitions sent
// so far in front of what the encoder wrote for it. Its buffers are reused
// from part to part (a fresh encoder's grow by doubling each time: at 100k
// engagements that was ~2× the checkpoint's size allocated per save).
// A part's type that holds an interface anywhere is encoded by a fresh
// encoder each time: gob sends the definition of an interface value's
// concrete type inside the value, and only the first time.
type partEncoder struct {
	out  bytes.Buffer
	enc  *gob.Encoder
	defs []byte // the type definitions sent so far, as gob messages
}

// encode returns part v's encoding, in buf (valid until the next call).
func (p *partEncoder) encode(buf *bytes.Buffer, v any) ([]byte, error) {
	if holdsInterface(reflect.TypeOf(v), map[reflect.Type]bool{}) {
		buf.Reset()
		err := gob.NewEncoder(buf).Encode(v)
		return buf.Bytes(), err
	}
	if p.enc == nil {
		p.enc = gob.NewEncoder(&p.out)
	}
	p.out.Reset()
	if err := p.enc.Encode(v); err != nil {
		return nil, err
	}
	b := p.out.Bytes()
	buf.Reset()
	buf.Write(p.defs)
	for len(b) > 0 {
		n, def, err := gobMessage(b)
		if err != nil {
			return nil, err
		}
		if def {
			p.defs = append(p.defs, b[:n]...)
		}
		buf.Write(b[:n])
		b = b[n:]
	}
	return buf.Bytes(), nil
}

// holdsInterface reports whether values of t can hold an interface value.
func holdsInterface(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == nil || seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return holdsInterface(t.Elem(), seen)
	case reflect.Map:
		return holdsInterface(t.Key(), seen) || holdsInterface(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsInterface(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// gobMessage reads the gob message at the start of b: its length in bytes,
// count included, and whether it defines a type (its type id is negative).
func gobMessage(b []byte) (n int, def bool, err error) {
	count, k, err := gobUint(b)
	if err != nil || count == 0 || uint64(len(b)-k) < count {
		return 0, false, errors.New("checkpoint: a gob message cut short")
	}
	id, _, err := gobUint(b[k : k+int(count)])
	if err != nil {
		return 0, false, err
	}
	// A gob int is a uint whose low bit is the sign.
	return k + int(count), id&1 == 1, nil
}

// gobUint decodes the gob unsigned integer at the start of b: one byte
// below 0x80, else the negated count of the big-endian bytes that follow.
func gobUint(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, errors.New("checkpoint: a gob integer cut short")
	}
	if b[0] < 0x80 {
		return uint64(b[0]), 1, nil
	}
	n := -int(int8(b[0]))
	if n > 8 || len(b) < 1+n {
		return 0, 0, errors.New("checkpoint: a gob integer cut short")
	}
	var x uint64
	for _, c := range b[1 : 1+n] {
		x = x<<8 | uint64(c)
	}
	return x, 1 + n, nil
}

// snapshot takes the read models at one applied sequence: the header and
// each model's section. Under the read lock the models copy only pointers
// and small maps; the current model stays frozen (Apply folds into copies,
// so the states it took stay as they are) until its saving is done: the
// states are encoded after the lock is released, so writers, and the
// readers queued behind them, never wait for an encode.
func (p *Projector) snapshot() (*checkpoint, []saving) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	cp := &checkpoint{Version: CheckpointVersion, Applied: p.applied, LastEventSeq: p.lastEventSeq,
		LastEventID: p.lastEventID, Events: p.events.Load(), Rejected: p.rejected.Load(),
		Undecodable: p.undecodable.Load()}
	var savings []saving
	for _, s := range p.sections() {
		sv := s.s.save()
		savings = append(savings, sv)
		cp.Sections = append(cp.Sections, sectionHeader{Name: s.name, Parts: sv.parts})
	}
	return cp, savings
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// LoadCheckpoint fills an empty projector from the checkpoint at path if it
// belongs to the stream: the stream must still hold, at the checkpoint's
// last folded sequence, the event the checkpoint saw, so a file from
// another stream is never used. The file is read and each part decoded, in
// parallel, as soon as it is read; meanwhile stream may still be opening:
// it delivers the stream to check against once it is, and closed without
// one the checkpoint is not used.
//
// Any error wraps ErrNoCheckpoint (and os.ErrNotExist when there is no
// file) and leaves the projector empty.
func (p *Projector) LoadCheckpoint(ctx context.Context, path string, stream <-chan EventReader) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoCheckpoint, err)
	}
	defer f.Close()
	var cp checkpoint
	dec := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	if err := dec.Decode(&cp); err != nil {
		return 0, fmt.Errorf("%w: decode %s: %w", ErrNoCheckpoint, path, err)
	}
	if cp.Version != CheckpointVersion {
		return 0, fmt.Errorf("%w: version %d, this build reads %d", ErrNoCheckpoint, cp.Version, CheckpointVersion)
	}
	sections := p.sections()
	if len(cp.Sections) != len(sections) {
		return 0, fmt.Errorf("%w: %s has %d sections, want %d", ErrNoCheckpoint, path, len(cp.Sections), len(sections))
	}
	// The check runs while the file is read.
	checked := make(chan error, 1)
	go func() { checked <- belongs(ctx, stream, cp.LastEventSeq, cp.LastEventID) }()
	loaders, err := readSections(dec, path, cp.Sections, sections)
	if cerr := <-checked; err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.applied != 0 {
		return 0, errors.New("checkpoint: the projector is not empty")
	}
	var wg sync.WaitGroup
	for _, l := range loaders {
		wg.Go(func() { l.restore(cp.Applied) })
	}
	wg.Wait()
	p.upcoming.rebuild(&p.current) // derived from current state: not saved
	p.lastEventSeq, p.lastEventID = cp.LastEventSeq, cp.LastEventID
	p.events.Store(cp.Events)
	p.rejected.Store(cp.Rejected)
	p.undecodable.Store(cp.Undecodable)
	p.advance(cp.Applied)
	return cp.Applied, nil
}

// readSections reads every section's parts from dec and decodes each part,
// in parallel, as soon as it is read.
func readSections(dec *gob.Decoder, path string, headers []sectionHeader, sections []struct {
	name string
	s    section
}) ([]loader, error) {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	loaders := make([]loader, len(sections))
	for k, h := range headers {
		if h.Name != sections[k].name || h.Parts < 0 || h.Parts > 1<<24 {
			_ = g.Wait()
			return nil, fmt.Errorf("%w: %s section %d is %q of %d parts, want %q", ErrNoCheckpoint, path, k, h.Name,
				h.Parts, sections[k].name)
		}
		l, err := sections[k].s.load(h.Parts)
		if err != nil {
			_ = g.Wait()
			return nil, fmt.Errorf("%w: %s section %s: %w", ErrNoCheckpoint, path, h.Name, err)
		}
		loaders[k] = l
		for i := range h.Parts {
			var part []byte
			if err := dec.Decode(&part); err != nil {
				_ = g.Wait()
				return nil, fmt.Errorf("%w: read %s section %s part %d: %w", ErrNoCheckpoint, path, h.Name, i, err)
			}
			g.Go(func() error {
				if err := l.decode(i, part); err != nil {
					return fmt.Errorf("%w: decode %s section %s part %d: %w", ErrNoCheckpoint, path, h.Name, i, err)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return loaders, nil
}

// belongs checks that the stream holds event id at sequence seq (nothing
// to check when seq is 0: the checkpoint folded no event), waiting for the
// stream to be delivered.
func belongs(ctx context.Context, stream <-chan EventReader, seq uint64, id string) error {
	if seq == 0 {
		return nil
	}
	var r EventReader
	select {
	case r = <-stream:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNoCheckpoint, ctx.Err())
	}
	if r == nil {
		return fmt.Errorf("%w: no stream to check it against", ErrNoCheckpoint)
	}
	if ev, err := r.Event(ctx, seq); err != nil || ev.ID != id {
		return fmt.Errorf("%w: the stream does not hold event %s at sequence %d", ErrNoCheckpoint, id, seq)
	}
	return nil
}

// decodePart gob-decodes one part into v.
func decodePart(b []byte, v any) error { return gob.NewDecoder(bytes.NewReader(b)).Decode(v) }
