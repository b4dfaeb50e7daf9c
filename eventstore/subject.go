package eventstore

import (
	"fmt"
	"strings"

	"github.com/iom-who/engagements/domain"
)

const subjectRoot = "engagements"

// intakeRoot is the root of the subjects the service publishes appends to.
// The stream takes them and stores each under the contract's subject
// (engagements.<kind>.<id>.<verb>, a subject transform), then republishes
// what it stored there: a core subscriber of engagements.> sees stored
// events only, never a publish JetStream refused. It is not under
// engagements.>, so subscribers of the contract's subjects never see it.
const intakeRoot = "engagements-intake"

// IntakeSubject is the subject an append to subject (one under
// engagements.>) is published on: the same tokens under
// engagements-intake.>, which the stream stores under subject again. Any
// other subject is returned as it is. Publishing to engagements.> stores
// nothing; tests that forge stored messages publish to IntakeSubject.
func IntakeSubject(subject string) string {
	if rest, ok := strings.CutPrefix(subject, subjectRoot+"."); ok {
		return intakeRoot + "." + rest
	}
	return subject
}

// Subject builds engagements.<kind>.<id>.<verb>. It is the one place that
// builds subjects, and it only accepts allow-listed kinds and types and ids in
// canonical UUID form, so nothing a client sends can smuggle `.`, `*`, `>` or
// whitespace into a subject.
func Subject(kind domain.Kind, id string, t domain.EventType) (string, error) {
	if !kind.Valid() {
		return "", fmt.Errorf("subject: unknown kind %q", kind)
	}
	if err := domain.CheckID(id); err != nil {
		return "", fmt.Errorf("subject: %w", err)
	}
	if _, err := domain.ParseEventType(string(t)); err != nil {
		return "", fmt.Errorf("subject: %w", err)
	}
	return subjectRoot + "." + string(kind) + "." + id + "." + t.Verb(), nil
}

// filterSubjects builds the filter subjects of sel, from allow-listed parts
// only: a kind that is one of domain's, an id in canonical form, event types
// that domain knows. The empty selection is every message on the stream,
// those under subjects no Append would build included: a reader of it gets
// them as undecodable, so no message goes unseen.
func filterSubjects(sel domain.Selection) ([]string, error) {
	if sel.EngagementID == "" && sel.Kind == "" && len(sel.Types) == 0 {
		return []string{subjectRoot + ".>"}, nil
	}
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

// readSubjects are the filter subjects an ephemeral reader of sel uses:
// filterSubjects, but none at all for the empty selection. engagements.> is
// every stored subject too, yet since the stream's own subjects are the
// intake's the server would match each message against it (measured: a
// rebuild at half the rate).
func readSubjects(sel domain.Selection) ([]string, error) {
	if sel.EngagementID == "" && sel.Kind == "" && len(sel.Types) == 0 {
		return nil, nil
	}
	return filterSubjects(sel)
}

// engagementFilter matches every subject of one engagement, whatever its kind.
func engagementFilter(id string) string {
	return subjectRoot + ".*." + id + ".*"
}

// engagementOf is the engagement id that engagementFilter matches subject
// under, or "" if none: what a stored message counts for in the
// expected-last-sequence check, whether or not it decodes.
func engagementOf(subject string) string {
	tokens := strings.Split(subject, ".")
	if len(tokens) != 4 || tokens[0] != subjectRoot || domain.CheckID(tokens[2]) != nil {
		return ""
	}
	return tokens[2]
}
