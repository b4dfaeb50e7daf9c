package domain

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The data of each event type as a Go struct, for readers of stored events
// (DecodeData, Spec.Decode). Each is registered as its spec's Data, and its
// JSON members are the spec's Fields: a required field is a plain member, any
// other one is omitzero (checkData, run at init, refuses a struct that
// drifts). Decide does not decode into them: it checks the data field by
// field with the spec's parsers, so that it can report every problem at once
// and store the normalised data.

// RecordedData is the data of engagement.recorded.
type RecordedData struct {
	Kind        string   `json:"kind"`
	Title       string   `json:"title"`
	Parties     []string `json:"parties"`
	Description string   `json:"description,omitzero"`
	Tags        []string `json:"tags,omitzero"`
	// Instrument is required for a policy; Level and Location are a meeting's.
	Instrument string `json:"instrument,omitzero"`
	Level      string `json:"level,omitzero"`
	Location   string `json:"location,omitzero"`
}

// AmendedData is the data of engagement.amended: the fields it changes.
type AmendedData struct {
	Title       string   `json:"title,omitzero"`
	Parties     []string `json:"parties,omitzero"`
	Description string   `json:"description,omitzero"`
	Tags        []string `json:"tags,omitzero"`
	Instrument  string   `json:"instrument,omitzero"`
	Level       string   `json:"level,omitzero"`
	Location    string   `json:"location,omitzero"`
}

// LinkedData is the data of engagement.linked.
type LinkedData struct {
	TargetID string `json:"target_id"`
	Relation string `json:"relation"`
}

// NotedData is the data of engagement.noted.
type NotedData struct {
	Note string `json:"note"`
}

// CorrectedData is the data of engagement.corrected (schema v2; readers get
// v1 upcast). Fields holds the corrected fields, a JSON object whose members
// are fields of the corrected event's type.
type CorrectedData struct {
	Corrects string         `json:"corrects"`
	Reason   string         `json:"reason"`
	Fields   jsontext.Value `json:"fields"`
}

// correctedFields is CorrectedData's member that is not one of the spec's
// Fields: the corrected fields, checked against the corrected type's spec.
const correctedFields = "fields"

// SignedData is the data of agreement.signed.
type SignedData struct {
	SignedOn   string `json:"signed_on"`
	ExpiresOn  string `json:"expires_on,omitzero"`
	NoticeDays int    `json:"notice_days,omitzero"`
}

// RenewedData is the data of agreement.renewed (version 2: without
// expires_on the expiry is kept; term "open-ended" clears it).
type RenewedData struct {
	RenewedOn  string `json:"renewed_on"`
	ExpiresOn  string `json:"expires_on,omitzero"`
	NoticeDays int    `json:"notice_days,omitzero"`
	Term       string `json:"term,omitzero"`
}

// ActionAssignedData is the data of engagement.action_assigned.
type ActionAssignedData struct {
	ActionID string `json:"action_id"`
	Title    string `json:"title"`
	Owner    string `json:"owner"`
	DueOn    string `json:"due_on"`
}

// ActionCompletedData is the data of engagement.action_completed.
type ActionCompletedData struct {
	ActionID string `json:"action_id"`
	Outcome  string `json:"outcome,omitzero"`
}

// ActionCancelledData is the data of engagement.action_cancelled.
type ActionCancelledData struct {
	ActionID string `json:"action_id"`
	Reason   string `json:"reason"`
}

// FocalPointAssignedData is the data of engagement.focal_point_assigned.
type FocalPointAssignedData struct {
	Party string `json:"party"`
	Name  string `json:"name"`
	Email string `json:"email,omitzero"`
	Role  string `json:"role,omitzero"`
}

// FocalPointReleasedData is the data of engagement.focal_point_released.
type FocalPointReleasedData struct {
	Party string `json:"party"`
	Name  string `json:"name"`
}

// TerminatedData is the data of agreement.terminated.
type TerminatedData struct {
	Reason string `json:"reason"`
}

// ContributedData is the data of policy.contributed.
type ContributedData struct {
	Contribution string `json:"contribution"`
	Role         string `json:"role"`
}

// AdoptedData is the data of policy.adopted.
type AdoptedData struct {
	AdoptedBy string `json:"adopted_by"`
}

// CommittedData is the data of policy.committed.
type CommittedData struct {
	Commitment string `json:"commitment"`
}

// JoinedData is the data of initiative.joined.
type JoinedData struct {
	Role string `json:"role"`
}

// RoleChangedData is the data of initiative.role_changed.
type RoleChangedData struct {
	Role string `json:"role"`
}

// LeftData is the data of initiative.left.
type LeftData struct {
	Reason string `json:"reason,omitzero"`
}

