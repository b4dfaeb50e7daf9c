package eventstore

import (
	"fmt"
	"strings"

	"github.com/iom-who/engagements/domain"
)

const subjectRoot = "engagements"

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
