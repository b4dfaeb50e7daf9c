package domain

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// MaxClockSkew is how far in the future an event's occurred_at may lie
// compared with its recorded_at: events describe what has happened.
const MaxClockSkew = 5 * time.Minute

// Link is a relation from one engagement to another.
type Link struct {
	TargetID string `json:"target_id"`
	Relation string `json:"relation"`
	EventID  string `json:"event_id"`
}

// Contribution is one policy.contributed event, as folded.
type Contribution struct {
	Contribution string    `json:"contribution"`
	Role         string    `json:"role"`
	OccurredAt   time.Time `json:"occurred_at"`
	EventID      string    `json:"event_id"`
}

// Commitment is one policy.committed event, as folded.
type Commitment struct {
	Commitment string    `json:"commitment"`
	OccurredAt time.Time `json:"occurred_at"`
	EventID    string    `json:"event_id"`
}

// The statuses of an action item. Overdue is derived: an open action whose
// due_on has passed (Action.Overdue).
const (
	ActionOpen      = "open"
	ActionDone      = "done"
	ActionCancelled = "cancelled"
)

// Action is one action item of an engagement, folded from
// engagement.action_assigned and the completion or cancellation that closed it.
type Action struct {
	ID      string `json:"action_id"`
	Title   string `json:"title"`
	Owner   string `json:"owner"`
	DueOn   string `json:"due_on"`
	Status  string `json:"status"`
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// AssignedAt is when it was assigned (occurred_at); EventID the
	// assigning event.
	AssignedAt time.Time `json:"assigned_at"`
	EventID    string    `json:"event_id"`
}

// Overdue reports whether a is open and its due day lies before now's day (UTC).
func (a Action) Overdue(now time.Time) bool {
	return a.Status == ActionOpen && a.DueOn < now.UTC().Format(DateLayout)
}

// FocalPoint is a party's focal point for an engagement, from
// engagement.focal_point_assigned until engagement.focal_point_released.
type FocalPoint struct {
	Party string `json:"party"`
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	Role  string `json:"role,omitempty"`
	// Since is when the assignment occurred; EventID the assigning event.
	Since   time.Time `json:"since"`
	EventID string    `json:"event_id"`
}

// View is an engagement's state as readers see it and the API shows it (its
// JSON is the API's engagement). Its slices are shared with the engagement
// it was read from: readers must not change them.
type View struct {
	ID          string   `json:"id"`
	Kind        Kind     `json:"kind"`
	Title       string   `json:"title"`
	Parties     []string `json:"parties"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags"`
	Links       []Link   `json:"links"`
	// Status is derived: see StatusAt for agreements past their expiry.
	Status  Status `json:"status"`
	Version int    `json:"version"`
	// Sequence is the stream sequence of the latest event.
	Sequence uint64 `json:"sequence"`
	// Hash is the chain hash of the latest event, the prev_hash of the next.
	Hash string `json:"hash"`

	Instrument string `json:"instrument,omitempty"`
	Level      string `json:"level,omitempty"`
	Location   string `json:"location,omitempty"`

	SignedOn  string `json:"signed_on,omitempty"`
	RenewedOn string `json:"renewed_on,omitempty"`
	ExpiresOn string `json:"expires_on,omitempty"`
	// NoticeDays is the notice period before expiry, in days (0: none recorded).
	NoticeDays        int    `json:"notice_days,omitempty"`
	TerminationReason string `json:"termination_reason,omitempty"`

	AdoptedBy     string         `json:"adopted_by,omitempty"`
	Contributions []Contribution `json:"contributions,omitempty"`
	Commitments   []Commitment   `json:"commitments,omitempty"`

	// Role is the role in an initiative, or the attendance role at a meeting.
	Role       string `json:"role,omitempty"`
	LeftReason string `json:"left_reason,omitempty"`
	StartsOn   string `json:"starts_on,omitempty"`
	Delegation string `json:"delegation,omitempty"`
	Outcome    string `json:"outcome,omitempty"`

	// Actions are the engagement's action items, in the order assigned.
	Actions []Action `json:"actions,omitempty"`
	// FocalPoints are the focal points assigned and not released, in the
	// order assigned.
	FocalPoints []FocalPoint `json:"focal_points,omitempty"`
	// Documents are the attached documents, oldest first, current and
	// superseded (see Document).
	Documents []Document `json:"documents,omitempty"`

	// StartedAt is the occurred_at of engagement.recorded: when it began in the world.
	StartedAt time.Time `json:"started_at"`
	// CreatedAt and UpdatedAt are recorded_at times of the first and latest event.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// Reminders holds, per open deadline, the days_left of the last
	// reminder the service recorded of it (see reminder.go). It is not
	// shown: the reminders are in the history.
	Reminders map[string]int `json:"-"`
}

