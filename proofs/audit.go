package proofs

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"iter"
	"slices"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// LeafData is the leaf of the Merkle tree for a stored message: its chain
// hash as 32 bytes, SHA-256(prev_hash ‖ subject ‖ payload) over its
// Engagements-Prev-Hash header, subject and payload as stored. For every
// message that passes Verify this is its Engagements-Hash header decoded
// from hex; for one that does not, it still commits to what is stored.
func LeafData(m domain.Message) []byte {
	h := sha256.New()
	h.Write([]byte(m.PrevHash))
	h.Write([]byte(m.Subject))
	h.Write(m.Payload)
	return h.Sum(nil)
}

// leafOf is LeafData(m), read from m's Engagements-Hash header when m was
// decoded and hash-checked (its hash is then that SHA-256, already
// computed once as it was read): one SHA-256 less per message for
// whatever folds the whole stream.
func leafOf(m domain.Message) []byte {
	if m.Err == nil && len(m.Hash) == 2*sha256.Size {
		if b, err := hex.DecodeString(m.Hash); err == nil {
			return b
		}
	}
	return LeafData(m)
}

// headLeaf is the leaf of the heads tree for one engagement.
func headLeaf(id, hash string) []byte { return []byte(id + " " + hash) }

// headsTree is the tree over "<id> <hash>" leaves, sorted by id, and the
// index of each id.
func headsTree(heads iter.Seq2[string, string]) (*Tree, map[string]uint64, error) {
	t, index := NewTree(), map[string]uint64{}
	for id, hash := range heads {
		index[id] = t.Size()
		if err := t.Append(headLeaf(id, hash)); err != nil {
			return nil, nil, err
		}
	}
	return t, index, nil
}

// rootHex is the tree's root at its size in hex.
func rootHex(t *Tree) string {
	r, err := t.Root(t.Size())
	if err != nil {
		panic("proofs: " + err.Error()) // the size is the tree's own
	}
	return hex.EncodeToString(r)
}

// checker checks signed checkpoints against the messages of one walk of
// the stream (or of a bundle): it is an eventstore.Visitor.
type checker struct {
	cps  []Checkpoint // in the order they were appended
	keys []ed25519.PublicKey
	tree *Tree
	// bySeq are indices of cps by sequence; next is the first whose heads
	// are still to be checked.
	bySeq []int
	next  int
	heads []string // the problem with each one's head or heads root
	last  uint64
	// beyond makes a checkpoint past the last sequence a problem (a bundle
	// must hold every message its checkpoints cover).
	beyond bool
}

