package domain

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Input is how a person enters a field in a form (the web UI reads it).
type Input int

// The inputs of fields.
const (
	InputText       Input = iota
	InputArea             // multi-line text
	InputDate             // YYYY-MM-DD
	InputList             // comma-separated entries, sent as a JSON array
	InputSelect           // one of Options
	InputEngagement       // another engagement's id, chosen by title
	InputNumber           // a whole number between Min and Max, sent as a JSON number
	InputCount            // a whole number from 1 to Max (a size in bytes)
)

// Field is one member of an event type's data: its rule, how it is labelled
// and entered, and the state it sets.
type Field struct {
	// Name is the member's JSON name.
	Name string
	// Required fields must be present (not null). With OnlyFor set, the
	// field is required for engagements of that kind only.
	Required bool
	// OnlyFor, when set, is the one kind the field applies to.
	OnlyFor Kind
	// Label and Hint are what a form shows.
	Label, Hint string
	// Input is how a form enters the field.
	Input Input
	// Options are the allowed values of an enum field.
	Options []string
	// Max is the most characters of a text, or of each entry of a list, or
	// the largest value of a count; MinItems the fewest entries of a list.
	Max, MinItems int
	// Min is the least value of a number field (Max its greatest).
	Min int
	// Pattern, when set, is a regular expression (JSON Schema's dialect)
	// every value of a text matches.
	Pattern string
	// Personal marks a field that holds personal data: the command path
	// stores it sealed with its data subject's key (see personal.go).
	Personal bool

	parse parser
	// state is the engagement's field this one sets: a *string or a
	// *[]string of e. nil: the type's fold handles it (or nothing does).
	state func(e *Engagement) any
}

// Spec is everything about one event type: where it may happen, what it
// leads to, its data, its rules and its fold. Decide, Apply, corrections,
// the web UI's forms and the OpenAPI test read it.
type Spec struct {
	Type EventType
	// Past names an entry of the timeline ("Renewed"); Action names the form
	// that records one ("Record renewal").
	Past, Action string
	// From lists the statuses the event may happen in; nil: any (subject to
	// allow).
	From []Status
	// To is the status after the event; "": unchanged.
	To Status
	// Data is the struct type the stored data decodes into (DecodeData,
	// Spec.Decode): one member per field, omitzero unless the field is
	// required of every kind; checked against Fields at init.
	Data reflect.Type
	// Fields are the data's members, in the order a form shows them. For
	// engagement.corrected they are its own (corrects, reason); the
	// corrected fields are those of the corrected event's type.
	Fields []Field
	// System types are recorded by the service itself, as SystemActor
	// (reminders): Decide refuses them from any other actor, and neither
	// the API nor the web UI offers them.
	System bool

	// allow refuses the event in the state e is in, with a reason; it runs
	// after From. values is nil when only the state is asked about (Allows).
	allow func(e *Engagement, status Status, values map[string]any) string
	// check adds the rules that span fields; it also runs on corrected fields.
	check func(r rules, v *ValidationError)
	// apply folds what the fields do not: run before the fields are set.
	apply func(e *Engagement, ev Event, f map[string]any)
	// item folds a type whose data is one entry of a list (a link, a
	// contribution) instead of setting fields.
	item func(e *Engagement, id string, at time.Time, f map[string]any, correcting bool)
	// Upload is set for a type recorded only together with the bytes it
	// describes (POST …/documents): the command path refuses it as a plain
	// event, no form offers it, and it is never corrected.
	Upload bool
	// Erasure is set for the type only POST /v1/people/{id}/erase records:
	// the command path refuses it otherwise, no form offers it, and it is
	// never corrected.
	Erasure bool
}

// rules is what a spec's check sees.
type rules struct {
	e      *Engagement
	values map[string]any
	// target is the corrected event's id, "" unless the values correct it.
	target string
}

// Field finds one of s's fields by name.
func (s *Spec) Field(name string) (*Field, bool) {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i], true
		}
	}
	return nil, false
}