// ScheduledData is the data of meeting.scheduled.
type ScheduledData struct {
	StartsOn string `json:"starts_on"`
	Location string `json:"location,omitzero"`
}

// AttendedData is the data of meeting.attended.
type AttendedData struct {
	Role       string `json:"role"`
	Delegation string `json:"delegation,omitzero"`
}

// PersonalDataErasedData is the data of engagement.personal_data_erased:
// whose data was erased (the person id, no name), which fields
// ("<type> <field>", e.g. "meeting.attended delegation") and in which of the
// engagement's events. The event's actor and recorded_at say who and when.
type PersonalDataErasedData struct {
	PersonID   string   `json:"person_id"`
	KeyVersion int      `json:"key_version"`
	Fields     []string `json:"fields"`
	Events     []string `json:"events"`
}

// ConcludedData is the data of meeting.concluded.
type ConcludedData struct {
	Outcome string `json:"outcome,omitzero"`
}

// DocumentAttachedData is the data of engagement.document_attached.
type DocumentAttachedData struct {
	DocumentID string `json:"document_id"`
	Name       string `json:"name"`
	MediaType  string `json:"media_type"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"`
	Supersedes string `json:"supersedes,omitzero"`
}

// ExpiringData is the data of agreement.expiring, a reminder the service
// records: Deadline says which date comes near ("expiry", or "notice" for
// the last day to give notice), DaysLeft how many days remain until
// ExpiresOn.
type ExpiringData struct {
	ExpiresOn string `json:"expires_on"`
	DaysLeft  int    `json:"days_left"`
	Deadline  string `json:"deadline"`
}

// ExpiredData is the data of agreement.expired, recorded by the service
// once the day ExpiresOn is over.
type ExpiredData struct {
	ExpiresOn string `json:"expires_on"`
}

// ActionOverdueData is the data of engagement.action_overdue, recorded by
// the service once an open action item's due day is over.
type ActionOverdueData struct {
	ActionID string `json:"action_id"`
	DueOn    string `json:"due_on"`
}

// UpcomingData is the data of meeting.upcoming, a reminder the service
// records DaysLeft days before a scheduled meeting.
type UpcomingData struct {
	StartsOn string `json:"starts_on"`
	DaysLeft int    `json:"days_left"`
}

// strict is how stored data is decoded: the library's defaults refuse
// duplicate names and invalid UTF-8; members the struct lacks are refused too.
var strict = jsonv2.RejectUnknownMembers(true)

// DecodeData decodes ev's data strictly into T, which must be the Data of
// ev's type's spec (DecodeData[LinkedData] of an engagement.linked event).
// It checks the data's shape, not the rules Decide checks. Errors:
// ErrUnknownEventType, *MalformedError (naming the member: unknown,
// repeated, of the wrong type, or data that is not a JSON object), or an
// error saying T is not the type's data.
func DecodeData[T any](ev Event) (T, error) {
	var v T
	s, err := specFor(ev.Type)
	if err != nil {
		return v, err
	}
	if s.Data != reflect.TypeFor[T]() {
		return v, fmt.Errorf("domain: the data of %s is a %v, not a %T", ev.Type, s.Data, v)
	}
	err = s.decode(ev.Data, &v)
	return v, err
}

// Decode decodes raw, data of s's type, strictly into a new value of s.Data
// (a RecordedData for engagement.recorded, and so on). Errors as DecodeData's.
func (s *Spec) Decode(raw []byte) (any, error) {
	p := reflect.New(s.Data)
	if err := s.decode(raw, p.Interface()); err != nil {
		return nil, err
	}
	return p.Elem().Interface(), nil
}

// decode unmarshals raw into v, a pointer to a value of s.Data. Null or
// empty data is an empty object, as Decide takes it.
func (s *Spec) decode(raw []byte, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if err := jsonv2.Unmarshal(raw, v, strict); err != nil {
		return s.malformed(err)
	}
	if c, ok := v.(*CorrectedData); ok {
		switch c.Fields.Kind() {
		case 'n':
			c.Fields = nil
		case '{', 0:
		default:
			return &MalformedError{Fields: []FieldError{{Field: "data." + correctedFields, Message: "must be a JSON object"}}}
		}
	}
	return nil
}

