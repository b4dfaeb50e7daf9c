package proofs

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Checkpoint is a signed statement of the stream's state at one sequence:
// the root of the Merkle tree over its first Sequence messages, Verify's
// head there, and the root of the tree of engagement heads, which lets a
// proof show that it holds an engagement's latest event.
type Checkpoint struct {
	// Sequence is the last stream sequence covered: the tree's size.
	Sequence uint64 `json:"sequence"`
	// Root is the RFC 6962 root of the tree over messages 1..Sequence,
	// lower-case hex.
	Root string `json:"root"`
	// Head is Verify's head over messages 1..Sequence.
	Head string `json:"head"`
	// HeadsRoot is the RFC 6962 root of the tree whose leaves are the
	// lines "<engagement id> <hash of its latest valid event>" sorted by
	// id (Head digests the same lines), and Engagements its size.
	HeadsRoot   string `json:"heads_root"`
	Engagements uint64 `json:"engagements"`
	// CreatedAt is when it was signed, UTC, RFC 3339 to the second
	// (TimeLayout), kept as the string that was signed.
	CreatedAt string `json:"created_at"`
	// KeyID names the key that signed it.
	KeyID string `json:"key_id"`
	// Signature is the standard base64 of the Ed25519 signature of
	// SignedBytes.
	Signature string `json:"signature"`
}

// TimeLayout is the layout of CreatedAt.
const TimeLayout = "2006-01-02T15:04:05Z"

// checkpointFormat is the first line of the signed bytes.
const checkpointFormat = "engagements-checkpoint/1"

// SignedBytes is the canonical text a checkpoint's signature covers: eight
// lines, each ending in "\n":
//
//	engagements-checkpoint/1
//	sequence <decimal>
//	root <64 lower-case hex>
//	head <64 lower-case hex>
//	heads_root <64 lower-case hex>
//	engagements <decimal>
//	created_at <YYYY-MM-DDTHH:MM:SSZ>
//	key_id <16 lower-case hex>
func (c Checkpoint) SignedBytes() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nsequence %d\nroot %s\nhead %s\nheads_root %s\nengagements %d\ncreated_at %s\nkey_id %s\n",
		checkpointFormat, c.Sequence, c.Root, c.Head, c.HeadsRoot, c.Engagements, c.CreatedAt, c.KeyID)
	return []byte(b.String())
}

var (
	hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hex16 = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// ErrBadCheckpoint marks a checkpoint that is malformed or whose signature
// does not check out.
var ErrBadCheckpoint = errors.New("checkpoint fails its check")

// check checks the checkpoint's form: every field in its one spelling.
func (c Checkpoint) check() error {
	for _, f := range []struct{ name, v string }{{"root", c.Root}, {"head", c.Head}, {"heads_root", c.HeadsRoot}} {
		if !hex64.MatchString(f.v) {
			return fmt.Errorf("%w: %s is not 64 lower-case hex digits", ErrBadCheckpoint, f.name)
		}
	}
	if !hex16.MatchString(c.KeyID) {
		return fmt.Errorf("%w: key_id is not 16 lower-case hex digits", ErrBadCheckpoint)
	}
	if t, err := time.Parse(TimeLayout, c.CreatedAt); err != nil || t.Format(TimeLayout) != c.CreatedAt {
		return fmt.Errorf("%w: created_at is not YYYY-MM-DDTHH:MM:SSZ", ErrBadCheckpoint)
	}
	return nil
}

// Verify checks the checkpoint's form and its signature with the key of its
// KeyID among keys.
func (c Checkpoint) Verify(keys []ed25519.PublicKey) error {
	if err := c.check(); err != nil {
		return err
	}
	var pub ed25519.PublicKey
	for _, k := range keys {
		if KeyID(k) == c.KeyID {
			pub = k
		}
	}
	if pub == nil {
		return fmt.Errorf("%w: signed by key %s, which is not one of the trusted keys", ErrBadCheckpoint, c.KeyID)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(c.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: the signature is not base64 of %d bytes", ErrBadCheckpoint, ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, c.SignedBytes(), sig) {
		return fmt.Errorf("%w: the signature does not match (altered, or not signed by key %s)", ErrBadCheckpoint, c.KeyID)
	}
	return nil
}

// Sign sets KeyID and Signature with key.
func (c *Checkpoint) Sign(key ed25519.PrivateKey) {
	c.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.SignedBytes()))
}

// rootBytes decodes one of the checkpoint's hex fields, which check has
// checked.
func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("proofs: " + strconv.Quote(s) + " is not hex")
	}
	return b
}

// KeyID names a public key: the first 16 hex digits of the SHA-256 of its
// 32 bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}
