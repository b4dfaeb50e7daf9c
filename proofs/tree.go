package proofs

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// hasher is the RFC 6962 hasher: leaf hash SHA-256(0x00 ‖ data), node hash
// SHA-256(0x01 ‖ left ‖ right).
var hasher = rfc6962.DefaultHasher

// GapLeaf is the leaf data of a stream sequence that holds no message
// (deleted, or never written): 32 zero bytes.
var GapLeaf = make([]byte, sha256.Size)

// Tree is an append-only RFC 6962 Merkle tree that keeps the hash of every
// perfect subtree, so that roots, inclusion and consistency proofs for any
// size up to its own are read off without rehashing leaves. It holds about
// 64 bytes per leaf, in arrays without pointers (nothing for the garbage
// collector to scan). It is safe for concurrent use.
type Tree struct {
	mu sync.RWMutex
	// levels[l][i] is the hash of the perfect subtree of height l whose
	// leftmost leaf is i<<l.
	levels [][][sha256.Size]byte
	rng    *compact.Range
}

var factory = &compact.RangeFactory{Hash: hasher.HashChildren}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{rng: factory.NewEmptyRange(0)} }

// Size is the number of leaves.
func (t *Tree) Size() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.rng.End()
}

// Append adds a leaf with the given data (a chain hash, or GapLeaf).
func (t *Tree) Append(data []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rng.Append(hasher.HashLeaf(data), func(id compact.NodeID, hash []byte) {
		for uint(len(t.levels)) <= id.Level {
			t.levels = append(t.levels, nil)
		}
		// Nodes are visited once, left to right within each level.
		t.levels[id.Level] = append(t.levels[id.Level], [sha256.Size]byte(hash))
	})
}

// errTooLarge says a size beyond the tree's was asked for.
// Grow makes room for the tree to reach size leaves without its levels
// being copied into larger arrays on the way (at a million leaves those
// copies, and the room append leaves beyond them, cost up to twice the
// tree's 64 bytes a leaf).
func (t *Tree) Grow(size uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for level := 0; size>>level > 0; level++ {
		if len(t.levels) <= level {
			t.levels = append(t.levels, nil)
		}
		want := int(size >> level)
		if n := len(t.levels[level]); want > n {
			t.levels[level] = slices.Grow(t.levels[level], want-n)
		}
	}
}

var errTooLarge = errors.New("the tree does not have that many leaves")

func (t *Tree) node(id compact.NodeID) []byte {
	h := t.levels[id.Level][id.Index]
	return h[:]
}

// Root is the root hash of the tree's first size leaves (the empty tree's
// root is SHA-256 of nothing).
func (t *Tree) Root(size uint64) ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if size > t.rng.End() {
		return nil, fmt.Errorf("root at %d: %w (%d)", size, errTooLarge, t.rng.End())
	}
	if size == 0 {
		return hasher.EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		hashes[i] = t.node(id)
	}
	r, err := factory.NewRange(0, size, hashes)
	if err != nil {
		return nil, err
	}
	return r.GetRootHash(nil)
}

// Inclusion is the RFC 6962 inclusion proof of leaf index in the tree of
// the given size.
func (t *Tree) Inclusion(index, size uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return t.fetch(nodes, size)
}

// Consistency is the RFC 6962 consistency proof between the trees of sizes
// size1 <= size2.
func (t *Tree) Consistency(size1, size2 uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return t.fetch(nodes, size2)
}

func (t *Tree) fetch(nodes proof.Nodes, size uint64) ([][]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if size > t.rng.End() {
		return nil, fmt.Errorf("proof at %d: %w (%d)", size, errTooLarge, t.rng.End())
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		hashes[i] = t.node(id)
	}
	return nodes.Rehash(hashes, hasher.HashChildren)
}

// LeafHash is the RFC 6962 hash of a leaf with the given data.
func LeafHash(data []byte) []byte { return hasher.HashLeaf(data) }

// VerifyInclusion checks an inclusion proof of the leaf with the given
// data at index in the tree of the given size and root.
func VerifyInclusion(data []byte, index, size uint64, p [][]byte, root []byte) error {
	return proof.VerifyInclusion(hasher, index, size, hasher.HashLeaf(data), p, root)
}

// VerifyConsistency checks a consistency proof between two tree heads.
func VerifyConsistency(size1, size2 uint64, p [][]byte, root1, root2 []byte) error {
	return proof.VerifyConsistency(hasher, size1, size2, p, root1, root2)
}

// BuildTree is a tree over the given leaf data, in order.
func BuildTree(leaves [][]byte) (*Tree, error) {
	t := NewTree()
	for _, l := range leaves {
		if err := t.Append(l); err != nil {
			return nil, err
		}
	}
	return t, nil
}
