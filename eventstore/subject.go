package eventstore

import (
	"fmt"

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
