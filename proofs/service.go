package proofs

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// Stream is what the service reads of the event store; eventstore.Store is
// one.
type Stream interface {
	Read(ctx context.Context, after uint64, f domain.Filter) iter.Seq2[domain.Message, error]
	// Message reads the message stored at seq (a direct get).
	Message(ctx context.Context, seq uint64) (domain.Message, error)
	LastSequence(ctx context.Context) (uint64, error)
	VerifyWalk(ctx context.Context, until uint64, progress func(done, total uint64), v eventstore.Visitor) (domain.Report, error)
}

// Config tunes the service.
type Config struct {
	// Key signs new checkpoints.
	Key ed25519.PrivateKey
	// EveryEvents and Every make Run sign a checkpoint once that many
	// events were stored since the last, or that much time went by with
	// new events (0: never on that ground).
	EveryEvents uint64
	Every       time.Duration
	Logger      *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Verdicts, when set, says which messages continue their engagement's
	// chain: the projector, which folds every message into its
	// engagement's state anyway. Without it the service folds them into
	// states of its own (eventstore.Chains), a second copy of every
	// engagement's state in memory.
	Verdicts Verdicts
}

// Verdicts says which stored messages that decode were not folded into
// their engagement: the domain rules refused them, so they do not continue
// the engagement's chain (what eventstore.Chains.Fold decides from the
// engagement's state). projections.Projector is one.
type Verdicts interface {
	// Refused waits until every message up to upTo is handled, or ctx
	// ends, and returns the refused sequences after after, up to upTo.
	Refused(ctx context.Context, after, upTo uint64) (map[uint64]struct{}, error)
}

// Service signs checkpoints of the stream and answers for them: the list,
// the keys, one engagement's proof and verification.
type Service struct {
	src    Stream
	ledger *Ledger
	cfg    Config
	keyID  string

	// mu serialises catching up and signing.
	mu   sync.Mutex
	tree *Tree
	// chains folds the messages when no Verdicts are configured.
	chains *eventstore.Chains
	// heads is each engagement's head after each event that moved it;
	// messages the sequence of every message on its subjects, valid or not
	// (8 bytes per message), which a proof holds.
	heads    map[string][]headAt
	messages map[string][]uint64
	// headsCache is the heads tree at one size, the last asked for.
	headsCache struct {
		size  uint64
		tree  *Tree
		index map[string]uint64
	}

	// offered are the messages Offer was handed that no catch-up has
	// taken yet: contiguous, oldest first, at most maxOffered.
	offerMu sync.Mutex
	offered []domain.Message
	// spare is the slice the last catch-up took, emptied, for the next
	// messages offered (growing a new one for each was 8% of the bytes
	// an import allocated).
	spare []domain.Message
	// offering is set by the first Offer; offerWake is signalled by each.
	offering  atomic.Bool
	offerWake chan struct{}
	// offeredUpTo is the sequence of the last message offered: how far the
	// projector has read.
	offeredUpTo atomic.Uint64
	// absorbWake is signalled when absorbAt messages are offered: Run
	// folds them then (absorb) rather than keep them all for the next
	// checkpoint.
	absorbWake chan struct{}
	// sinceCompact counts the messages folded since heads and messages
	// were last trimmed (compact).
	sinceCompact uint64

	listMu      sync.RWMutex
	checkpoints []Checkpoint
	keys        []Key
}

// headAt is an engagement's head hash from sequence seq on: 40 bytes per
// event that moves a chain.
type headAt struct {
	seq  uint64
	hash [32]byte
}

