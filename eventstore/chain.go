package eventstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers that carry each event's place in its engagement's hash chain.
const (
	HeaderHash     = "Engagements-Hash"
	HeaderPrevHash = "Engagements-Prev-Hash"
)

// ErrUnverified marks a stored message whose hash header is missing or does
// not match its content: published around the API, or altered.
var ErrUnverified = errors.New("event fails its hash check")

// ChainHash is the hash of one event: the lower-case hex SHA-256 of the
// previous event's hash (as its 64 hex characters; empty for an engagement's
// first event), then the NATS subject, then the payload bytes exactly as
// stored, with nothing between them. An outside auditor can recompute it
// with: printf '%s%s' "$prev_hash" "$subject" | cat - payload.json | sha256sum
func ChainHash(prevHash, subject string, payload []byte) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write([]byte(subject))
	h.Write(payload)
	return hex.EncodeToString(h.Sum(nil))
}

// DecodeStored is a stored message as Store.Read yields it, from its parts
// kept elsewhere (an exported bundle): decoded and hash-checked against its
// Engagements-Hash and Engagements-Prev-Hash headers hash and prevHash.
func DecodeStored(seq uint64, subject, hash, prevHash string, payload []byte) domain.Message {
	hdr := nats.Header{}
	if hash != "" {
		hdr.Set(HeaderHash, hash)
	}
	if prevHash != "" {
		hdr.Set(HeaderPrevHash, prevHash)
	}
	m := domain.Message{Sequence: seq, Payload: payload, Subject: subject, Hash: hash, PrevHash: prevHash}
	m.Event, m.Err = decodeMsg(subject, hdr, payload, seq)
	return m
}

// decodeMsg decodes a stored message and checks its own hash. The link to the
// previous event (prev_hash equals the engagement's head) is the domain's
// check, made when the event is folded.
func decodeMsg(subject string, hdr nats.Header, payload []byte, seq uint64) (domain.Event, error) {
	ev, err := Decode(subject, payload, seq)
	if err != nil {
		// Even a message that does not decode moves its engagement's subject
		// sequence; readers need the id to expect it on the next append.
		ev.EngagementID = engagementOf(subject)
		return ev, err
	}
	ev.IdempotencyKey = hdr.Get(jetstream.MsgIDHeader)
	ev.Hash, ev.PrevHash = hdr.Get(HeaderHash), hdr.Get(HeaderPrevHash)
	if ev.Hash == "" {
		return ev, fmt.Errorf("%w at sequence %d: no %s header (published around the API)", ErrUnverified, seq, HeaderHash)
	}
	if ChainHash(ev.PrevHash, subject, payload) != ev.Hash {
		return ev, fmt.Errorf("%w at sequence %d: the hash does not match the subject and payload (altered)", ErrUnverified, seq)
	}
	return ev, nil
}
