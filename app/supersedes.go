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
	var l domain.LinkedData
	switch ev.Type {
	case domain.EngagementLinked:
		if l, err = domain.DecodeData[domain.LinkedData](ev); err != nil {
			return "", "", false, fmt.Errorf("decode link: %w", err)
		}
		field = "data.target_id"
	case domain.EngagementCorrected:
		if l, field, ok, err = s.correctedLink(ev); !ok || err != nil {
			return "", "", false, err
		}
	default:
		return "", "", false, nil
	}
	return l.TargetID, field, l.Relation == supersedes, nil
}

// correctedLink returns the link an engagement.corrected leaves, when it
// corrects one (ok), and the field a refusal names: data.fields.target_id,
// or data.fields.relation when only the relation is corrected.
func (s *Service) correctedLink(ev domain.Event) (l domain.LinkedData, field string, ok bool, err error) {
	cd, err := domain.DecodeData[domain.CorrectedData](ev)
	if err != nil {
		return l, "", false, fmt.Errorf("decode correction: %w", err)
	}
	var fix struct {
		TargetID *string `json:"target_id"`
		Relation *string `json:"relation"`
	}
	if err := json.Unmarshal(cd.Fields, &fix); err != nil {
		return l, "", false, fmt.Errorf("decode corrected fields: %w", err)
	}
	if fix.TargetID == nil && fix.Relation == nil {
		return l, "", false, nil
	}
	s.proj.Read(ev.EngagementID, func(e *domain.Engagement, _ uint64) {
		for _, link := range e.Links() {
			if link.EventID == cd.Corrects {
				l, ok = domain.LinkedData{TargetID: link.TargetID, Relation: link.Relation}, true
			}
		}
	})
	if !ok {
		return l, "", false, nil // it corrects no link
	}
	field = "data.fields.relation"
	if fix.TargetID != nil {
		l.TargetID, field = *fix.TargetID, "data.fields.target_id"
	}
	if fix.Relation != nil {
		l.Relation = *fix.Relation
	}
	return l, field, true, nil
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
