package proofs

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"

	"github.com/iom-who/engagements/domain"
)

// ProofFormat names the proof file's format and version.
const ProofFormat = "engagements-proof/1"

// MaxProofBytes bounds a proof file read for checking.
const MaxProofBytes = 64 << 20

// File is one engagement's proof: every message stored on its subjects up
// to the checkpoint's sequence, as stored, each with its inclusion proof
// in the checkpoint's tree, and the proof that the last one's hash is the
// engagement's head in the checkpoint's heads tree.
type File struct {
	Format       string     `json:"format"`
	EngagementID string     `json:"engagement_id"`
	Checkpoint   Checkpoint `json:"checkpoint"`
	Events       []Event    `json:"events"`
	Head         HeadProof  `json:"head"`
}

// Event is one stored message in a proof or a bundle.
type Event struct {
	// Sequence is its stream sequence: leaf index Sequence-1.
	Sequence uint64 `json:"sequence"`
	// Subject is the NATS subject it is stored under.
	Subject string `json:"subject"`
	// Hash and PrevHash are its Engagements-Hash and Engagements-Prev-Hash
	// headers ("" when absent).
	Hash     string `json:"hash"`
	PrevHash string `json:"prev_hash"`
	// Payload is the standard base64 of the stored bytes.
	Payload string `json:"payload"`
	// Inclusion is the RFC 6962 inclusion proof, lower-case hex, leaf to
	// root; in a bundle it is absent.
	Inclusion []string `json:"inclusion,omitempty"`
}

// HeadProof proves the engagement's leaf "<id> <hash of its last event>"
// at Index in the heads tree of the checkpoint's Engagements leaves.
type HeadProof struct {
	Index     uint64   `json:"index"`
	Inclusion []string `json:"inclusion"`
}

func eventOf(m domain.Message, inclusion [][]byte) Event {
	e := Event{Sequence: m.Sequence, Subject: m.Subject, Hash: m.Hash, PrevHash: m.PrevHash,
		Payload: base64.StdEncoding.EncodeToString(m.Payload)}
	if inclusion != nil {
		e.Inclusion = hexAll(inclusion)
	}
	return e
}

// ErrProof marks a proof file that fails its check.
var ErrProof = errors.New("the proof does not check out")

// subjectOf matches engagements.<kind>.<id>.<verb>.
var subjectOf = regexp.MustCompile(`^engagements\.(agreement|policy|initiative|meeting)\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.[a-z_]+$`)

// ProofResult is what a proof that checks out shows.
type ProofResult struct {
	OK           bool   `json:"ok"`
	EngagementID string `json:"engagement_id"`
	Events       int    `json:"events"`
	// Head is the hash of the engagement's last event, as of Sequence.
	Head     string `json:"head"`
	Sequence uint64 `json:"checkpoint_sequence"`
	Root     string `json:"checkpoint_root"`
	KeyID    string `json:"key_id"`
	SignedAt string `json:"signed_at"`
	Problem  string `json:"problem,omitempty"`
}

// VerifyProof checks a proof file with nothing but the trusted public keys:
// the file parses in its one spelling; the checkpoint is signed by one of
// keys; the events are the engagement's, in increasing sequence, each
// hash is SHA-256(prev_hash ‖ subject ‖ payload), the first has no
// prev_hash and each next one's prev_hash is the hash before it; each is
// included at its sequence in the checkpoint's tree; and the last one's hash
// is the engagement's head in the checkpoint's heads tree (so none was
// dropped at the end).
func VerifyProof(data []byte, keys []ed25519.PublicKey) (ProofResult, error) {
	var f File
	if err := strictUnmarshal(data, &f); err != nil {
		return ProofResult{}, fmt.Errorf("%w: the file does not parse: %w", ErrProof, err)
	}
	res := ProofResult{EngagementID: f.EngagementID, Events: len(f.Events), Sequence: f.Checkpoint.Sequence,
		Root: f.Checkpoint.Root, KeyID: f.Checkpoint.KeyID, SignedAt: f.Checkpoint.CreatedAt}
	fail := func(format string, args ...any) (ProofResult, error) {
		err := fmt.Errorf("%w: "+format, append([]any{ErrProof}, args...)...)
		res.Problem = err.Error()
		return res, err
	}
	if f.Format != ProofFormat {
		return fail("format is %q, not %q", f.Format, ProofFormat)
	}
	cp := f.Checkpoint
	if err := cp.Verify(keys); err != nil {
		return fail("%v", err)
	}
	if len(f.Events) == 0 {
		return fail("no events")
	}
	root := mustHex(cp.Root)
	prev, prevSeq := "", uint64(0)
	for i, e := range f.Events {
		leaf, err := e.check(f.EngagementID, prev)
		if err != nil {
			return fail("event %d (sequence %d): %v", i+1, e.Sequence, err)
		}
		if e.Sequence <= prevSeq || e.Sequence > cp.Sequence {
			return fail("event %d: sequence %d is not after %d and at most the checkpoint's %d", i+1, e.Sequence, prevSeq, cp.Sequence)
		}
		p, err := decodeHexes(e.Inclusion)
		if err != nil {
			return fail("event %d (sequence %d): inclusion %v", i+1, e.Sequence, err)
		}
		if err := VerifyInclusion(leaf, e.Sequence-1, cp.Sequence, p, root); err != nil {
			return fail("event %d (sequence %d) is not in the checkpoint's tree at its sequence: %v", i+1, e.Sequence, err)
		}
		prev, prevSeq = e.Hash, e.Sequence
	}
	p, err := decodeHexes(f.Head.Inclusion)
	if err != nil {
		return fail("head inclusion %v", err)
	}
	if err := VerifyInclusion(headLeaf(f.EngagementID, prev), f.Head.Index, cp.Engagements, p, mustHex(cp.HeadsRoot)); err != nil {
		return fail("the last event is not the engagement's head at the checkpoint (an event is missing at the end?): %v", err)
	}
	res.OK, res.Head = true, prev
	return res, nil
}

// check checks one event's form, subject and chain link, and returns its
// leaf data.
func (e Event) check(id, prev string) ([]byte, error) {
	sub := subjectOf.FindStringSubmatch(e.Subject)
	if sub == nil || sub[2] != id {
		return nil, fmt.Errorf("subject %q is not one of engagement %s", e.Subject, id)
	}
	if !hex64.MatchString(e.Hash) || e.PrevHash != "" && !hex64.MatchString(e.PrevHash) {
		return nil, errors.New("hash or prev_hash is not 64 lower-case hex digits")
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("payload is not standard base64: %w", err)
	}
	sum := sha256.Sum256([]byte(e.PrevHash + e.Subject + string(payload)))
	if hex.EncodeToString(sum[:]) != e.Hash {
		return nil, errors.New("hash is not SHA-256(prev_hash ‖ subject ‖ payload) (altered)")
	}
	if e.PrevHash != prev {
		if prev == "" {
			return nil, errors.New("the first event has a prev_hash (an earlier one is missing)")
		}
		return nil, errors.New("prev_hash is not the hash of the event before it (reordered, or one is missing)")
	}
	return sum[:], nil
}

func decodeHexes(hs []string) ([][]byte, error) {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		if !hex64.MatchString(h) {
			return nil, fmt.Errorf("hash %d is not 64 lower-case hex digits", i+1)
		}
		out[i] = mustHex(h)
	}
	return out, nil
}