// State is e's current value of the state f sets: a list's entries joined
// by ", ", "" when f sets no state of its own (or none is set).
func (f *Field) State(e *Engagement) string {
	if f.state == nil {
		return ""
	}
	switch v := f.state(e).(type) {
	case *string:
		return *v
	case *[]string:
		return strings.Join(*v, ", ")
	case *int:
		if *v == 0 {
			return ""
		}
		return strconv.Itoa(*v)
	}
	return ""
}

// SpecOf is the spec of t; ok is false for an unknown type.
func SpecOf(t EventType) (s *Spec, ok bool) {
	s, ok = specByType[t]
	return s, ok
}

// specFor is t's spec, or ErrUnknownEventType.
func specFor(t EventType) (*Spec, error) {
	if s, ok := specByType[t]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownEventType, truncate(string(t), 64))
}

// Specs lists every event type's spec, in the order of EventTypes.
func Specs() []*Spec {
	out := make([]*Spec, len(EventTypes))
	for i, t := range EventTypes {
		out[i] = specByType[t]
	}
	return out
}

// specByType indexes specs. (Filled in by init: the specs' functions
// refer to it.)
var specByType map[EventType]*Spec

func init() {
	specByType = make(map[EventType]*Spec, len(specs))
	for i := range specs {
		specByType[specs[i].Type] = &specs[i]
	}
	for _, t := range EventTypes {
		if specByType[t] == nil {
			panic(fmt.Sprintf("domain: event type %s has no spec", t)) // a programming error, caught by every test
		}
		if err := checkData(specByType[t]); err != nil {
			panic("domain: " + err.Error()) // the data struct drifted from the spec's fields: caught by every test
		}
	}
}

// Constructors of fields, by their input.

func textField(name, label, hint string, max int, required bool) Field {
	return Field{Name: name, Required: required, Label: label, Hint: hint, Max: max, parse: text(max, false)}
}

func areaField(name, label, hint string, max int, required bool) Field {
	return Field{Name: name, Required: required, Label: label, Hint: hint, Input: InputArea, Max: max,
		parse: text(max, true)}
}

func dateField(name, label, hint string, required bool) Field {
	return Field{Name: name, Required: required, Label: label, Hint: hint, Input: InputDate, parse: date}
}

func listField(name, label, hint string, min int, required bool) Field {
	return Field{Name: name, Required: required, Label: label, Hint: hint, Input: InputList, Max: MaxEntry,
		MinItems: min, parse: list(MaxListEntries, MaxEntry, min)}
}

func numberField(name, label, hint string, min, max int, required bool) Field {
	return Field{Name: name, Required: required, Label: label, Hint: hint, Input: InputNumber, Min: min, Max: max,
		parse: whole(min, max)}
}

func selectField(name, label string, required bool, options ...string) Field {
	return Field{Name: name, Required: required, Label: label, Input: InputSelect, Options: options, parse: enum(options...)}
}

// into sets the field's state.
func (f Field) into(state func(e *Engagement) any) Field {
	f.state = state
	return f
}

// personal marks the field as holding personal data.
func (f Field) personal() Field {
	f.Personal = true
	return f
}

// only makes the field apply to kind k alone.
func (f Field) only(k Kind) Field {
	f.OnlyFor = k
	return f
}

// roleField is an initiative member's role.
func roleField(label, hint string) Field {
	return textField("role", label, hint, MaxShortText, true).into(func(e *Engagement) any { return &e.v.Role })
}

// openEnded makes a signing without expires_on open-ended.
func openEnded(_ *Engagement, _ Event, f map[string]any) {
	if _, ok := f["expires_on"]; !ok {
		f["expires_on"], f["notice_days"] = "", 0 // signed without an end: open-ended
	}
}

// get copies f's string value name into dst, if f has one.
func get(f map[string]any, name string, dst *string) {
	if v, ok := f[name].(string); ok {
		*dst = v
	}
}

