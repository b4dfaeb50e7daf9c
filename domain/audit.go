package domain

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