// Engagement is the state of one engagement, folded from its events. The zero
// value is an engagement that has not been recorded yet. Only Apply changes
// it; readers use its accessors or View.
type Engagement struct {
	v View
	// events lists this engagement's event ids and types, for corrections,
	// packed (see eventRefSize): a few bytes per event and nothing for the
	// garbage collector to scan, since every event of history has one.
	events []byte
	// sources pairs each state field with the event that last set it, so a
	// correction changes current state only where that event still holds:
	// the field by its index in stateFields, the event by its position in
	// events. Eight bytes a field; a map of names to event ids cost some
	// 600 bytes an engagement.
	sources []source
}

// source is one state field and the event that last set it.
type source struct {
	field uint32 // index in stateFields
	event uint32 // 0-based position in the engagement's events
}

// stateFields are the names of every field of every spec, and
// stateFieldIndex their indexes there (filled in by init: the specs refer
// to the methods that use them).
var (
	stateFields     []string
	stateFieldIndex = map[string]uint32{}
)

func init() {
	for _, sp := range specs {
		for _, f := range sp.Fields {
			if _, ok := stateFieldIndex[f.Name]; !ok {
				stateFieldIndex[f.Name] = uint32(len(stateFields))
				stateFields = append(stateFields, f.Name)
			}
		}
	}
}

// sourceOf is the position in events of the event that last set field.
func (e *Engagement) sourceOf(field string) (int, bool) {
	i, ok := stateFieldIndex[field]
	if !ok {
		return 0, false
	}
	for _, s := range e.sources {
		if s.field == i {
			return int(s.event), true
		}
	}
	return 0, false
}

// setSource records that the event at position event last set field. The
// sources stay sorted by field, so that equal states compare equal
// whatever order their fields were set in.
func (e *Engagement) setSource(field string, event int) {
	i, ok := stateFieldIndex[field]
	if !ok || event < 0 {
		return
	}
	k, found := slices.BinarySearchFunc(e.sources, i, func(s source, i uint32) int { return cmp.Compare(s.field, i) })
	if found {
		e.sources[k].event = uint32(event)
		return
	}
	e.sources = slices.Insert(e.sources, k, source{field: i, event: uint32(event)})
}

// dropSource forgets which event set field.
func (e *Engagement) dropSource(field string) {
	if i, ok := stateFieldIndex[field]; ok {
		e.sources = slices.DeleteFunc(e.sources, func(s source) bool { return s.field == i })
	}
}

// eventAt is the id of the event at position i of events.
func (e *Engagement) eventAt(i int) (string, bool) {
	if i < 0 || (i+1)*eventRefSize > len(e.events) {
		return "", false
	}
	return uuid.UUID(e.events[i*eventRefSize : i*eventRefSize+16]).String(), true
}

// View returns e's state. It copies no slice: see View.
func (e *Engagement) View() View { return e.v }

// ID is the engagement's ID (see View).
func (e *Engagement) ID() string { return e.v.ID }

// Kind is the engagement's Kind (see View).
func (e *Engagement) Kind() Kind { return e.v.Kind }

// Title is the engagement's Title (see View).
func (e *Engagement) Title() string { return e.v.Title }

// Parties is the engagement's Parties (see View).
func (e *Engagement) Parties() []string { return e.v.Parties }

// Description is the engagement's Description (see View).
func (e *Engagement) Description() string { return e.v.Description }

// Tags is the engagement's Tags (see View).
func (e *Engagement) Tags() []string { return e.v.Tags }

// Links is the engagement's Links (see View).
func (e *Engagement) Links() []Link { return e.v.Links }

