package domain

import "time"

// Report is the result of walking the whole stream to verify it.
type Report struct {
	// OK is true when no problem was found.
	OK bool `json:"ok"`
	// Events is the number of messages read.
	Events uint64 `json:"events"`
	// Engagements is the number of distinct engagements seen.
	Engagements int `json:"engagements"`
	// LastSequence is the stream's last sequence when the walk began.
	LastSequence uint64 `json:"last_sequence"`
	// Head is one digest over every engagement's chain head; an auditor can
	// note it down and compare it later (it changes only when events are added).
	Head string `json:"head"`
	// Documents is the number of attached documents whose bytes were read
	// and checked against their events.
	Documents int `json:"documents"`
	// Problems lists every broken link, forged or undecodable event and
	// gap, and every document missing or altered.
	Problems []Problem `json:"problems"`
	// Unattached lists the objects in the document bucket that no event
	// names (whole-stream verifications only): an upload under way, or
	// one whose event was refused and whose object could not be deleted.
	// They are never listed or served; they do not make OK false.
	Unattached []UnattachedDocument `json:"unattached,omitempty"`
}

// UnattachedDocument is an object in the document bucket no event names.
type UnattachedDocument struct {
	DocumentID string `json:"document_id"`
	// EngagementID is the engagement it was uploaded for, as the object says.
	EngagementID string    `json:"engagement_id,omitempty"`
	StoredAt     time.Time `json:"stored_at"`
}

// Problem is one finding of a verification.
type Problem struct {
	Sequence     uint64 `json:"sequence"`
	EngagementID string `json:"engagement_id,omitempty"`
	// DocumentID names the document a problem is about, if any.
	DocumentID string `json:"document_id,omitempty"`
	Problem    string `json:"problem"`
}

// Selection picks the events a subscriber follows; empty fields match all.
type Selection struct {
	Kind         Kind
	Types        []EventType
	EngagementID string
}
