package webui

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
)

// fieldDef is how one event data field is labelled and entered, and
// whether it is required: the domain's spec of the event type says it all.
type fieldDef = domain.Field

// fieldDefs are the data fields of an event type, in the order a form shows them.
func fieldDefs(t domain.EventType) []fieldDef {
	s, ok := domain.SpecOf(t)
	if !ok {
		return nil
	}
	return s.Fields
}

// correctionReason is the form name of a correction's own reason, apart
// from a corrected "reason" field (of agreement.terminated, initiative.left).
const correctionReason = "correction_reason"

// occurredAt is the form name of the event's occurred_at date.
const occurredAt = "occurred_at"

// form is one event a user may record: its type and fields, and for a
// correction the event it corrects.
type form struct {
	typ    domain.EventType
	fields []fieldDef
	// corrects is the corrected event, for engagement.corrected.
	corrects *domain.Event
	// baseline holds the values the fields start with (amend, correct): only
	// fields whose value differs are sent, so an unchanged field never
	// becomes part of the event.
	baseline map[string]string
	// choices turns a text field into a choice among these (the open action
	// items, the parties); generated fills a field the form does not show.
	choices   map[string][]option
	generated map[string]func() string
}

func (f *form) field(name string) (fieldDef, bool) {
	i := slices.IndexFunc(f.fields, func(d fieldDef) bool { return d.Name == name })
	if i < 0 {
		return fieldDef{}, false
	}
	return f.fields[i], true
}

// normalise turns what a browser sent for field d into the value compared
// with the baseline: trimmed, line ends as \n, list entries joined by ", ".
func normalise(d fieldDef, v string) string {
	v = strings.TrimSpace(strings.ReplaceAll(v, "\r\n", "\n"))
	if d.Input == domain.InputList {
		return strings.Join(splitList(v), ", ")
	}
	return v
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' }) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// data builds the event data from form values: empty and unchanged fields
// are left out, lists become arrays. A correction nests the corrected fields
// under "fields" beside "corrects" and "reason".
func (f *form) data(values map[string]string) json.RawMessage {
	m := make(map[string]any)
	for _, d := range f.fields {
		v := normalise(d, values[d.Name])
		if v == "" || f.baseline != nil && v == f.baseline[d.Name] {
			continue
		}
		switch {
		case d.Input == domain.InputList:
			m[d.Name] = splitList(v)
		case d.Input == domain.InputNumber:
			if n, err := strconv.Atoi(v); err == nil {
				m[d.Name] = n
			} else {
				m[d.Name] = v // the domain says what is wrong with it
			}
		default:
			m[d.Name] = v
		}
	}
	for name, gen := range f.generated {
		m[name] = gen()
	}
	if f.corrects != nil {
		c := map[string]any{"corrects": f.corrects.ID}
		if r := strings.TrimSpace(values[correctionReason]); r != "" {
			c["reason"] = r
		}
		if len(m) > 0 {
			c["fields"] = m
		}
		m = c
	}
	b, _ := json.Marshal(m) // strings, string slices and ints always marshal
	return b
}

// fieldOf names the form field a domain field error is about, or "" when it
// is about the form as a whole.
func (f *form) fieldOf(name string) string {
	switch {
	case name == occurredAt:
		return occurredAt
	case f.corrects != nil && name == "data.reason":
		return correctionReason
	}
	n := strings.TrimPrefix(name, "data.")
	if f.corrects != nil {
		n = strings.TrimPrefix(n, "fields.")
	}
	if _, ok := f.field(n); ok {
		return n
	}
	return ""
}

// required are the form fields f's event cannot do without, as its spec
// says: a correction needs only its reason (a field required for one kind
// alone is not marked).
func required(f *form) map[string]bool {
	out := make(map[string]bool)
	if f.corrects != nil {
		out[correctionReason] = true
		return out
	}
	for _, d := range f.fields {
		if d.Required && d.OnlyFor == "" {
			out[d.Name] = true
		}
	}
	return out
}

// allowed asks the domain whether f's event may happen to e now, as far as
// e's state decides; a correction always may.
func allowed(e *domain.Engagement, f *form, now time.Time) error {
	if f.corrects != nil {
		return nil
	}
	return e.Allows(f.typ, now)
}

// fieldsFor keeps the fields of defs that apply to kind k (the spec says
// which fields belong to one kind only).
func fieldsFor(k domain.Kind, defs []fieldDef) []fieldDef {
	return slices.DeleteFunc(slices.Clone(defs), func(d fieldDef) bool { return !appliesTo(d, k) })
}

// appliesTo reports whether field d applies to engagements of kind k.
func appliesTo(d fieldDef, k domain.Kind) bool { return d.OnlyFor == "" || d.OnlyFor == k }

// formError is what the domain said about a submitted form: messages per
// field, and messages about the whole form.
type formError struct {
	fields  map[string]string
	general []string
}

// explain turns a domain error into messages on f's fields. ok is false for
// errors that are not about the form's content (not found, unavailable…).
func explain(f *form, err error) (fe formError, ok bool) {
	fe.fields = make(map[string]string)
	var v *domain.ValidationError
	var m *domain.MalformedError
	var t *domain.TransitionError
	var list []domain.FieldError
	switch {
	case errors.As(err, &v):
		list = v.Fields
	case errors.As(err, &m):
		list = m.Fields
	case errors.As(err, &t):
		fe.general = append(fe.general, "Not allowed now: "+t.Error()+".")
		return fe, true
	case errors.Is(err, domain.ErrUnknownEventType):
		fe.general = append(fe.general, "This kind of event is not known.")
		return fe, true
	default:
		return fe, false
	}
	for _, x := range list {
		name := f.fieldOf(x.Field)
		switch {
		case name == "":
			fe.general = append(fe.general, humanField(x.Field)+" "+x.Message)
		case fe.fields[name] == "":
			fe.fields[name] = x.Message
		default:
			fe.fields[name] += "; " + x.Message
		}
	}
	return fe, true
}

// humanField names a field that has no input of its own.
func humanField(name string) string {
	switch name {
	case "data", "data.fields":
		return "The form"
	case "data.corrects":
		return "The corrected entry"
	}
	return strings.TrimPrefix(name, "data.")
}

// parseOccurred reads the optional occurred_at date of a form, a day or
// only its month or year (with that precision): empty means now (zero). The
// domain's date rules give the message.
func parseOccurred(v string) (time.Time, string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, "", nil
	}
	t, precision, err := domain.ParsePartialDate(v)
	if err != nil {
		return time.Time{}, "", &domain.ValidationError{Fields: []domain.FieldError{{Field: occurredAt, Message: err.Error()}}}
	}
	return t, precision, nil
}
