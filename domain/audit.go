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
	// Problems lists every broken link, forged or undecodable event and gap,
	// and every signed checkpoint that fails its check.
	Problems []Problem `json:"problems"`
	// Checkpoints is what was found of the signed checkpoints; nil where
	// they were not checked.
	Checkpoints *CheckpointCheck `json:"checkpoints,omitempty"`
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
	Problem      string `json:"problem"`
}

// Selection picks the events a subscriber follows; empty fields match all.
type Selection struct {
	Kind         Kind
	Types        []EventType
	EngagementID string
}