// Status is the engagement's Status (see View).
func (e *Engagement) Status() Status { return e.v.Status }

// Version is the engagement's Version (see View).
func (e *Engagement) Version() int { return e.v.Version }

// Sequence is the engagement's Sequence (see View).
func (e *Engagement) Sequence() uint64 { return e.v.Sequence }

// Hash is the engagement's Hash (see View).
func (e *Engagement) Hash() string { return e.v.Hash }

// Instrument is the engagement's Instrument (see View).
func (e *Engagement) Instrument() string { return e.v.Instrument }

// Level is the engagement's Level (see View).
func (e *Engagement) Level() string { return e.v.Level }

// Location is the engagement's Location (see View).
func (e *Engagement) Location() string { return e.v.Location }

// SignedOn is the engagement's SignedOn (see View).
func (e *Engagement) SignedOn() string { return e.v.SignedOn }

// RenewedOn is the engagement's RenewedOn (see View).
func (e *Engagement) RenewedOn() string { return e.v.RenewedOn }

// ExpiresOn is the engagement's ExpiresOn (see View).
func (e *Engagement) ExpiresOn() string { return e.v.ExpiresOn }

// TerminationReason is the engagement's TerminationReason (see View).
func (e *Engagement) TerminationReason() string { return e.v.TerminationReason }

// AdoptedBy is the engagement's AdoptedBy (see View).
func (e *Engagement) AdoptedBy() string { return e.v.AdoptedBy }

// Contributions is the engagement's Contributions (see View).
func (e *Engagement) Contributions() []Contribution { return e.v.Contributions }

// Commitments is the engagement's Commitments (see View).
func (e *Engagement) Commitments() []Commitment { return e.v.Commitments }

// Role is the engagement's Role (see View).
func (e *Engagement) Role() string { return e.v.Role }

// LeftReason is the engagement's LeftReason (see View).
func (e *Engagement) LeftReason() string { return e.v.LeftReason }

// StartsOn is the engagement's StartsOn (see View).
func (e *Engagement) StartsOn() string { return e.v.StartsOn }

// Delegation is the engagement's Delegation (see View).
func (e *Engagement) Delegation() string { return e.v.Delegation }

// Outcome is the engagement's Outcome (see View).
func (e *Engagement) Outcome() string { return e.v.Outcome }

// StartedAt is the engagement's StartedAt (see View).
func (e *Engagement) StartedAt() time.Time { return e.v.StartedAt }

// CreatedAt is the engagement's CreatedAt (see View).
func (e *Engagement) CreatedAt() time.Time { return e.v.CreatedAt }

// UpdatedAt is the engagement's UpdatedAt (see View).
func (e *Engagement) UpdatedAt() time.Time { return e.v.UpdatedAt }

// Exists reports whether the engagement has been recorded.
func (e *Engagement) Exists() bool { return e.v.Version > 0 }

// StatusAt is the status on day t: an active agreement whose expires_on lies
// before t is expired.
func (v *View) StatusAt(t time.Time) Status {
	if v.Status == StatusActive && v.ExpiresOn != "" && t.UTC().Format(DateLayout) > v.ExpiresOn {
		return StatusExpired
	}
	return v.Status
}

// StatusAt is the status on day t (see View.StatusAt).
func (e *Engagement) StatusAt(t time.Time) Status { return e.v.StatusAt(t) }

// MarshalJSON encodes e as its View.
func (e *Engagement) MarshalJSON() ([]byte, error) { return json.Marshal(&e.v) }

// closed reports whether no more amendments are allowed in status s.
func (e *Engagement) closed(s Status) bool {
	switch s {
	case StatusTerminated, StatusExpired, StatusLeft, StatusConcluded:
		return true
	}
	return false
}

// HasEvent reports whether id is one of this engagement's events.
func (e *Engagement) HasEvent(id string) bool {
	_, ok := e.eventType(id)
	return ok
}

// eventRefSize is the size of one packed event reference: the id's 16
// bytes, then the type's index in EventTypes.
const eventRefSize = 17

// eventType finds one of this engagement's events by id.
func (e *Engagement) eventType(id string) (EventType, bool) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	for i := 0; i+eventRefSize <= len(e.events); i += eventRefSize {
		if [16]byte(e.events[i:i+16]) == u {
			return EventTypes[e.events[i+16]], true
		}
	}
	return "", false
}

