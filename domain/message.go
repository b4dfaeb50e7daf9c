package domain

import "time"

// Message is one stored message as a reader of the event stream gets it.
type Message struct {
	// Sequence is the message's stream sequence.
	Sequence uint64
	// Event is the decoded, hash-checked event. When Err is set it holds
	// only what could be read (the engagement id, from the subject).
	Event Event
	// Payload is the stored CloudEvent document, byte for byte: its
	// personal fields sealed (the hash covers these bytes).
	Payload []byte
	// Opened, when the event has personal fields, is the CloudEvent with
	// them opened (or erased) that subscribers are sent; nil otherwise.
	Opened []byte
	// Subject is the NATS subject the message is stored under, and Hash
	// and PrevHash its Engagements-Hash and Engagements-Prev-Hash headers as
	// stored, whether or not they check out (Event.Hash and Event.PrevHash
	// are set only for a message that decodes). Proofs commit to them.
	Subject        string
	Hash, PrevHash string
	// Err says why this message is not a valid event (it does not decode,
	// or fails its hash check); reading goes on with the next one.
	Err error
}

// Document is the CloudEvent a subscriber is sent: Opened, or Payload
// when the event has no personal fields.
func (m Message) Document() []byte {
	if m.Opened != nil {
		return m.Opened
	}
	return m.Payload
}

// Filter picks the stored messages a reader gets; empty fields of the
// Selection match all.
type Filter struct {
	Selection
	// Live keeps reading the events appended after the stored ones,
	// until the reader stops; without it reading ends at the end of the
	// stream as it was when reading began.
	Live bool
	// Since, when not zero and reading starts at the beginning (after 0),
	// starts at the first message stored at or after it, by the time the
	// stream stored it (an event's recorded_at, give or take the write's
	// round trip); a read that starts after a sequence ignores it.
	Since time.Time
}