// descriptive are the fields of engagement.recorded and engagement.amended
// besides kind; required says whether recording needs them.
func descriptive(required bool) []Field {
	return []Field{
		textField("title", "Title", "", MaxTitle, required).into(func(e *Engagement) any { return &e.v.Title }),
		listField("parties", "Parties", "Organisations, separated by commas, e.g. IOM, WHO", 1, required).
			into(func(e *Engagement) any { return &e.v.Parties }),
		areaField("description", "Description", "", MaxText, false).into(func(e *Engagement) any { return &e.v.Description }),
		listField("tags", "Tags", "Separated by commas", 0, false).into(func(e *Engagement) any { return &e.v.Tags }),
		selectField("instrument", "Instrument", required, Instruments...).only(KindPolicy).
			into(func(e *Engagement) any { return &e.v.Instrument }),
		textField("level", "Level", "e.g. UNGA high-level meeting", MaxEntry, false).only(KindMeeting).
			into(func(e *Engagement) any { return &e.v.Level }),
		textField("location", "Location", "", MaxShortText, false).only(KindMeeting).
			into(func(e *Engagement) any { return &e.v.Location }),
	}
}

// MaxNoticeDays is the longest notice period, in days (ten years).
const MaxNoticeDays = 3650

// TermOpenEnded is agreement.renewed's term that clears the expiry.
const TermOpenEnded = "open-ended"

// noticeField is an agreement's notice period.
func noticeField() Field {
	return numberField("notice_days", "Notice period (days)", "Days before expiry by which notice must be given",
		1, MaxNoticeDays, false).into(func(e *Engagement) any { return &e.v.NoticeDays })
}

// checkTerm refuses a notice period without an expiry and an open-ended
// term beside one.
func checkTerm(r rules, v *ValidationError) {
	_, expires := r.values["expires_on"]
	_, notice := r.values["notice_days"]
	if r.values["term"] == TermOpenEnded && (expires || notice) {
		v.add("data.term", "open-ended leaves no expires_on or notice_days; leave those out")
	}
	if notice && !expires && r.e.v.ExpiresOn == "" {
		v.add("data.notice_days", "needs an expires_on")
	}
}

// action is the action item id names, or nil.
func (e *Engagement) action(id string) *Action {
	for i := range e.v.Actions {
		if e.v.Actions[i].ID == id {
			return &e.v.Actions[i]
		}
	}
	return nil
}

// closeAction folds a completion or cancellation: the action's status and
// the outcome or reason. The list is copied first: readers may hold the old one.
func closeAction(status, detail string) func(e *Engagement, id string, at time.Time, f map[string]any, correcting bool) {
	return func(e *Engagement, _ string, _ time.Time, f map[string]any, _ bool) {
		aid, _ := f["action_id"].(string)
		e.v.Actions = slices.Clone(e.v.Actions)
		if a := e.action(aid); a != nil {
			a.Status = status
			if s, ok := f[detail].(string); ok {
				if status == ActionDone {
					a.Outcome = s
				} else {
					a.Reason = s
				}
			}
		}
	}
}

// checkOpenAction refuses closing an action item that does not exist or is
// already closed (not for corrections, which may only change the text).
func checkOpenAction(verb string) func(r rules, v *ValidationError) {
	return func(r rules, v *ValidationError) {
		id, ok := r.values["action_id"].(string)
		if !ok {
			return
		}
		a := r.e.action(id)
		switch {
		case a == nil:
			v.add("data.action_id", "no action item %q on this engagement", id)
		case r.target == "" && a.Status != ActionOpen:
			v.add("data.action_id", "the action item is %s and cannot be %s", a.Status, verb)
		}
	}
}

// over refuses new action items and focal points once the engagement is
// over (terminated, left, concluded); an expired agreement still takes them.
func over(e *Engagement, status Status) string {
	if closedStatus(status) {
		return fmt.Sprintf("the %s is %s: it takes no new action items or focal points", e.v.Kind, status)
	}
	return ""
}