// EventVersion returns the version of e's event id: its 1-based position in
// the events folded into e. The projection uses it to find an event's stream
// sequence without reading the history.
func (e *Engagement) EventVersion(id string) (int, bool) {
	u, err := uuid.Parse(id)
	if err != nil {
		return 0, false
	}
	for i := 0; i+eventRefSize <= len(e.events); i += eventRefSize {
		if [16]byte(e.events[i:i+16]) == u {
			return i/eventRefSize + 1, true
		}
	}
	return 0, false
}

// version is EventVersion's version, 0 when id is not one of e's events.
func (e *Engagement) version(id string) int {
	v, _ := e.EventVersion(id)
	return v
}

// addEvent remembers one of this engagement's events. Only events whose id
// is a UUID and whose type is known reach Apply.
func (e *Engagement) addEvent(id string, t EventType) {
	u, err := uuid.Parse(id)
	i := slices.Index(EventTypes, t)
	if err != nil || i < 0 {
		return
	}
	e.events = append(append(e.events, u[:]...), byte(i))
}

// Clone returns a deep copy that shares nothing with e.
func (e *Engagement) Clone() *Engagement {
	c := *e
	c.v.Parties = slices.Clone(e.v.Parties)
	c.v.Tags = slices.Clone(e.v.Tags)
	c.v.Links = slices.Clone(e.v.Links)
	c.v.Contributions = slices.Clone(e.v.Contributions)
	c.v.Commitments = slices.Clone(e.v.Commitments)
	c.v.Actions = slices.Clone(e.v.Actions)
	c.v.FocalPoints = slices.Clone(e.v.FocalPoints)
	c.v.Documents = slices.Clone(e.v.Documents)
	c.events = slices.Clone(e.events)
	c.sources = slices.Clone(e.sources)
	c.v.Reminders = maps.Clone(e.v.Reminders)
	return &c
}

// Decide checks whether ev may be appended to e now: the type applies to the
// kind, the data is well-formed and valid, the transition is allowed in the
// state the engagement was in when the event occurred, and the envelope is
// consistent (version follows, times are sane). It returns ev with its data
// normalised (trimmed strings, nulls dropped).
//
// Errors: *MalformedError (wrong JSON shape), *ValidationError (field rules),
// *TransitionError (wraps ErrInvalidTransition), ErrUnknownEventType,
// ErrNotFound (event for an engagement that was never recorded).
func (e *Engagement) Decide(ev Event) (Event, error) {
	ev, values, err := e.decide(ev)
	if err != nil {
		return ev, err
	}
	data, err := json.Marshal(values)
	if err != nil {
		return ev, fmt.Errorf("normalise data: %w", err)
	}
	ev.Data = data
	return ev, nil
}

// decide is Decide without encoding the normalised data: it returns the
// normalised values (strings, lists of strings, and for a correction the
// corrected fields under "fields"), which Apply folds as they are.
func (e *Engagement) decide(ev Event) (Event, map[string]any, error) {
	spec, err := specFor(ev.Type)
	if err != nil {
		return ev, nil, err
	}
	if err := e.checkTarget(ev); err != nil {
		return ev, nil, err
	}
	if spec.System && ev.Actor != SystemActor {
		return ev, nil, &ValidationError{Fields: []FieldError{{Field: "type",
			Message: fmt.Sprintf("%s is recorded by the service itself, not by a client", ev.Type)}}}
	}
	if err := e.checkEnvelope(ev); err != nil {
		return ev, nil, err
	}
	if ev.Type == EngagementCorrected && isCorrectionV1(ev.Data) {
		// Writers may still send the v1 shape; it is stored as the current one.
		data, err := Upcast(ev.Type, 1, ev.Data)
		if err != nil {
			return ev, nil, err
		}
		ev.Data = data
	}
	fields, err := decodeObject(ev.Data)
	if err != nil {
		return ev, nil, err
	}
	var values map[string]any
	if ev.Type == EngagementCorrected {
		values, err = e.parseCorrection(fields)
	} else {
		values, err = parseFields("data.", fields, spec.Fields)
	}
	if err != nil {
		return ev, nil, err
	}
	if err := e.checkRules(ev, values); err != nil {
		return ev, nil, err
	}
	if err := e.checkTransition(spec, ev.Type, e.StatusAt(ev.OccurredAt), values); err != nil {
		return ev, nil, err
	}
	if ev.Type == EngagementRecorded {
		ev.Kind = Kind(values["kind"].(string))
	}
	return ev, values, nil
}

