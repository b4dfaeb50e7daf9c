package domain

import (
	"encoding/json"
	"regexp"
	"time"
)

// Erased is what a reader shows in place of a personal field whose data
// subject's key was destroyed.
const Erased = "[erased]"

// PersonalField is one personal field of an event as a reader gets it.
type PersonalField struct {
	// Field is the field's path in the event's data: "name", or for a
	// correction "fields.name".
	Field string `json:"field"`
	// PersonID is the data subject the field's value belongs to.
	PersonID string `json:"person_id"`
	// Erased is true when the subject's key is gone: the value reads
	// Erased.
	Erased bool `json:"erased,omitempty"`
}

// personIDPattern is a data subject's id: "p" and 32 lower-case hex digits
// (a keyed hash, so that the id says nothing of the person).
var personIDPattern = regexp.MustCompile(`^p[0-9a-f]{32}$`)

// CheckPersonID reports whether s is a well-formed data subject id; ids
// name KV keys, so nothing else reaches them.
func CheckPersonID(s string) bool { return personIDPattern.MatchString(s) }

// personID accepts one data subject id.
func personID(raw json.RawMessage) (any, string, bool) {
	var s string
	if err := unmarshalString(raw, &s); err != nil {
		return nil, "must be a string", true
	}
	if !CheckPersonID(s) {
		return nil, `must be a person id ("p" and 32 hex digits)`, false
	}
	return s, "", false
}

// PersonalFields are the names of t's fields that hold personal data (nil
// for a type with none). For engagement.corrected, ask for the corrected
// event's type: its personal fields sit under "fields".
func PersonalFields(t EventType) []string {
	spec, ok := specByType[t]
	if !ok {
		return nil
	}
	var out []string
	for _, f := range spec.Fields {
		if f.Personal {
			out = append(out, f.Name)
		}
	}
	return out
}

// EventTypeOf is the type of e's event id, if e has one.
func (e *Engagement) EventTypeOf(id string) (EventType, bool) { return e.eventType(id) }

// Person is what the keyring tells of a data subject: no key, no name.
type Person struct {
	ID string `json:"id"`
	// KeyVersion counts the subject's keys: a mention after an erasure
	// starts a new one.
	KeyVersion int  `json:"key_version"`
	Erased     bool `json:"erased"`
	// ErasedAt and ErasedBy say when and by whom the last key was erased.
	ErasedAt time.Time `json:"erased_at,omitzero"`
	ErasedBy string    `json:"erased_by,omitempty"`
}
