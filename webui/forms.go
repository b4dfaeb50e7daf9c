package webui

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
)

// input is how a field is entered.
type input int

const (
	inputText input = iota
	inputTextarea
	inputDate
	inputList       // comma-separated entries, sent as a JSON array
	inputSelect     // one of options
	inputEngagement // another engagement, chosen by title
)

// fieldDef is how one event data field is labelled and entered. Which fields
// are required and which apply to a kind is not written here: the domain is
// asked (see probe and descriptiveFields).
type fieldDef struct {
	name, label, hint string
	input             input
	options           []string
}

func text(name, label, hint string) fieldDef { return fieldDef{name: name, label: label, hint: hint} }
func area(name, label, hint string) fieldDef {
	return fieldDef{name: name, label: label, hint: hint, input: inputTextarea}
}
func day(name, label, hint string) fieldDef {
	return fieldDef{name: name, label: label, hint: hint, input: inputDate}
}
func choice(name, label string, options []string) fieldDef {
	return fieldDef{name: name, label: label, input: inputSelect, options: options}
}

// descriptive are the fields of engagement.recorded and engagement.amended
// besides kind.
var descriptive = []fieldDef{
	text("title", "Title", ""),
	{name: "parties", label: "Parties", hint: "Organisations, separated by commas, e.g. IOM, WHO", input: inputList},
	area("description", "Description", ""),
	{name: "tags", label: "Tags", hint: "Separated by commas", input: inputList},
	choice("instrument", "Instrument", domain.Instruments),
	text("level", "Level", "e.g. UNGA high-level meeting"),
	text("location", "Location", ""),
}

func kindNames() []string {
	out := make([]string, len(domain.Kinds))
	for i, k := range domain.Kinds {
		out[i] = string(k)
	}
	return out
}

// fieldDefs are the data fields of each event type, in the order a form shows them.
var fieldDefs = map[domain.EventType][]fieldDef{
	domain.EngagementRecorded: append([]fieldDef{choice("kind", "Kind", kindNames())}, descriptive...),
	domain.EngagementAmended:  descriptive,
	domain.EngagementLinked: {
		{name: "target_id", label: "Engagement", input: inputEngagement},
		choice("relation", "Relation", domain.Relations),
	},
	domain.EngagementNoted:       {area("note", "Note", "")},
	domain.AgreementSigned:       {day("signed_on", "Signed on", ""), day("expires_on", "Expires on", "Leave empty if open-ended")},
	domain.AgreementRenewed:      {day("renewed_on", "Renewed on", ""), day("expires_on", "Expires on", "Leave empty if open-ended")},
	domain.AgreementTerminated:   {area("reason", "Reason", "")},
	domain.PolicyContributed:     {area("contribution", "Contribution", ""), text("role", "Role", "e.g. co-author, technical adviser")},
	domain.PolicyAdopted:         {text("adopted_by", "Adopted by", "e.g. WHA")},
	domain.PolicyCommitted:       {area("commitment", "Commitment", "")},
	domain.InitiativeJoined:      {text("role", "Role", "e.g. member, co-chair")},
	domain.InitiativeRoleChanged: {text("role", "New role", "")},
	domain.InitiativeLeft:        {area("reason", "Reason", "")},
	domain.MeetingScheduled:      {day("starts_on", "Starts on", ""), text("location", "Location", "")},
	domain.MeetingAttended: {
		choice("role", "Role", domain.AttendanceRoles),
		area("delegation", "Delegation", "Who attended"),
	},
	domain.MeetingConcluded: {area("outcome", "Outcome", "")},
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
}

func (f *form) field(name string) (fieldDef, bool) {
	i := slices.IndexFunc(f.fields, func(d fieldDef) bool { return d.name == name })
	if i < 0 {
		return fieldDef{}, false
	}
	return f.fields[i], true
}