// anyOpenAction refuses completing or cancelling when nothing is open.
func anyOpenAction(e *Engagement, _ Status, _ map[string]any) string {
	if !slices.ContainsFunc(e.v.Actions, func(a Action) bool { return a.Status == ActionOpen }) {
		return "the engagement has no open action item"
	}
	return ""
}

// focalPoint is the index of party's focal point name, or -1.
func (e *Engagement) focalPoint(party, name string) int {
	return slices.IndexFunc(e.v.FocalPoints, func(p FocalPoint) bool {
		return strings.EqualFold(p.Party, party) && strings.EqualFold(p.Name, name)
	})
}

// The state machine, one entry per event type. Adding a type: see README.md,
// "How to add an event type".
var specs = []Spec{
	{
		Type: EngagementRecorded, Past: "Recorded", Action: "Record an engagement", Data: reflect.TypeFor[RecordedData](),
		Fields: append([]Field{selectField("kind", "Kind", true, kindNames()...)}, descriptive(true)...),
		apply: func(e *Engagement, ev Event, _ map[string]any) {
			e.v.ID, e.v.Kind, e.v.Status = ev.EngagementID, ev.Kind, ev.Kind.initialStatus()
			e.v.StartedAt, e.v.CreatedAt = ev.OccurredAt, ev.RecordedAt
			e.v.Parties, e.v.Tags, e.v.Links = []string{}, []string{}, []Link{}
		},
	},
	{
		Type: EngagementAmended, Past: "Amended", Action: "Amend details", Data: reflect.TypeFor[AmendedData](),
		Fields: descriptive(false),
		allow: func(e *Engagement, status Status, _ map[string]any) string {
			if e.closed(status) {
				return fmt.Sprintf("the %s is %s and can no longer be amended; record a correction instead", e.v.Kind, status)
			}
			return ""
		},
		check: func(r rules, v *ValidationError) {
			if len(r.values) == 0 {
				v.add("data", "must change at least one field")
			}
		},
	},
	{
		Type: EngagementLinked, Past: "Linked", Action: "Link to another engagement", Data: reflect.TypeFor[LinkedData](),
		Fields: []Field{
			{Name: "target_id", Required: true, Label: "Engagement", Input: InputEngagement, parse: uuidText},
			selectField("relation", "Relation", true, Relations...),
		},
		allow: func(e *Engagement, _ Status, values map[string]any) string {
			for _, l := range e.v.Links {
				if l.TargetID == values["target_id"] && l.Relation == values["relation"] {
					return "the engagements are already linked with that relation"
				}
			}
			return ""
		},
		check: func(r rules, v *ValidationError) {
			if r.values["target_id"] == r.e.v.ID && r.e.v.ID != "" {
				v.add("data.target_id", "must be another engagement")
			}
		},
		item: func(e *Engagement, id string, _ time.Time, f map[string]any, correcting bool) {
			if !correcting {
				e.v.Links = append(e.v.Links, Link{EventID: id})
			}
			for i := range e.v.Links {
				if e.v.Links[i].EventID == id {
					get(f, "target_id", &e.v.Links[i].TargetID)
					get(f, "relation", &e.v.Links[i].Relation)
				}
			}
		},
	},
	{
		Type: EngagementNoted, Past: "Note", Action: "Add a note", Data: reflect.TypeFor[NotedData](),
		Fields: []Field{areaField("note", "Note", "", MaxText, true)},
	},
	{
		Type: EngagementCorrected, Past: "Correction", Action: "Correct this entry", Data: reflect.TypeFor[CorrectedData](),
		Fields: []Field{
			{Name: "corrects", Required: true, parse: uuidText},
			areaField("reason", "Why is it wrong?", "The entry stays in the history; the correction is shown beside it.",
				MaxReason, true),
		},
	},
	{
		Type: EngagementActionAssigned, Past: "Action assigned", Action: "Assign an action item",
		Data: reflect.TypeFor[ActionAssignedData](),
		Fields: []Field{
			{Name: "action_id", Required: true, Label: "Action id", Hint: "Unique within the engagement, e.g. a UUID", parse: actionID},
			textField("title", "Action", "What is to be done", MaxShortText, true),
			textField("owner", "Owner", "Who does it", MaxShortText, true).personal(),
			dateField("due_on", "Due on", "", true),
		},
		allow: func(e *Engagement, status Status, values map[string]any) string {
			if reason := over(e, status); reason != "" {
				return reason
			}
			if id, ok := values["action_id"].(string); ok && e.action(id) != nil {
				return fmt.Sprintf("the engagement already has an action item %q", id)
			}
			return ""
		},
		item: func(e *Engagement, id string, at time.Time, f map[string]any, correcting bool) {
			e.v.Actions = slices.Clone(e.v.Actions)
			if !correcting {
				aid, _ := f["action_id"].(string)
				e.v.Actions = append(e.v.Actions, Action{ID: aid, Status: ActionOpen, AssignedAt: at, EventID: id})
			}
			for i := range e.v.Actions {
				if a := &e.v.Actions[i]; a.EventID == id {
					get(f, "title", &a.Title)
					get(f, "owner", &a.Owner)
					get(f, "due_on", &a.DueOn)
				}
			}
		},
	},
	{
		Type: EngagementActionCompleted, Past: "Action completed", Action: "Complete an action item",
		Data: reflect.TypeFor[ActionCompletedData](),
		Fields: []Field{
			{Name: "action_id", Required: true, Label: "Action id", parse: actionID},
			areaField("outcome", "Outcome", "", MaxReason, false),
		},
		allow: anyOpenAction,
		check: checkOpenAction("completed"),
		item:  closeAction(ActionDone, "outcome"),
	},
	{
		Type: EngagementActionCancelled, Past: "Action cancelled", Action: "Cancel an action item",
		Data: reflect.TypeFor[ActionCancelledData](),
		Fields: []Field{
			{Name: "action_id", Required: true, Label: "Action id", parse: actionID},
			areaField("reason", "Reason", "", MaxReason, true),
		},
		allow: anyOpenAction,
		check: checkOpenAction("cancelled"),
		item:  closeAction(ActionCancelled, "reason"),
	},
	{
		Type: EngagementFocalPointAssigned, Past: "Focal point assigned", Action: "Assign a focal point",
		Data:  reflect.TypeFor[FocalPointAssignedData](),
		allow: func(e *Engagement, status Status, _ map[string]any) string { return over(e, status) },
		Fields: []Field{
			textField("party", "Party", "One of the engagement's parties, e.g. WHO", MaxEntry, true),
			textField("name", "Name", "", MaxShortText, true).personal(),
			{Name: "email", Label: "E-mail", Max: MaxEmail, parse: email, Personal: true},
			textField("role", "Role", "e.g. Director, Department of Health Security", MaxShortText, false),
		},
		check: func(r rules, v *ValidationError) {
			party, _ := r.values["party"].(string)
			if party != "" && !slices.ContainsFunc(r.e.v.Parties, func(p string) bool { return strings.EqualFold(p, party) }) {
				v.add("data.party", "must be one of the engagement's parties: %s", strings.Join(r.e.v.Parties, ", "))
			}
			name, _ := r.values["name"].(string)
			if r.target == "" && party != "" && name != "" && r.e.focalPoint(party, name) >= 0 {
				v.add("data.name", "%s is already %s's focal point", name, party)
			}
		},
		item: func(e *Engagement, id string, at time.Time, f map[string]any, correcting bool) {
			e.v.FocalPoints = slices.Clone(e.v.FocalPoints)
			if !correcting {
				e.v.FocalPoints = append(e.v.FocalPoints, FocalPoint{Since: at, EventID: id})
			}
			for i := range e.v.FocalPoints {
				if p := &e.v.FocalPoints[i]; p.EventID == id {
					get(f, "party", &p.Party)
					if i := slices.IndexFunc(e.v.Parties, func(q string) bool { return strings.EqualFold(q, p.Party) }); i >= 0 {
						p.Party = e.v.Parties[i] // as the engagement spells it
					}
					get(f, "name", &p.Name)
					get(f, "email", &p.Email)
					get(f, "role", &p.Role)
				}
			}
		},
	},
	{
		Type: EngagementFocalPointReleased, Past: "Focal point released", Action: "Release a focal point",
		Data: reflect.TypeFor[FocalPointReleasedData](),
		allow: func(e *Engagement, _ Status, _ map[string]any) string {
			if len(e.v.FocalPoints) == 0 {
				return "the engagement has no focal point to release"
			}
			return ""
		},
		Fields: []Field{
			textField("party", "Party", "", MaxEntry, true),
			textField("name", "Name", "", MaxShortText, true).personal(),
		},
		check: func(r rules, v *ValidationError) {
			party, _ := r.values["party"].(string)
			name, _ := r.values["name"].(string)
			if r.target == "" && party != "" && name != "" && r.e.focalPoint(party, name) < 0 {
				v.add("data.name", "%s is not %s's focal point", name, party)
			}
		},
		item: func(e *Engagement, _ string, _ time.Time, f map[string]any, correcting bool) {
			party, _ := f["party"].(string)
			name, _ := f["name"].(string)
			if i := e.focalPoint(party, name); i >= 0 && !correcting {
				e.v.FocalPoints = slices.Delete(slices.Clone(e.v.FocalPoints), i, i+1)
			}
		},
	},
	{
		Type: AgreementSigned, Past: "Signed", Action: "Record signing", Data: reflect.TypeFor[SignedData](),
		From: []Status{StatusDraft}, To: StatusActive,
		Fields: []Field{
			dateField("signed_on", "Signed on", "", true).into(func(e *Engagement) any { return &e.v.SignedOn }),
			dateField("expires_on", "Expires on", "Leave empty if open-ended", false).
				into(func(e *Engagement) any { return &e.v.ExpiresOn }),
			noticeField(),
		},
		check: func(r rules, v *ValidationError) {
			r.checkAfter(v, "signed_on")
			checkTerm(r, v)
		},
		apply: openEnded,
	},
	{
		// An agreement past its expiry may still be renewed: renewing is what revives it.
		Type: AgreementRenewed, Past: "Renewed", Action: "Record renewal", Data: reflect.TypeFor[RenewedData](),
		From: []Status{StatusActive, StatusExpired}, To: StatusActive,
		Fields: []Field{
			dateField("renewed_on", "Renewed on", "", true).into(func(e *Engagement) any { return &e.v.RenewedOn }),
			dateField("expires_on", "Expires on", "The new expiry; leave empty to keep the current one", false).
				into(func(e *Engagement) any { return &e.v.ExpiresOn }),
			noticeField(),
			selectField("term", "Term", false, TermOpenEnded),
		},
		check: func(r rules, v *ValidationError) {
			r.checkAfter(v, "renewed_on")
			checkTerm(r, v)
			// Keeping an expiry that the renewal has already passed would
			// leave the agreement expired: say what is missing instead.
			_, expires := r.values["expires_on"]
			if d, ok := r.values["renewed_on"].(string); ok && r.target == "" && !expires &&
				r.values["term"] != TermOpenEnded && r.e.v.ExpiresOn != "" && r.e.v.ExpiresOn < d {
				v.add("data.expires_on", "is required: the current expiry %s is before renewed_on; "+
					"give the new expiry, or term %q", r.e.v.ExpiresOn, TermOpenEnded)
			}
			// Also for corrections: a renewal cannot precede the signing.
			if d, ok := r.values["renewed_on"].(string); ok && d < r.e.v.SignedOn {
				v.add("data.renewed_on", "must not be before signed_on %s", r.e.v.SignedOn)
			}
		},
		apply: func(_ *Engagement, _ Event, f map[string]any) {
			if f["term"] == TermOpenEnded {
				f["expires_on"], f["notice_days"] = "", 0 // renewed without an end: open-ended
			}
		},
	},
	{
		Type: AgreementTerminated, Past: "Terminated", Action: "Record termination", Data: reflect.TypeFor[TerminatedData](),
		From: []Status{StatusActive}, To: StatusTerminated,
		Fields: []Field{areaField("reason", "Reason", "", MaxReason, true).
			into(func(e *Engagement) any { return &e.v.TerminationReason })},
	},
	{
		Type: PolicyContributed, Past: "Contribution", Action: "Record a contribution", Data: reflect.TypeFor[ContributedData](),
		Fields: []Field{
			areaField("contribution", "Contribution", "", MaxReason, true),
			textField("role", "Role", "e.g. co-author, technical adviser", MaxShortText, true),
		},
		item: func(e *Engagement, id string, at time.Time, f map[string]any, correcting bool) {
			if !correcting {
				e.v.Contributions = append(e.v.Contributions, Contribution{EventID: id, OccurredAt: at})
			}
			for i := range e.v.Contributions {
				if e.v.Contributions[i].EventID == id {
					get(f, "contribution", &e.v.Contributions[i].Contribution)
					get(f, "role", &e.v.Contributions[i].Role)
				}
			}
		},
	},
	{
		Type: PolicyAdopted, Past: "Adopted", Action: "Record adoption", Data: reflect.TypeFor[AdoptedData](),
		From: []Status{StatusInProgress}, To: StatusAdopted,
		Fields: []Field{textField("adopted_by", "Adopted by", "e.g. WHA", MaxShortText, true).
			into(func(e *Engagement) any { return &e.v.AdoptedBy })},
	},
	{
		Type: PolicyCommitted, Past: "Commitment", Action: "Record a commitment", Data: reflect.TypeFor[CommittedData](),
		From: []Status{StatusAdopted}, To: StatusImplementing,
		Fields: []Field{areaField("commitment", "Commitment", "", MaxReason, true)},
		item: func(e *Engagement, id string, at time.Time, f map[string]any, correcting bool) {
			if !correcting {
				e.v.Commitments = append(e.v.Commitments, Commitment{EventID: id, OccurredAt: at})
			}
			for i := range e.v.Commitments {
				if e.v.Commitments[i].EventID == id {
					get(f, "commitment", &e.v.Commitments[i].Commitment)
				}
			}
		},
	},
	{
		Type: InitiativeJoined, Past: "Joined", Action: "Record joining", Data: reflect.TypeFor[JoinedData](),
		From: []Status{StatusRecorded, StatusLeft}, To: StatusMember,
		Fields: []Field{roleField("Role", "e.g. member, co-chair")},
		apply: func(e *Engagement, _ Event, _ map[string]any) {
			e.v.LeftReason = ""
			e.dropSource("reason")
		},
	},
	{
		Type: InitiativeRoleChanged, Past: "Role changed", Action: "Change role", Data: reflect.TypeFor[RoleChangedData](),
		From:   []Status{StatusMember},
		Fields: []Field{roleField("New role", "")},
		allow: func(e *Engagement, _ Status, values map[string]any) string {
			if values["role"] == e.v.Role {
				return "the role is already " + e.v.Role
			}
			return ""
		},
	},
	{
		Type: InitiativeLeft, Past: "Left", Action: "Record leaving", Data: reflect.TypeFor[LeftData](),
		From: []Status{StatusMember}, To: StatusLeft,
		Fields: []Field{areaField("reason", "Reason", "", MaxReason, false).
			into(func(e *Engagement) any { return &e.v.LeftReason })},
	},
	{
		Type: EngagementDocumentAttached, Past: "Document attached", Action: "Attach a document",
		Data: reflect.TypeFor[DocumentAttachedData](), Upload: true,
		Fields: documentFields(), check: checkDocument, apply: applyDocument,
	},
	{
		Type: MeetingScheduled, Past: "Scheduled", Action: "Record scheduling", Data: reflect.TypeFor[ScheduledData](),
		From: []Status{StatusRecorded}, To: StatusScheduled,
		Fields: []Field{
			dateField("starts_on", "Starts on", "", true).into(func(e *Engagement) any { return &e.v.StartsOn }),
			textField("location", "Location", "", MaxShortText, false).into(func(e *Engagement) any { return &e.v.Location }),
		},
	},
	{
		Type: MeetingAttended, Past: "Attended", Action: "Record attendance", Data: reflect.TypeFor[AttendedData](),
		From: []Status{StatusScheduled}, To: StatusAttended,
		Fields: []Field{
			selectField("role", "Role", true, AttendanceRoles...).into(func(e *Engagement) any { return &e.v.Role }),
			areaField("delegation", "Delegation", "Who attended", MaxReason, false).personal().
				into(func(e *Engagement) any { return &e.v.Delegation }),
		},
	},
	{
		Type: MeetingConcluded, Past: "Concluded", Action: "Record conclusion", Data: reflect.TypeFor[ConcludedData](),
		From: []Status{StatusAttended}, To: StatusConcluded,
		Fields: []Field{areaField("outcome", "Outcome", "", MaxReason, false).
			into(func(e *Engagement) any { return &e.v.Outcome })},
	},
	{
		Type: AgreementExpiring, Past: "Expiry reminder", Data: reflect.TypeFor[ExpiringData](), System: true,
		Fields: []Field{
			dateField("expires_on", "Expires on", "", true),
			numberField("days_left", "Days left", "", 0, MaxDaysLeft, true),
			selectField("deadline", "Deadline", true, string(DeadlineExpiry), string(DeadlineNotice)),
		},
		allow: allowExpiring, apply: applyReminder,
	},
	{
		Type: AgreementExpired, Past: "Expired", Data: reflect.TypeFor[ExpiredData](), System: true, To: StatusExpired,
		Fields: []Field{dateField("expires_on", "Expired on", "", true)},
		allow:  allowExpired,
	},
	{
		Type: EngagementActionOverdue, Past: "Action overdue", Data: reflect.TypeFor[ActionOverdueData](), System: true,
		Fields: []Field{
			{Name: "action_id", Required: true, Label: "Action id", parse: actionID},
			dateField("due_on", "Due on", "", true),
		},
		allow: allowOverdue, apply: applyReminder,
	},
	{
		Type: MeetingUpcoming, Past: "Meeting reminder", Data: reflect.TypeFor[UpcomingData](), System: true,
		Fields: []Field{
			dateField("starts_on", "Starts on", "", true),
			numberField("days_left", "Days left", "", 0, MaxDaysLeft, true),
		},
		allow: allowUpcoming, apply: applyReminder,
	},
	{
		Type: EngagementPersonalDataErased, Past: "Personal data erased", Data: reflect.TypeFor[PersonalDataErasedData](),
		Erasure: true,
		Fields: []Field{
			{Name: "person_id", Required: true, Label: "Person", Pattern: "^p[0-9a-f]{32}$", parse: personID},
			numberField("key_version", "Key version", "", 1, 1<<30, true),
			{Name: "fields", Required: true, Label: "Fields", Input: InputList, Max: MaxEntry, MinItems: 1,
				parse: list(MaxListEntries, MaxEntry, 1)},
			{Name: "events", Required: true, Label: "Events", Input: InputList, Max: MaxEntry, MinItems: 1,
				parse: list(MaxListEntries, MaxEntry, 1)},
		},
	},
}
