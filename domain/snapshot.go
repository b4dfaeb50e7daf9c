package domain

// EngagementSnapshot is an engagement's whole state, including what Apply
// keeps for corrections, in a form that can be saved and restored (for
// projection checkpoints).
type EngagementSnapshot struct {
	State Engagement
	// Events is the engagement's packed event references (ids and types).
	Events  []byte
	Sources map[string]string
}

// Snapshot returns the engagement's whole state.
func (e *Engagement) Snapshot() EngagementSnapshot {
	c := e.Clone()
	return EngagementSnapshot{State: *c, Events: c.events, Sources: c.sources}
}

// Restore rebuilds an engagement from a snapshot, which it takes over: the
// caller must not use s afterwards.
func Restore(s EngagementSnapshot) *Engagement {
	e := s.State
	e.events, e.sources = s.Events, s.Sources
	// Encodings such as gob drop empty slices; the API shows them as [].
	for _, l := range []*[]string{&e.Parties, &e.Tags} {
		if *l == nil {
			*l = []string{}
		}
	}
	if e.Links == nil {
		e.Links = []Link{}
	}
	if e.sources == nil {
		e.sources = map[string]string{}
	}
	return &e
}