// Open loads the ledger's checkpoints and keys and lists cfg.Key among the
// keys if it is new (a rotated key: the old ones stay listed).
func Open(ctx context.Context, src Stream, ledger *Ledger, cfg Config) (*Service, error) {
	if cfg.Key == nil {
		return nil, errors.New("proofs: no signing key")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{src: src, ledger: ledger, cfg: cfg, keyID: KeyID(cfg.Key.Public().(ed25519.PublicKey)),
		tree: NewTree(), heads: map[string][]headAt{}, messages: map[string][]uint64{},
		offerWake: make(chan struct{}, 1), absorbWake: make(chan struct{}, 1)}
	if cfg.Verdicts == nil {
		s.chains = eventstore.NewChains()
	}
	recs, err := ledger.Records(ctx)
	if err != nil {
		return nil, err
	}
	s.checkpoints, s.keys, _ = parseRecords(recs)
	if !slices.ContainsFunc(s.keys, func(k Key) bool { return k.KeyID == s.keyID }) {
		k := NewKey(cfg.Key.Public().(ed25519.PublicKey), cfg.Now().UTC().Format(TimeLayout))
		data, err := jsonv2.Marshal(k)
		if err != nil {
			return nil, err
		}
		if err := ledger.AddKey(ctx, k.KeyID, data); err != nil {
			return nil, err
		}
		s.keys = append(s.keys, k)
		cfg.Logger.Info("signing key listed", "key_id", k.KeyID)
	}
	return s, nil
}

// parseRecords splits the ledger into checkpoints and keys; bad lists the
// records that do not parse.
func parseRecords(recs []Record) (cps []Checkpoint, keys []Key, bad []Record) {
	for _, r := range recs {
		if r.KeyID != "" {
			var k Key
			if err := strictUnmarshal(r.Data, &k); err != nil || k.KeyID != r.KeyID {
				bad = append(bad, r)
				continue
			}
			keys = append(keys, k)
			continue
		}
		var cp Checkpoint
		if err := strictUnmarshal(r.Data, &cp); err != nil {
			bad = append(bad, r)
			continue
		}
		cps = append(cps, cp)
	}
	return cps, keys, bad
}

// strictUnmarshal parses JSON in one spelling only: names matched exactly,
// no unknown or duplicate names, valid UTF-8, nothing after the value.
func strictUnmarshal(data []byte, v any) error {
	return jsonv2.Unmarshal(data, v, jsonv2.RejectUnknownMembers(true))
}

// KeyID is the id of the key new checkpoints are signed with.
func (s *Service) KeyID() string { return s.keyID }

// Keys lists every key that signed or signs checkpoints, oldest first.
func (s *Service) Keys() []Key {
	s.listMu.RLock()
	defer s.listMu.RUnlock()
	return slices.Clone(s.keys)
}

// Checkpoints lists the checkpoints this instance loaded at start and
// signed since, oldest first (the API numbers them from 1).
func (s *Service) Checkpoints() []Checkpoint {
	s.listMu.RLock()
	defer s.listMu.RUnlock()
	return slices.Clone(s.checkpoints)
}

// trustedKeys are the listed keys, decoded.
func trustedKeys(keys []Key) []ed25519.PublicKey {
	var out []ed25519.PublicKey
	for _, k := range keys {
		if pub, err := k.Public(); err == nil {
			out = append(out, pub)
		}
	}
	return out
}

// yieldEvery is how many messages fold folds between yields of its
// processor (a fraction of a millisecond of work).
const yieldEvery = 256

// catchUp folds the messages stored since the tree's end into the tree and
// the chains. s.mu is held.
func (s *Service) catchUp(ctx context.Context) error {
	last, err := s.src.LastSequence(ctx)
	if err != nil {
		return err
	}
	if last <= s.tree.Size() {
		return nil
	}
	var refused map[uint64]struct{}
	if s.chains == nil {
		// One question for the whole stretch: the projector is asked once,
		// not once a message (at a first start it is still folding them,
		// and this read follows once it is done).
		if refused, err = s.cfg.Verdicts.Refused(ctx, s.tree.Size(), last); err != nil {
			return fmt.Errorf("which messages up to %d continue their chains: %w", last, err)
		}
	}
	s.tree.Grow(last)
	s.awaitOffered(ctx, last)
	taken := s.takeOffered()
	defer s.recycle(taken)
	offered := taken
	for len(offered) > 0 && offered[0].Sequence <= s.tree.Size() {
		offered = offered[1:]
	}
	// What the stream holds before the first message offered (all of it
	// the first time after a start), then the messages offered, then what
	// the projector had not reached yet.
	if len(offered) == 0 || offered[0].Sequence > s.tree.Size()+1 {
		until := last
		if len(offered) > 0 {
			until = min(last, offered[0].Sequence-1)
		}
		if err := s.readUntil(ctx, until, refused); err != nil {
			return err
		}
	}
	s.foldOffered(offered, last, refused)
	if err := s.readUntil(ctx, last, refused); err != nil {
		return err
	}
	for s.tree.Size() < last {
		_ = s.tree.Append(GapLeaf)
	}
	if s.sinceCompact >= compactAfter {
		s.compact()
	}
	return nil
}

// compactAfter is how many messages are folded (by catch-ups and absorbs)
// before the room append left in each engagement's heads and messages is
// trimmed (a first catch-up over a long stream: up to 40 % of them).
const compactAfter = 100_000

// compact copies each engagement's heads and messages into arrays of their
// length. s.mu is held.
func (s *Service) compact() {
	s.sinceCompact = 0
	for id, h := range s.heads {
		if cap(h) > len(h) {
			s.heads[id] = slices.Clone(h)
		}
	}
	for id, m := range s.messages {
		if cap(m) > len(m) {
			s.messages[id] = slices.Clone(m)
		}
	}
}

// folded reports whether m continues its engagement's chain: from s.chains
// or, with Verdicts, from the sequences they refused. s.mu is held.
func (s *Service) folded(m domain.Message, refused map[uint64]struct{}) bool {
	if s.chains != nil {
		return s.chains.Fold(m) == ""
	}
	_, no := refused[m.Sequence]
	return m.Err == nil && !no
}

// awaitVerdicts waits, before s.mu is taken, until the Verdicts have
// handled the stream as it is now, so that a catch-up, which holds s.mu,
// hardly waits for them: a first start still folding, or a stalled
// projection, then holds up only the callers that need a catch-up, each
// until its own ctx ends, not everyone queued behind s.mu. Nothing to wait
// for without Verdicts.
func (s *Service) awaitVerdicts(ctx context.Context) error {
	if s.cfg.Verdicts == nil {
		return nil
	}
	last, err := s.src.LastSequence(ctx)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Verdicts.Refused(ctx, last, last); err != nil {
		return fmt.Errorf("waiting for the projection to reach sequence %d: %w", last, err)
	}
	return nil
}

// foldOffered folds the messages of offered (taken, in stream order) that
// follow on from the tree's end, up to sequence last, and puts those after
// last back for the next catch-up. s.mu is held.
func (s *Service) foldOffered(offered []domain.Message, last uint64, refused map[uint64]struct{}) {
	for i, m := range offered {
		if m.Sequence > last {
			s.putBack(offered[i:])
			return
		}
		if m.Sequence == s.tree.Size()+1 {
			s.fold(m, refused)
		}
	}
}

// readUntil folds the stream's messages after the tree's size up to
// sequence until; refused are the Verdicts' (folded).
func (s *Service) readUntil(ctx context.Context, until uint64, refused map[uint64]struct{}) error {
	if until <= s.tree.Size() {
		return nil
	}
	for m, err := range s.src.Read(ctx, s.tree.Size(), domain.Filter{}) {
		if err != nil {
			return err
		}
		if m.Sequence > until {
			break
		}
		s.fold(m, refused)
		if m.Sequence == until {
			break
		}
	}
	return nil
}

// fold adds m, the message after the tree's end or a later one (the gap
// filled), to the tree, its engagement's lists and, when it continues its
// chain (folded: refused are the Verdicts'), its engagement's heads.
func (s *Service) fold(m domain.Message, refused map[uint64]struct{}) {
	if m.Sequence%yieldEvery == 0 {
		// The first catch-up after a start folds the whole stream (1M
		// events: seconds of CPU) while requests are being served; it
		// yields its processor now and then so that they do not wait for
		// the scheduler's 10 ms preemption.
		runtime.Gosched()
	}
	for s.tree.Size() < m.Sequence-1 {
		_ = s.tree.Append(GapLeaf)
	}
	leaf := leafOf(m)
	_ = s.tree.Append(leaf)
	s.sinceCompact++
	// The engagement whose subjects it is on (set from the subject
	// even when the message does not decode).
	if id := m.Event.EngagementID; id != "" {
		s.messages[id] = append(s.messages[id], m.Sequence)
	}
	if s.folded(m, refused) {
		// A folded event's hash matched its recomputed chain hash,
		// so it is 64 hex digits, the leaf data.
		h := headAt{seq: m.Sequence}
		copy(h.hash[:], leaf)
		id := m.Event.EngagementID
		s.heads[id] = append(s.heads[id], h)
	}
}

// maxOffered bounds the messages Offer keeps for the next catch-up (about
// 1.5 KB each, ~48 MiB at most): Run looks once a second, and an import
// stores up to ~20k events a second, over the default
// --checkpoint-every-events (16k lost half of them). Beyond it the oldest
// go, and the catch-up reads those from the stream.
const maxOffered = 1 << 15

// Offer hands the service a message read from the stream, in stream order
// (projections.Projector.Observe): the next catch-up folds it from here
// instead of reading and decoding it again. One out of order makes it
// forget those before; a repeated one is ignored. Without periodic
// checkpoints (Config.EveryEvents and Every 0) nothing is kept: a
// checkpoint asked for now and then reads the stream.
func (s *Service) Offer(m domain.Message) {
	if s.cfg.EveryEvents == 0 && s.cfg.Every == 0 {
		return
	}
	s.offerMu.Lock()
	defer s.offerMu.Unlock()
	if n := len(s.offered); n > 0 {
		switch tail := s.offered[n-1].Sequence; {
		case m.Sequence <= tail && m.Sequence >= s.offered[0].Sequence:
			return
		case m.Sequence != tail+1:
			clear(s.offered)
			s.offered = s.offered[:0]
		}
	}
	if len(s.offered) >= maxOffered {
		kept := copy(s.offered, s.offered[len(s.offered)-maxOffered/2:])
		clear(s.offered[kept:])
		s.offered = s.offered[:kept]
	}
	s.offered = append(s.offered, m)
	s.offering.Store(true)
	s.offeredUpTo.Store(m.Sequence)
	select {
	case s.offerWake <- struct{}{}:
	default:
	}
	if len(s.offered) >= absorbAt {
		select {
		case s.absorbWake <- struct{}{}:
		default:
		}
	}
}

// absorbAt is how many messages offered make Run fold them at once
// (absorb) instead of keeping them for the next checkpoint: a first start
// over a long stream then builds the tree while the projector rebuilds,
// from the messages it read, rather than read and decode the whole stream
// again once it is ready (1M events: 14 s of a core just after /readyz,
// and the GETs' p99 at 19 ms instead of 1.3 ms in make bench). It keeps at
// most about absorbAt messages (~6 MB) waiting. A variable for tests.
var absorbAt = 4096

// absorb folds the messages offered into the tree when they follow on from
// its end (after a restart from a checkpoint they do not: the tree is built
// from the stream when first needed, and they wait for that catch-up).
func (s *Service) absorb(ctx context.Context) {
	s.offerMu.Lock()
	follows := len(s.offered) > 0 && s.offered[0].Sequence <= s.tree.Size()+1 &&
		s.offered[len(s.offered)-1].Sequence > s.tree.Size()
	s.offerMu.Unlock()
	if !follows {
		return
	}
	last, err := s.src.LastSequence(ctx)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	taken := s.takeOffered()
	defer s.recycle(taken)
	offered := taken
	for len(offered) > 0 && offered[0].Sequence <= s.tree.Size() {
		offered = offered[1:]
	}
	if len(offered) == 0 {
		return
	}
	if offered[0].Sequence != s.tree.Size()+1 {
		s.putBack(offered) // a catch-up took some meanwhile and read on
		return
	}
	upTo := offered[len(offered)-1].Sequence
	var refused map[uint64]struct{}
	if s.chains == nil {
		// The projector offered them once it had folded them: no wait.
		if refused, err = s.cfg.Verdicts.Refused(ctx, s.tree.Size(), upTo); err != nil {
			s.putBack(offered)
			return
		}
	}
	s.tree.Grow(max(last, upTo))
	s.foldOffered(offered, upTo, refused)
	if s.sinceCompact >= compactAfter && s.tree.Size() >= last {
		s.compact()
	}
}

// offerWait bounds how long a catch-up waits for the projector to offer
// the messages up to the stream's end before it reads the rest itself: it
// follows the stream a moment behind the appends.
const offerWait = time.Second

// awaitOffered waits, when messages are offered at all, until the last one
// offered is at least last, for at most offerWait or until ctx ends.
func (s *Service) awaitOffered(ctx context.Context, last uint64) {
	if !s.offering.Load() {
		return
	}
	t := time.NewTimer(offerWait)
	defer t.Stop()
	for {
		s.offerMu.Lock()
		var tail uint64
		if n := len(s.offered); n > 0 {
			tail = s.offered[n-1].Sequence
		}
		s.offerMu.Unlock()
		if tail >= last {
			return
		}
		select {
		case <-s.offerWake:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// takeOffered returns the messages offered since the last call. s.mu is
// held.
func (s *Service) takeOffered() []domain.Message {
	s.offerMu.Lock()
	defer s.offerMu.Unlock()
	out := s.offered
	s.offered, s.spare = s.spare[:0], nil
	return out
}

// putBack puts rest, messages taken but past what a catch-up folds, back
// before the ones offered since, if they follow on.
func (s *Service) putBack(rest []domain.Message) {
	s.offerMu.Lock()
	defer s.offerMu.Unlock()
	if len(s.offered) > 0 && s.offered[0].Sequence != rest[len(rest)-1].Sequence+1 {
		return
	}
	s.offered = append(append(make([]domain.Message, 0, len(rest)+len(s.offered)), rest...), s.offered...)
}

// recycle keeps taken, what takeOffered returned, emptied, as the next
// spare.
func (s *Service) recycle(taken []domain.Message) {
	clear(taken)
	s.offerMu.Lock()
	s.spare = taken[:0]
	s.offerMu.Unlock()
}

// Create signs a checkpoint of the stream as it is now and stores it.
// When the latest checkpoint already covers every message and was signed
// with the current key it is returned instead, with created false.
func (s *Service) Create(ctx context.Context) (cp Checkpoint, created bool, err error) {
	if err := s.awaitVerdicts(ctx); err != nil {
		return Checkpoint{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.catchUp(ctx); err != nil {
		return Checkpoint{}, false, err
	}
	size := s.tree.Size()
	if latest, ok := s.latest(); ok && latest.Sequence == size && latest.KeyID == s.keyID {
		return latest, false, nil
	}
	// Every engagement with a valid event has a head: the heads at size
	// are the chains' (eventstore.Chains.Heads).
	head, headsRoot := headsOf(s.headsUpTo(size))
	cp = Checkpoint{Sequence: size, Root: rootHex(s.tree), Head: head, HeadsRoot: headsRoot,
		Engagements: uint64(len(s.heads)), CreatedAt: s.cfg.Now().UTC().Format(TimeLayout)}
	cp.Sign(s.cfg.Key)
	data, err := jsonv2.Marshal(cp)
	if err != nil {
		return Checkpoint{}, false, err
	}
	if _, err := s.ledger.AppendCheckpoint(ctx, data); err != nil {
		return Checkpoint{}, false, err
	}
	s.listMu.Lock()
	s.checkpoints = append(s.checkpoints, cp)
	s.listMu.Unlock()
	s.cfg.Logger.Info("checkpoint signed", "sequence", cp.Sequence, "root", cp.Root, "key_id", cp.KeyID)
	return cp, true, nil
}

func (s *Service) latest() (Checkpoint, bool) {
	s.listMu.RLock()
	defer s.listMu.RUnlock()
	if len(s.checkpoints) == 0 {
		return Checkpoint{}, false
	}
	return s.checkpoints[len(s.checkpoints)-1], true
}

// pollInterval is how often Run looks at the stream's length.
const pollInterval = time.Second

// Run signs checkpoints every cfg.EveryEvents events and every cfg.Every
// (when there are new events) until ctx ends. The tree is built when first
// needed (the first checkpoint or proof after a start reads the stream
// once, as verify does), not at start, which would slow a restart down.
func (s *Service) Run(ctx context.Context) {
	if s.cfg.EveryEvents == 0 && s.cfg.Every == 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	lastAt := s.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.absorbWake:
			s.absorb(ctx)
			continue
		case <-t.C:
		}
		last, err := s.src.LastSequence(ctx)
		if err != nil {
			continue
		}
		var covered uint64
		if cp, ok := s.latest(); ok {
			covered = cp.Sequence
		}
		if last <= covered {
			continue
		}
		due := s.cfg.EveryEvents > 0 && last-covered >= s.cfg.EveryEvents ||
			s.cfg.Every > 0 && s.cfg.Now().Sub(lastAt) >= s.cfg.Every
		if !due {
			continue
		}
		if s.offering.Load() && s.offeredUpTo.Load()+uint64(absorbAt) < last {
			// The projector is far from the stream's end (a first start
			// rebuilding): signing would wait for it here, and the
			// messages it offers meanwhile would pile up unabsorbed. A
			// projector a moment behind the appends is waited for.
			continue
		}
		if _, _, err := s.Create(ctx); err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Warn("checkpoint not signed", "err", err)
			}
			continue
		}
		lastAt = s.cfg.Now()
	}
}

// Verify is eventstore's verification up to until (0: all) that also
// checks every signed checkpoint up to there: its signature by a listed
// key, its root, head and heads root against the stream as read now, and
// a consistency proof (computed from the stream) from the checkpoint
// before it.
func (s *Service) Verify(ctx context.Context, until uint64, progress func(done, total uint64)) (domain.Report, error) {
	recs, err := s.ledger.Records(ctx)
	if err != nil {
		return domain.Report{}, err
	}
	return Audit(ctx, s.src, recs, until, progress)
}

// Stored reads the checkpoints and keys from the ledger as it is now (what
// other instances signed too, and records put there behind the service's
// back); bad counts the records that do not parse.
func (s *Service) Stored(ctx context.Context) (cps []Checkpoint, keys []Key, bad int, err error) {
	recs, err := s.ledger.Records(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	cps, keys, badRecs := parseRecords(recs)
	return cps, keys, len(badRecs), nil
}

// Bundle writes the whole history as a bundle (WriteBundle) with the
// ledger as it is now.
func (s *Service) Bundle(ctx context.Context, w io.Writer) (events int, err error) {
	recs, err := s.ledger.Records(ctx)
	if err != nil {
		return 0, err
	}
	return WriteBundle(ctx, w, s.src, recs)
}

// Walker is what Audit reads: eventstore.Store is one.
type Walker interface {
	VerifyWalk(ctx context.Context, until uint64, progress func(done, total uint64), v eventstore.Visitor) (domain.Report, error)
}

// Audit verifies the stream up to until and the checkpoints of the ledger
// records against it, with the ledger's keys as the trusted ones.
func Audit(ctx context.Context, st Walker, recs []Record, until uint64, progress func(done, total uint64)) (domain.Report, error) {
	cps, keys, bad := parseRecords(recs)
	c := newChecker(cps, trustedKeys(keys))
	rep, err := st.VerifyWalk(ctx, until, progress, c)
	if err != nil {
		return rep, err
	}
	for _, r := range bad {
		rep.Problems = append(rep.Problems, domain.Problem{
			Problem: fmt.Sprintf("record %d of %s is not a checkpoint or key in the documented form", r.Sequence, LedgerStream)})
	}
	rep.Checkpoints = c.report(&rep)
	return rep, nil
}

// headsUpTo yields each engagement's id and its head when the stream ended
// at size, sorted by id, for the engagements that had a valid event by
// then. s.mu is held.
func (s *Service) headsUpTo(size uint64) iter.Seq2[string, string] {
	ids := make([]string, 0, len(s.heads))
	for id := range s.heads {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return func(yield func(string, string) bool) {
		for _, id := range ids {
			hs := s.heads[id]
			// The last head at or before size.
			n, _ := slices.BinarySearchFunc(hs, size+1, func(h headAt, seq uint64) int { return cmpUint(h.seq, seq) })
			if n > 0 && !yield(id, hex.EncodeToString(hs[n-1].hash[:])) {
				return
			}
		}
	}
}

// headsAt is the heads tree when the stream ended at size. s.mu is held.
func (s *Service) headsAt(size uint64) (*Tree, map[string]uint64, error) {
	if c := &s.headsCache; c.tree != nil && c.size == size {
		return c.tree, c.index, nil
	}
	t, index, err := headsTree(s.headsUpTo(size))
	if err != nil {
		return nil, nil, err
	}
	s.headsCache.size, s.headsCache.tree, s.headsCache.index = size, t, index
	return t, index, nil
}

// Proof is one engagement's proof against the checkpoint that covers
// sequence at (0: the latest checkpoint). It wraps domain.ErrNotFound when
// there is no such checkpoint or the engagement has no valid event up to it.
func (s *Service) Proof(ctx context.Context, id string, at uint64) (*File, error) {
	if err := domain.CheckID(id); err != nil {
		return nil, fmt.Errorf("engagement %q: %w", id, domain.ErrNotFound)
	}
	cp, ok := s.checkpointAt(at)
	if !ok {
		return nil, fmt.Errorf("checkpoint at sequence %d: %w", at, domain.ErrNotFound)
	}
	if s.tree.Size() < cp.Sequence {
		if err := s.awaitVerdicts(ctx); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tree.Size() < cp.Sequence {
		if err := s.catchUp(ctx); err != nil {
			return nil, err
		}
	}
	heads, index, err := s.headsAt(cp.Sequence)
	if err != nil {
		return nil, err
	}
	hi, ok := index[id]
	if !ok {
		return nil, fmt.Errorf("engagement %s up to sequence %d: %w", id, cp.Sequence, domain.ErrNotFound)
	}
	f := &File{Format: ProofFormat, EngagementID: id, Checkpoint: cp, Events: []Event{}}
	hp, err := heads.Inclusion(hi, heads.Size())
	if err != nil {
		return nil, err
	}
	f.Head = HeadProof{Index: hi, Inclusion: hexAll(hp)}
	// Direct gets of the engagement's messages: a filtered read of a long
	// stream would make the server look through all of it.
	for _, seq := range s.messages[id] {
		if seq > cp.Sequence {
			break
		}
		m, err := s.src.Message(ctx, seq)
		if err != nil {
			return nil, err
		}
		p, err := s.tree.Inclusion(m.Sequence-1, cp.Sequence)
		if err != nil {
			return nil, err
		}
		f.Events = append(f.Events, eventOf(m, p))
	}
	return f, nil
}

// checkpointAt is the latest checkpoint at sequence at, or the latest of
// all when at is 0.
func (s *Service) checkpointAt(at uint64) (Checkpoint, bool) {
	s.listMu.RLock()
	defer s.listMu.RUnlock()
	for i := len(s.checkpoints) - 1; i >= 0; i-- {
		if cp := s.checkpoints[i]; at == 0 || cp.Sequence == at {
			return cp, true
		}
	}
	return Checkpoint{}, false
}

func hexAll(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h)
	}
	return out
}