func newChecker(cps []Checkpoint, keys []ed25519.PublicKey) *checker {
	c := &checker{cps: cps, keys: keys, tree: NewTree(), heads: make([]string, len(cps))}
	c.bySeq = make([]int, len(cps))
	for i := range cps {
		c.bySeq[i] = i
	}
	slices.SortStableFunc(c.bySeq, func(a, b int) int { return cmpUint(cps[a].Sequence, cps[b].Sequence) })
	return c
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Visit implements eventstore.Visitor.
func (c *checker) Visit(m domain.Message, before *eventstore.Chains) {
	c.checkHeads(m.Sequence-1, before)
	c.fill(m.Sequence - 1)
	_ = c.tree.Append(leafOf(m)) // appending to an in-memory tree cannot fail
}

// End implements eventstore.Visitor.
func (c *checker) End(last uint64, chains *eventstore.Chains) {
	c.last = last
	c.checkHeads(last, chains)
	c.fill(last)
}

// fill adds gap leaves up to size.
func (c *checker) fill(size uint64) {
	for c.tree.Size() < size {
		_ = c.tree.Append(GapLeaf)
	}
}

// checkHeads checks the head and heads root of the checkpoints at
// sequences up to upTo, where chains stand. The chains' heads are read once
// for all of them: it costs a sort and two hashes per engagement.
func (c *checker) checkHeads(upTo uint64, chains *eventstore.Chains) {
	var head, headsRoot string
	for ; c.next < len(c.bySeq) && c.cps[c.bySeq[c.next]].Sequence <= upTo; c.next++ {
		if head == "" {
			head, headsRoot = headsOf(chains.Heads())
		}
		i := c.bySeq[c.next]
		cp := c.cps[i]
		switch {
		case cp.Head != head:
			c.heads[i] = "its head is not the stream's verify head at its sequence"
		case uint64(chains.Len()) != cp.Engagements:
			c.heads[i] = fmt.Sprintf("it counts %d engagements, the stream %d", cp.Engagements, chains.Len())
		case cp.HeadsRoot != headsRoot:
			c.heads[i] = "its heads_root is not the root of the stream's engagement heads at its sequence"
		}
	}
}

// headsOf is the verify head and the heads root of heads (each
// engagement's id and the hash of its latest valid event, sorted by id), in
// one pass.
func headsOf(heads iter.Seq2[string, string]) (head, headsRoot string) {
	sum := sha256.New()
	t := NewTree()
	for id, hash := range heads {
		fmt.Fprintf(sum, "%s %s\n", id, hash)
		_ = t.Append(headLeaf(id, hash))
	}
	return hex.EncodeToString(sum.Sum(nil)), rootHex(t)
}

// report adds a problem for each checkpoint up to the last sequence that
// fails its check and returns the summary.
func (c *checker) report(rep *domain.Report) *domain.CheckpointCheck {
	sum := &domain.CheckpointCheck{Keys: len(c.keys)}
	prev := -1 // the last valid checkpoint
	for i, cp := range c.cps {
		if cp.Sequence > c.last {
			if c.beyond {
				rep.Problems = append(rep.Problems, domain.Problem{Sequence: cp.Sequence,
					Problem: fmt.Sprintf("checkpoint %d (sequence %d): it covers messages the bundle does not hold (its last is %d)", i+1, cp.Sequence, c.last)})
			}
			continue
		}
		sum.Checked++
		problem := c.problem(i, prev)
		if problem != "" {
			rep.Problems = append(rep.Problems, domain.Problem{Sequence: cp.Sequence,
				Problem: fmt.Sprintf("checkpoint %d (sequence %d): %s", i+1, cp.Sequence, problem)})
			continue
		}
		sum.Valid++
		sum.LatestSequence, sum.LatestRoot = cp.Sequence, cp.Root
		prev = i
	}
	rep.OK = len(rep.Problems) == 0
	return sum
}

// problem is what is wrong with checkpoint i, the last valid one before it
// being prev (-1: none); "" when nothing is.
func (c *checker) problem(i, prev int) string {
	cp := c.cps[i]
	if err := cp.Verify(c.keys); err != nil {
		return err.Error()
	}
	root, err := c.tree.Root(cp.Sequence)
	if err != nil {
		return err.Error()
	}
	if hex.EncodeToString(root) != cp.Root {
		return fmt.Sprintf("its root is not that of the stream's first %d messages (a message was altered, or the stream rewritten, after it was signed)", cp.Sequence)
	}
	if c.heads[i] != "" {
		return c.heads[i]
	}
	if prev < 0 {
		return ""
	}
	p := c.cps[prev]
	if cp.Sequence < p.Sequence {
		return fmt.Sprintf("it does not extend checkpoint %d: it covers %d messages, that one %d", prev+1, cp.Sequence, p.Sequence)
	}
	if cp.Sequence == p.Sequence && cp.Root != p.Root {
		return fmt.Sprintf("it does not extend checkpoint %d: same sequence, another root", prev+1)
	}
	proof, err := c.tree.Consistency(p.Sequence, cp.Sequence)
	if err == nil {
		err = VerifyConsistency(p.Sequence, cp.Sequence, proof, mustHex(p.Root), root)
	}
	if err != nil {
		return fmt.Sprintf("it does not extend checkpoint %d (consistency proof: %v)", prev+1, err)
	}
	return ""
}