// normalise turns what a browser sent into the value compared with the
// baseline: trimmed, line ends as \n, list entries joined by ", ".
func (d fieldDef) normalise(v string) string {
	v = strings.TrimSpace(strings.ReplaceAll(v, "\r\n", "\n"))
	if d.input == inputList {
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
		v := d.normalise(values[d.name])
		if v == "" || f.baseline != nil && v == f.baseline[d.name] {
			continue
		}
		if d.input == inputList {
			m[d.name] = splitList(v)
		} else {
			m[d.name] = v
		}
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
	b, _ := json.Marshal(m) // strings and string slices always marshal
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

// probeValue is a value the domain accepts for a field, so that what a probe
// learns is whether the event may happen, not whether the value was good.
func probeValue(d fieldDef, today string) string {
	switch d.input {
	case inputSelect:
		return d.options[0]
	case inputEngagement:
		return uuid.Must(uuid.NewV7()).String()
	case inputDate:
		if d.name == "expires_on" {
			return fmt.Sprintf("%d-12-31", domain.MaxYear) // after any start date
		}
		return today
	}
	return "probe value"
}

// probe asks the domain whether f's event may be appended to e now. It
// starts from values (nil: an empty form) and fills in, round by round,
// each field the domain asks for; the fields it asked for of the form as
// given are the required ones. The error is the domain's last answer
// (nil: allowed).
func probe(e *domain.Engagement, f *form, values map[string]string, now time.Time) (required map[string]bool, err error) {
	required = make(map[string]bool)
	vals := make(map[string]string, len(values))
	for k, v := range values {
		vals[k] = v
	}
	now = now.UTC()
	today := now.Format(domain.DateLayout)
	id := e.ID
	if id == "" {
		id = uuid.Must(uuid.NewV7()).String()
	}
	for round := 0; round < 8; round++ {
		ev := domain.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: f.typ, EngagementID: id, Kind: e.Kind,
			Version: e.Version + 1, OccurredAt: now, RecordedAt: now, Actor: "probe", PrevHash: e.Hash,
			Data: f.data(vals)}
		_, err = e.Clone().Decide(ev)
		var v *domain.ValidationError
		if !errors.As(err, &v) {
			return required, err
		}
		filled := false
		for _, fe := range v.Fields {
			name := f.fieldOf(fe.Field)
			if name == "" && (fe.Field == "data" || fe.Field == "data.fields") {
				// "at least one field": try the first field not filled yet.
				for _, d := range f.fields {
					if vals[d.name] == "" {
						name = d.name
						break
					}
				}
			} else if round == 0 && name != "" {
				required[name] = true
			}
			if name == "" || vals[name] != "" {
				continue
			}
			if name == correctionReason {
				vals[name] = "probe value"
			} else if d, ok := f.field(name); ok {
				vals[name] = probeValue(d, today)
			}
			filled = true
		}
		if !filled {
			return required, err
		}
	}
	return required, err
}

// descriptiveFields asks the domain, once, which descriptive fields apply to
// each kind: it records an engagement of that kind with the field set and
// sees whether the field is refused.
func descriptiveFields(now time.Time) map[domain.Kind]map[string]bool {
	out := make(map[domain.Kind]map[string]bool)
	today := now.UTC().Format(domain.DateLayout)
	f := &form{typ: domain.EngagementRecorded, fields: fieldDefs[domain.EngagementRecorded]}
	for _, k := range domain.Kinds {
		out[k] = make(map[string]bool)
		for _, d := range descriptive {
			_, err := probe(&domain.Engagement{}, f, map[string]string{"kind": string(k), d.name: probeValue(d, today)}, now)
			var v *domain.ValidationError
			refused := errors.As(err, &v) && slices.ContainsFunc(v.Fields, func(fe domain.FieldError) bool {
				return fe.Field == "data."+d.name
			})
			out[k][d.name] = !refused
		}
	}
	return out
}

// fieldsFor keeps the fields of defs that apply to kind k.
func (u *UI) fieldsFor(k domain.Kind, defs []fieldDef) []fieldDef {
	return slices.DeleteFunc(slices.Clone(defs), func(d fieldDef) bool {
		applies, known := u.applies[k][d.name]
		return known && !applies
	})
}

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

// parseOccurred reads the optional occurred_at date of a form: empty means
// now (zero). The domain's date rules give the message.
func parseOccurred(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := domain.ParseDate(v)
	if err != nil {
		return time.Time{}, &domain.ValidationError{Fields: []domain.FieldError{{Field: occurredAt, Message: err.Error()}}}
	}
	return t, nil
}
