package eventstore

import (
	"context"
	"fmt"

	"github.com/iom-who/engagements/domain"
)

// selectionSubjects builds filter subjects from allow-listed parts only.
func selectionSubjects(sel domain.Selection) ([]string, error) {
	id := "*"
	if sel.EngagementID != "" {
		if err := domain.CheckID(sel.EngagementID); err != nil {
			return nil, err
		}
		id = sel.EngagementID
	}
	kind := "*"
	if sel.Kind != "" {
		if !sel.Kind.Valid() {
			return nil, fmt.Errorf("filter: unknown kind %q", sel.Kind)
		}
		kind = string(sel.Kind)
	}
	if len(sel.Types) == 0 {
		return []string{subjectRoot + "." + kind + "." + id + ".*"}, nil
	}
	out := make([]string, 0, len(sel.Types))
	for _, t := range sel.Types {
		if _, err := domain.ParseEventType(string(t)); err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		out = append(out, subjectRoot+"."+kind+"."+id+"."+t.Verb())
	}
	return out, nil
}

// Follow delivers the stored CloudEvent documents (the message payloads,
// byte for byte, with the decoded event) that sel matches, after sequence
// after, then new ones as they are appended, with no gap and no duplicate
// (one consumer does both), until ctx ends or fn returns an error, which
// Follow returns, or until the consumer is lost (an error wrapping
// domain.ErrUnavailable: follow again after the last sequence). Messages that do not decode or fail their hash check
// are not passed on (verify reports them).
func (s *Store) Follow(ctx context.Context, after uint64, sel domain.Selection, fn func(ev domain.Event, payload []byte) error) error {
	subjects, err := selectionSubjects(sel)
	if err != nil {
		return err
	}
	return s.read(ctx, after, subjects, false, func(m message) error {
		if m.err != nil {
			s.log.Warn("not following a message that fails its checks", "sequence", m.seq, "err", m.err)
			return nil
		}
		return fn(m.ev, m.payload)
	})
}
