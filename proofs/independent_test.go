package proofs_test

// This file re-implements the check of a proof file from README.md's
// description alone, with nothing but the standard library's crypto/sha256,
// crypto/ed25519 and encoding/json (and the encodings): it must not import
// package proofs or eventstore, so that the documentation, not the
// service's code, is what it follows.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

type indCheckpoint struct {
	Sequence    uint64 `json:"sequence"`
	Root        string `json:"root"`
	Head        string `json:"head"`
	HeadsRoot   string `json:"heads_root"`
	Engagements uint64 `json:"engagements"`
	CreatedAt   string `json:"created_at"`
	KeyID       string `json:"key_id"`
	Signature   string `json:"signature"`
}

type indProof struct {
	Format       string        `json:"format"`
	EngagementID string        `json:"engagement_id"`
	Checkpoint   indCheckpoint `json:"checkpoint"`
	Events       []struct {
		Sequence  uint64   `json:"sequence"`
		Subject   string   `json:"subject"`
		Hash      string   `json:"hash"`
		PrevHash  string   `json:"prev_hash"`
		Payload   string   `json:"payload"`
		Inclusion []string `json:"inclusion"`
	} `json:"events"`
	Head struct {
		Index     uint64   `json:"index"`
		Inclusion []string `json:"inclusion"`
	} `json:"head"`
}

var indHex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// independentVerify checks a proof file against one public key.
func independentVerify(file []byte, pub ed25519.PublicKey) error {
	dec := json.NewDecoder(bytes.NewReader(file))
	dec.DisallowUnknownFields()
	var p indProof
	if err := dec.Decode(&p); err != nil {
		return err
	}
	if strings.Trim(string(file[dec.InputOffset():]), " \t\r\n") != "" { // JSON whitespace only
		return errors.New("data after the proof")
	}
	if p.Format != "engagements-proof/1" {
		return errors.New("format")
	}
	c := p.Checkpoint
	// The key id and the signature over the eight documented lines.
	sum := sha256.Sum256(pub)
	if c.KeyID != hex.EncodeToString(sum[:8]) {
		return errors.New("key id")
	}
	for _, h := range []string{c.Root, c.Head, c.HeadsRoot} {
		if !indHex64.MatchString(h) {
			return errors.New("checkpoint hash form")
		}
	}
	signed := fmt.Sprintf("engagements-checkpoint/1\nsequence %d\nroot %s\nhead %s\nheads_root %s\nengagements %d\ncreated_at %s\nkey_id %s\n",
		c.Sequence, c.Root, c.Head, c.HeadsRoot, c.Engagements, c.CreatedAt, c.KeyID)
	sig, err := base64.StdEncoding.Strict().DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, []byte(signed), sig) {
		return errors.New("signature")
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(c.CreatedAt) {
		return errors.New("created_at form")
	}
	root, _ := hex.DecodeString(c.Root)
	if len(p.Events) == 0 {
		return errors.New("no events")
	}
	prev, prevSeq := "", uint64(0)
	subject := regexp.MustCompile(`^engagements\.[a-z]+\.` + regexp.QuoteMeta(p.EngagementID) + `\.[a-z_]+$`)
	for _, e := range p.Events {
		if !subject.MatchString(e.Subject) || !indHex64.MatchString(e.Hash) {
			return errors.New("subject or hash form")
		}
		payload, err := base64.StdEncoding.Strict().DecodeString(e.Payload)
		if err != nil {
			return err
		}
		h := sha256.Sum256([]byte(e.PrevHash + e.Subject + string(payload)))
		if hex.EncodeToString(h[:]) != e.Hash {
			return errors.New("chain hash")
		}
		if e.PrevHash != prev {
			return errors.New("prev hash link")
		}
		if e.Sequence <= prevSeq || e.Sequence > c.Sequence {
			return errors.New("sequence order")
		}
		if err := indInclusion(h[:], e.Sequence-1, c.Sequence, e.Inclusion, root); err != nil {
			return err
		}
		prev, prevSeq = e.Hash, e.Sequence
	}
	headsRoot, _ := hex.DecodeString(c.HeadsRoot)
	return indInclusion([]byte(p.EngagementID+" "+prev), p.Head.Index, c.Engagements, p.Head.Inclusion, headsRoot)
}

// indInclusion is RFC 9162 section 2.1.3.2: verify that leaf data is at
// index in the tree of size with root.
func indInclusion(data []byte, index, size uint64, proof []string, root []byte) error {
	node := func(l, r []byte) []byte {
		h := sha256.Sum256(append(append([]byte{1}, l...), r...))
		return h[:]
	}
	leaf := sha256.Sum256(append([]byte{0}, data...))
	if index >= size {
		return errors.New("index beyond the tree")
	}
	fn, sn, r := index, size-1, leaf[:]
	for _, ph := range proof {
		if !indHex64.MatchString(ph) {
			return errors.New("proof hash form")
		}
		p, _ := hex.DecodeString(ph)
		if sn == 0 {
			return errors.New("proof too long")
		}
		if fn&1 == 1 || fn == sn {
			r = node(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = node(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || !bytes.Equal(r, root) {
		return errors.New("inclusion proof does not lead to the root")
	}
	return nil
}