// malformed turns the library's error into a MalformedError that names the
// member, with the messages Decide gives for the same faults.
func (s *Spec) malformed(err error) error {
	var (
		semantic  *jsonv2.SemanticError
		syntactic *jsontext.SyntacticError
		ptr       jsontext.Pointer
		message   string
	)
	switch {
	case errors.As(err, &syntactic) && errors.Is(syntactic.Err, jsontext.ErrDuplicateName):
		ptr, message = syntactic.JSONPointer, "appears more than once"
	case errors.As(err, &syntactic) && syntactic.JSONPointer != "":
		// Invalid UTF-8, say, inside a member: name the member.
		ptr, message = syntactic.JSONPointer, "is not valid JSON: "+syntactic.Err.Error()
	case errors.As(err, &semantic) && errors.Is(semantic.Err, jsonv2.ErrUnknownName):
		ptr, message = semantic.JSONPointer, "unknown field"
	case errors.As(err, &semantic) && semantic.JSONPointer == "":
		message = "must be a JSON object"
	case errors.As(err, &semantic):
		// A wrong type, at the member or inside it (an entry of a list):
		// the member is what has the wrong type.
		name, _, _ := strings.Cut(strings.TrimPrefix(string(semantic.JSONPointer), "/"), "/")
		ptr, message = jsontext.Pointer("/"+name), s.wrongType(unescapeToken(name))
	default:
		return notJSON(err)
	}
	return &MalformedError{Fields: []FieldError{{Field: dataPath(ptr), Message: message}}}
}

// wrongType is Decide's message for a member of the wrong JSON type.
func (s *Spec) wrongType(name string) string {
	if s.Type == EngagementCorrected && name == correctedFields {
		return "must be a JSON object"
	}
	f, ok := s.Field(name)
	switch {
	case !ok:
		return "has the wrong type"
	case f.Input == InputList:
		return "must be an array of strings"
	case f.Input == InputDate:
		return "must be a date string (YYYY-MM-DD)"
	case f.Input == InputCount:
		return "must be a whole number"
	case f.Input == InputNumber:
		return "must be an integer"
	}
	return "must be a string"
}

// dataPath names the member at ptr as Decide's errors do: "data.title",
// "data.fields.title".
func dataPath(ptr jsontext.Pointer) string {
	var b strings.Builder
	b.WriteString("data")
	for tok := range ptr.Tokens() {
		b.WriteString(".")
		b.WriteString(truncate(tok, 64))
	}
	return b.String()
}

// unescapeToken undoes a JSON Pointer token's escapes (RFC 6901).
func unescapeToken(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
}

// checkData reports how s.Data drifts from s.Fields: each field is one JSON
// member, a string, a []string (a list field), an int (a number field) or an int64 (a count), plain when the field is
// required of every kind and omitzero otherwise; the struct has no other
// members (but the corrected fields of engagement.corrected).
func checkData(s *Spec) error {
	if s.Data == nil || s.Data.Kind() != reflect.Struct {
		return fmt.Errorf("%s: Data is %v, not a struct type", s.Type, s.Data)
	}
	members := make(map[string]reflect.StructField, s.Data.NumField())
	optional := make(map[string]bool, s.Data.NumField())
	for i := range s.Data.NumField() {
		sf := s.Data.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			return fmt.Errorf("%s: %s.%s has no JSON name", s.Type, s.Data.Name(), sf.Name)
		}
		if _, dup := members[name]; dup {
			return fmt.Errorf("%s: %s has member %q twice", s.Type, s.Data.Name(), name)
		}
		members[name] = sf
		for o := range strings.SplitSeq(opts, ",") {
			optional[name] = optional[name] || o == "omitzero" || o == "omitempty"
		}
	}
	want := len(s.Fields)
	if s.Type == EngagementCorrected {
		want++
		if sf, ok := members[correctedFields]; !ok || sf.Type != reflect.TypeFor[jsontext.Value]() {
			return fmt.Errorf("%s: %s needs the member %q, a jsontext.Value", s.Type, s.Data.Name(), correctedFields)
		}
	}
	for _, f := range s.Fields {
		sf, ok := members[f.Name]
		if !ok {
			return fmt.Errorf("%s: %s has no member %q", s.Type, s.Data.Name(), f.Name)
		}
		typ := reflect.TypeFor[string]()
		switch f.Input {
		case InputList:
			typ = reflect.TypeFor[[]string]()
		case InputNumber:
			typ = reflect.TypeFor[int]()
		case InputCount:
			typ = reflect.TypeFor[int64]()
		}
		if sf.Type != typ {
			return fmt.Errorf("%s: %s.%s is a %v, the field %q a %v", s.Type, s.Data.Name(), sf.Name, sf.Type, f.Name, typ)
		}
		if required := f.Required && f.OnlyFor == ""; optional[f.Name] == required {
			return fmt.Errorf("%s: %s.%s: omitzero is %v, but the field %q is required: %v",
				s.Type, s.Data.Name(), sf.Name, optional[f.Name], f.Name, required)
		}
	}
	if len(members) != want {
		return fmt.Errorf("%s: %s has %d members, the spec %d fields", s.Type, s.Data.Name(), len(members), want)
	}
	return nil
}