// checkTarget checks that ev may concern e at all: a first event records
// it, any later one names it and suits its kind.
func (e *Engagement) checkTarget(ev Event) error {
	if ev.Type == EngagementRecorded {
		if e.Exists() {
			return &TransitionError{Type: ev.Type, Status: e.v.Status, Reason: "the engagement is already recorded"}
		}
		return nil
	}
	if !e.Exists() {
		return fmt.Errorf("%w: engagement %s", ErrNotFound, ev.EngagementID)
	}
	if ev.Kind != e.v.Kind || ev.EngagementID != e.v.ID {
		return &TransitionError{Type: ev.Type, Status: e.v.Status, Reason: "the event names another engagement or kind"}
	}
	return e.checkKind(ev.Type)
}

// checkKind refuses a type of another kind's events.
func (e *Engagement) checkKind(t EventType) error {
	if !t.AppliesTo(e.v.Kind) {
		return &TransitionError{Type: t, Status: e.v.Status,
			Reason: fmt.Sprintf("%s events apply only to %s engagements, this one is a %s", t, t.Prefix(), e.v.Kind)}
	}
	return nil
}

func (e *Engagement) checkEnvelope(ev Event) error {
	var v ValidationError
	if err := CheckID(ev.ID); err != nil {
		v.add("id", "must be a UUID")
	}
	if err := CheckID(ev.EngagementID); err != nil {
		v.add("engagement_id", "must be a UUID")
	}
	if ev.Version != e.v.Version+1 {
		v.add("version", "must be %d, the next version of the engagement", e.v.Version+1)
	}
	if ev.OccurredAt.IsZero() {
		v.add("occurred_at", "is required")
	} else if y := ev.OccurredAt.Year(); y < MinYear || y > MaxYear {
		v.add("occurred_at", "year must be between %d and %d", MinYear, MaxYear)
	} else if !ev.RecordedAt.IsZero() && ev.OccurredAt.After(ev.RecordedAt.Add(MaxClockSkew)) {
		v.add("occurred_at", "must not be in the future (events record what has happened)")
	}
	if err := CheckPrecision(ev.OccurredAt, ev.TimePrecision); err != nil {
		v.add("occurred_at", "%s", err.Error())
	}
	if ev.RecordedAt.IsZero() {
		v.add("recorded_at", "is required")
	}
	if ev.PrevHash != e.v.Hash {
		v.add("prev_hash", "does not continue the engagement's hash chain")
	}
	if p := checkText(ev.Actor, MaxEntry, false); p != "" {
		v.add("actor", "%s", p)
	}
	return v.orNil()
}

