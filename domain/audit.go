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
	// gap, every document missing or altered, and every signed checkpoint
	// that fails its check.
	Problems []Problem `json:"problems"`
	// Unattached lists the objects in the document bucket that no event
	// names (whole-stream verifications only): an upload under way, or
	// one whose event was refused and whose object could not be deleted.
	// They are never listed or served; they do not make OK false.
	Unattached []UnattachedDocument `json:"unattached,omitempty"`
	// Checkpoints is what was found of the signed checkpoints; nil where
	// they were not checked.
	Checkpoints *CheckpointCheck `json:"checkpoints,omitempty"`
}

// UnattachedDocument is an object in the document bucket no event names.
type UnattachedDocument struct {
	DocumentID string `json:"document_id"`
	// EngagementID is the engagement it was uploaded for, as the object says.
	EngagementID string    `json:"engagement_id,omitempty"`
	StoredAt     time.Time `json:"stored_at"`
}

// CheckpointCheck is what a verification found of the signed checkpoints
// up to the last sequence it verified.
type CheckpointCheck struct {
	// Checked is how many checkpoints were checked; Valid how many of them
	// have a good signature by a known key, match the stream (root, head and
	// heads root) and are consistent with the checkpoint before them.
	Checked int `json:"checked"`
	Valid   int `json:"valid"`
	// LatestSequence and LatestRoot are those of the last valid checkpoint.
	LatestSequence uint64 `json:"latest_sequence"`
	LatestRoot     string `json:"latest_root,omitempty"`
	// Keys is how many public keys were trusted.
	Keys int `json:"keys"`
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
