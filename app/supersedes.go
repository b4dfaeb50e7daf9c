package app

import (
	"encoding/json"
	"fmt"

	"github.com/iom-who/engagements/domain"
)

// MaxSupersedes bounds the engagements a new supersedes link is checked
// against: a link to an engagement that supersedes more of them, directly
// or through others, is refused rather than followed further.
const MaxSupersedes = 1000

// supersedes is the relation whose links may not form a cycle: an
// engagement cannot, through others, supersede itself.
const supersedes = "supersedes"

// checkSupersedes refuses an event that would make ev's engagement
// supersede, through the supersedes links the projection holds, an
// engagement that supersedes it: an engagement.linked with relation
// supersedes, or an engagement.corrected that turns a link into one or
// points one elsewhere. The refusal is a field error on data.target_id
// (data.fields.target_id, or data.fields.relation when only the relation is
// corrected).
func (s *Service) checkSupersedes(ev domain.Event) error {
	target, field, ok, err := s.supersededBy(ev)
	if err != nil || !ok {
		return err
	}
	reached, err := s.reaches(target, ev.EngagementID)
	if err != nil {
		return &domain.ValidationError{Fields: []domain.FieldError{{Field: field, Message: err.Error()}}}
	}
	if reached {
		return &domain.ValidationError{Fields: []domain.FieldError{{Field: field,
			Message: "supersedes, directly or through others, this engagement: supersedes links may not form a cycle"}}}
	}
	return nil
}

// supersededBy returns the engagement ev makes its engagement supersede
// (ok false when it makes none) and the field a refusal names.
func (s *Service) supersededBy(ev domain.Event) (target, field string, ok bool, err error) {
	type link struct {
		TargetID *string `json:"target_id"`
		Relation *string `json:"relation"`
	}
	var d struct {
		link
		Corrects string `json:"corrects"`
		Fields   link   `json:"fields"` // of a correction (decided, so v2)
	}
	switch ev.Type {
	case domain.EngagementLinked, domain.EngagementCorrected:
	default:
		return "", "", false, nil
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return "", "", false, fmt.Errorf("decode %s: %w", ev.Type, err)
	}
	field = "data.target_id"
	if ev.Type == domain.EngagementCorrected {
		d.link, field = d.Fields, "data.fields.target_id"
		if d.TargetID == nil && d.Relation == nil {
			return "", "", false, nil
		}
		// The link as the correction leaves it: corrected fields over the
		// link's current ones.
		var link domain.Link
		s.proj.Read(ev.EngagementID, func(e *domain.Engagement, _ uint64) {
			for _, l := range e.Links() {
				if l.EventID == d.Corrects {
					link = l
				}
			}
		})
		if link.EventID == "" {
			return "", "", false, nil // it corrects no link
		}
		if d.TargetID == nil {
			d.TargetID, field = &link.TargetID, "data.fields.relation"
		}
		if d.Relation == nil {
			d.Relation = &link.Relation
		}
	}
	if d.TargetID == nil || d.Relation == nil || *d.Relation != supersedes {
		return "", "", false, nil
	}
	return *d.TargetID, field, true, nil
}

// reaches reports whether from supersedes to, directly or through others;
// it is an error when from supersedes more than MaxSupersedes engagements.
func (s *Service) reaches(from, to string) (bool, error) {
	seen := map[string]bool{from: true}
	next := []string{from}
	for len(next) > 0 {
		id := next[len(next)-1]
		next = next[:len(next)-1]
		found := false
		s.proj.Read(id, func(e *domain.Engagement, _ uint64) {
			for _, l := range e.Links() {
				switch {
				case l.Relation != supersedes || seen[l.TargetID]:
				case l.TargetID == to:
					found = true
				default:
					seen[l.TargetID] = true
					next = append(next, l.TargetID)
				}
			}
		})
		if found {
			return true, nil
		}
		if len(seen) > MaxSupersedes {
			return false, fmt.Errorf("supersedes more than %d engagements, directly or through others: a chain that long is not followed", MaxSupersedes)
		}
	}
	return false, nil
}