// parseCorrection checks engagement.corrected: the corrected event must be one
// of this engagement's, not itself a correction, and the corrected fields
// must belong to that event's type.
func (e *Engagement) parseCorrection(fields map[string]json.RawMessage) (map[string]any, error) {
	base, err := parseFields("data.", pick(fields, "corrects", "reason"), specByType[EngagementCorrected].Fields)
	if err != nil {
		return nil, err
	}
	target := base["corrects"].(string)
	t, ok := e.eventType(target)
	if !ok {
		return nil, &ValidationError{Fields: []FieldError{{Field: "data.corrects", Message: "is not an event of this engagement"}}}
	}
	if t == EngagementCorrected {
		return nil, &ValidationError{Fields: []FieldError{{Field: "data.corrects",
			Message: "names a correction; correct the original event instead"}}}
	}
	if specByType[t].Upload {
		// Its data describes bytes stored elsewhere: what it says is
		// replaced by attaching a new version that supersedes it.
		return nil, &ValidationError{Fields: []FieldError{{Field: "data.corrects",
			Message: "names an attached document, which cannot be corrected; attach a new version that supersedes it"}}}
	}
	if specByType[t].System {
		return nil, &ValidationError{Fields: []FieldError{{Field: "data.corrects",
			Message: "names a reminder the service recorded; correct the event it reminds of instead"}}}
	}
	if specByType[t].Erasure {
		return nil, &ValidationError{Fields: []FieldError{{Field: "data.corrects",
			Message: "names a record of an erasure, which cannot be corrected"}}}
	}
	rest := maps.Clone(fields)
	delete(rest, "corrects")
	delete(rest, "reason")
	nested, ok := rest["fields"]
	delete(rest, "fields")
	if len(rest) > 0 {
		var bad MalformedError
		for k := range rest {
			bad.Fields = append(bad.Fields, FieldError{Field: "data." + truncate(k, 64), Message: "unknown field (corrected fields go under data.fields)"})
		}
		sortFields(bad.Fields)
		return nil, &bad
	}
	if ok {
		if rest, err = decodeObject(nested); err != nil {
			return nil, &MalformedError{Fields: []FieldError{{Field: "data.fields", Message: "must be a JSON object"}}}
		}
	}
	if len(rest) == 0 {
		return nil, &ValidationError{Fields: []FieldError{{Field: "data",
			Message: fmt.Sprintf("must hold at least one corrected field of %s", t)}}}
	}
	corrected, err := parseFields("data.fields.", rest, correctable[t])
	if err != nil {
		return nil, err
	}
	base["fields"] = corrected
	return base, nil
}

func pick(m map[string]json.RawMessage, names ...string) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(names))
	for _, n := range names {
		if v, ok := m[n]; ok {
			out[n] = v
		}
	}
	return out
}

// correctable are the fields a correction of each type may name: all
// optional (a correction names only what was wrong), never the kind.
var correctable = func() map[EventType][]Field {
	m := make(map[EventType][]Field, len(specs))
	for _, s := range specs {
		fields := slices.DeleteFunc(slices.Clone(s.Fields), func(f Field) bool {
			return s.Type == EngagementRecorded && f.Name == "kind"
		})
		for i := range fields {
			fields[i].Required = false
		}
		m[s.Type] = fields
	}
	return m
}()

// checkRules applies the rules that span fields or depend on the kind: the
// spec's, and a field's OnlyFor. A correction's fields are held to the rules
// of the corrected event's type.
func (e *Engagement) checkRules(ev Event, values map[string]any) error {
	kind := e.v.Kind
	if ev.Type == EngagementRecorded {
		kind = Kind(values["kind"].(string))
	}
	spec := specByType[ev.Type]
	r := rules{e: e, values: values}
	if ev.Type == EngagementCorrected {
		r.target = values["corrects"].(string)
		t, _ := e.eventType(r.target)
		spec, r.values = specByType[t], values["fields"].(map[string]any)
	}
	var v ValidationError
	for _, f := range spec.Fields {
		if f.OnlyFor == "" {
			continue
		}
		_, ok := r.values[f.Name]
		if ok && kind != f.OnlyFor {
			v.add("data."+f.Name, "applies only to %s engagements", f.OnlyFor)
		}
		if !ok && kind == f.OnlyFor && f.Required && r.target == "" {
			v.add("data."+f.Name, "is required for %s engagements", f.OnlyFor)
		}
	}
	if spec.check != nil {
		spec.check(r, &v)
	}
	if r.target != "" {
		for i := range v.Fields {
			v.Fields[i].Field = strings.Replace(v.Fields[i].Field, "data.", "data.fields.", 1)
		}
	}
	return v.orNil()
}

// checkAfter requires expires_on to come after the start date named by
// startField. A correction may name only one of the two: the other is then
// the corrected event's value if it still holds ("" when unknown).
func (r rules) checkAfter(v *ValidationError, startField string) {
	start, hasStart := r.values[startField].(string)
	exp, hasExp := r.values["expires_on"].(string)
	if !hasStart && r.target != "" {
		start = r.e.heldBy(startField, r.target)
	}
	if !hasExp && r.target != "" {
		exp = r.e.heldBy("expires_on", r.target)
	}
	if (!hasStart && !hasExp) || start == "" || exp == "" || exp > start {
		return
	}
	if hasExp {
		v.add("data.expires_on", "must be after %s %s", startField, start)
	} else {
		v.add("data."+startField, "must be before expires_on %s", exp)
	}
}

