package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Adapters wrap them with context; the HTTP layer alone maps
// them to statuses with errors.Is.
var (
	// ErrNotFound means the engagement (or event) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidID means an id is not a UUID in canonical lower-case form.
	ErrInvalidID = errors.New("invalid id")
	// ErrConflict means another writer appended to the engagement first.
	ErrConflict = errors.New("conflict: the engagement changed meanwhile")
	// ErrPreconditionFailed means the caller's expected version is not the current one.
	ErrPreconditionFailed = errors.New("precondition failed: version does not match")
	// ErrUnknownEventType means the event type is not one of the allowed types.
	ErrUnknownEventType = errors.New("unknown event type")
	// ErrInvalidTransition means the event is not allowed in the engagement's current state.
	ErrInvalidTransition = errors.New("invalid transition")
	// ErrUnavailable means the event store cannot be reached right now.
	ErrUnavailable = errors.New("event store unavailable")
)

// FieldError describes one problem with one field of a request or event.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists the fields that break the rules (missing, out of
// range, not allowed for the kind). It maps to 422.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

// add records a field problem.
func (e *ValidationError) add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// orNil returns e when it holds problems, nil otherwise.
func (e *ValidationError) orNil() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// MalformedError means a value has the wrong JSON shape: a wrong type, an
// unknown field, a duplicate key, text that is not JSON. It maps to 400.
type MalformedError struct {
	Fields []FieldError
}

func (e *MalformedError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "malformed: " + strings.Join(parts, "; ")
}

// TransitionError explains why an event is not allowed now. It wraps
// ErrInvalidTransition.
type TransitionError struct {
	Type   EventType
	Status Status
	Reason string
}

func (e *TransitionError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s is not allowed: %s", e.Type, e.Reason)
	}
	return fmt.Sprintf("%s is not allowed while the engagement is %s", e.Type, e.Status)
}

// Unwrap makes errors.Is(err, ErrInvalidTransition) true.
func (e *TransitionError) Unwrap() error { return ErrInvalidTransition }
