package eventstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"iter"
	"slices"

	"github.com/iom-who/engagements/domain"
)

// Chains folds stored messages into each engagement's chain the way Verify
// does, so that whoever needs the verify head at some sequence (signed
// checkpoints) gets exactly Verify's. The zero value is not usable; call
// NewChains.
type Chains struct {
	states map[string]*domain.Engagement
}

// NewChains returns chains with no engagement in them.
func NewChains() *Chains { return &Chains{states: make(map[string]*domain.Engagement)} }

// Fold applies the next message in stream order. It returns "" when the
// message continues its engagement's chain (it is that engagement's new
// head), else the problem Verify reports for it.
func (c *Chains) Fold(m domain.Message) string {
	if m.Err != nil {
		return m.Err.Error()
	}
	ev := m.Event
	e, ok := c.states[ev.EngagementID]
	if !ok {
		e = &domain.Engagement{}
	}
	if err := e.Apply(ev); err != nil {
		return "does not continue its engagement: " + err.Error()
	}
	c.states[ev.EngagementID] = e
	return ""
}

// Len is the number of engagements with at least one valid event.
func (c *Chains) Len() int { return len(c.states) }

// Head digests every chain head: SHA-256 over the lines
// "<engagement id> <hash of its latest valid event>\n", sorted by id.
func (c *Chains) Head() string {
	h := sha256.New()
	for id, hash := range c.Heads() {
		fmt.Fprintf(h, "%s %s\n", id, hash)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Heads yields each engagement's id and the hash of its latest valid
// event, sorted by id.
func (c *Chains) Heads() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, id := range c.ids() {
			if !yield(id, c.states[id].Hash()) {
				return
			}
		}
	}
}

func (c *Chains) ids() []string {
	ids := make([]string, 0, len(c.states))
	for id := range c.states {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