// heldBy is the state's value of a string field of the event id's type if
// that event still determines it, "" otherwise.
func (e *Engagement) heldBy(field, id string) string {
	if src, ok := e.sourceOf(field); !ok || src+1 != e.version(id) {
		return ""
	}
	t, _ := e.eventType(id)
	if f, ok := specByType[t].Field(field); ok && f.state != nil {
		if p, ok := f.state(e).(*string); ok {
			return *p
		}
	}
	return ""
}

// checkTransition is the state machine: the spec's From, then its allow.
func (e *Engagement) checkTransition(spec *Spec, t EventType, status Status, values map[string]any) error {
	if spec.From != nil && !slices.Contains(spec.From, status) {
		names := make([]string, len(spec.From))
		for i, s := range spec.From {
			names[i] = string(s)
		}
		return &TransitionError{Type: t, Status: status,
			Reason: fmt.Sprintf("the %s is %s; allowed only when %s", e.v.Kind, status, strings.Join(names, " or "))}
	}
	if spec.allow != nil {
		if reason := spec.allow(e, status, values); reason != "" {
			return &TransitionError{Type: t, Status: status, Reason: reason}
		}
	}
	return nil
}

// Allows reports whether an event of type t may happen to e at time at, as
// far as the state decides: the kind, the status, the spec's own rule. It
// does not look at data (Decide does), so an allowed event may still be
// refused for what it says. Corrections are always allowed.
func (e *Engagement) Allows(t EventType, at time.Time) error {
	spec, err := specFor(t)
	if err != nil {
		return err
	}
	if t == EngagementRecorded {
		return e.checkTarget(Event{Type: t})
	}
	if !e.Exists() {
		return fmt.Errorf("%w: engagement %s", ErrNotFound, e.v.ID)
	}
	if err := e.checkKind(t); err != nil {
		return err
	}
	return e.checkTransition(spec, t, e.StatusAt(at), nil)
}

// Apply folds ev into e after checking it with Decide, so an event that was
// forged or published around the rules is never applied blindly. On error e
// is unchanged.
func (e *Engagement) Apply(ev Event) error {
	ev, f, err := e.decide(ev)
	if err != nil {
		return err
	}
	spec := specByType[ev.Type]
	if spec.To != "" {
		e.v.Status = spec.To
	}
	if spec.apply != nil {
		spec.apply(e, ev, f)
	}
	if ev.Type == EngagementCorrected {
		target, _ := f["corrects"].(string)
		fields, _ := f["fields"].(map[string]any)
		t, _ := e.eventType(target)
		e.setFields(specByType[t], target, ev.OccurredAt, fields, true)
	} else {
		e.setFields(spec, ev.ID, ev.OccurredAt, f, false)
	}
	e.addEvent(ev.ID, ev.Type)
	e.v.Version = ev.Version
	e.v.Sequence = ev.Sequence
	e.v.Hash = strings.Clone(ev.Hash) // not the message's header block
	e.v.UpdatedAt = ev.RecordedAt
	return nil
}

// setFields copies an event's data into the state. For a correction it sets
// only the fields that the corrected event (id) still determines: those it
// set and no later event changed, and those no event has set at all (the
// corrected event left out what it should have said).
func (e *Engagement) setFields(spec *Spec, id string, at time.Time, f map[string]any, correcting bool) {
	if spec.item != nil {
		spec.item(e, id, at, f, correcting)
		return
	}
	// The event's position in events: a correction's target is there; the
	// event being applied is added after its fields are set.
	pos := len(e.events) / eventRefSize
	if correcting {
		pos = e.version(id) - 1
	}
	for i := range spec.Fields {
		fd := &spec.Fields[i]
		v, ok := f[fd.Name]
		if !ok || fd.state == nil {
			continue
		}
		if !correcting {
			e.setSource(fd.Name, pos)
		} else if src, set := e.sourceOf(fd.Name); set && src != pos {
			continue
		}
		switch dst := fd.state(e).(type) {
		case *string:
			*dst, _ = v.(string)
		case *[]string:
			*dst, _ = v.([]string)
		case *int:
			*dst, _ = v.(int)
		}
	}
}
