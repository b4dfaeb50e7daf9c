package domain

import (
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

// Engagement is the state of one engagement, folded from its events. The zero
// value is an engagement that has not been recorded yet.
type Engagement struct {
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

	SignedOn          string `json:"signed_on,omitempty"`
	RenewedOn         string `json:"renewed_on,omitempty"`
	ExpiresOn         string `json:"expires_on,omitempty"`
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

	// StartedAt is the occurred_at of engagement.recorded: when it began in the world.
	StartedAt time.Time `json:"started_at"`
	// CreatedAt and UpdatedAt are recorded_at times of the first and latest event.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// events lists this engagement's event ids and types, for corrections,
	// packed (see eventRefSize): a few bytes per event and nothing for the
	// garbage collector to scan, since every event of history has one.
	events []byte
	// sources maps a state field to the id of the event that last set it, so a
	// correction changes current state only where that event still holds.
	sources map[string]string
}

// Exists reports whether the engagement has been recorded.
func (e *Engagement) Exists() bool { return e.Version > 0 }

// StatusAt is the status on day t: an active agreement whose expires_on lies
// before t is expired.
func (e *Engagement) StatusAt(t time.Time) Status {
	if e.Status == StatusActive && e.ExpiresOn != "" && t.UTC().Format(DateLayout) > e.ExpiresOn {
		return StatusExpired
	}
	return e.Status
}

// closedAt reports whether no more amendments are allowed.
func (e *Engagement) closedAt(t time.Time) bool {
	switch e.StatusAt(t) {
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
	c.Parties = slices.Clone(e.Parties)
	c.Tags = slices.Clone(e.Tags)
	c.Links = slices.Clone(e.Links)
	c.Contributions = slices.Clone(e.Contributions)
	c.Commitments = slices.Clone(e.Commitments)
	c.events = slices.Clone(e.events)
	c.sources = maps.Clone(e.sources)
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
	if _, err := ParseEventType(string(ev.Type)); err != nil {
		return ev, nil, err
	}
	if ev.Type == EngagementRecorded {
		if e.Exists() {
			return ev, nil, &TransitionError{Type: ev.Type, Status: e.Status, Reason: "the engagement is already recorded"}
		}
	} else {
		if !e.Exists() {
			return ev, nil, fmt.Errorf("%w: engagement %s", ErrNotFound, ev.EngagementID)
		}
		if ev.Kind != e.Kind || ev.EngagementID != e.ID {
			return ev, nil, &TransitionError{Type: ev.Type, Status: e.Status, Reason: "the event names another engagement or kind"}
		}
		if !ev.Type.AppliesTo(e.Kind) {
			return ev, nil, &TransitionError{Type: ev.Type, Status: e.Status,
				Reason: fmt.Sprintf("%s events apply only to %s engagements, this one is a %s", ev.Type, ev.Type.Prefix(), e.Kind)}
		}
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
		values, err = parseFields("data.", fields, schemas[ev.Type], nil)
	}
	if err != nil {
		return ev, nil, err
	}
	if err := e.checkRules(ev, values); err != nil {
		return ev, nil, err
	}
	if err := e.checkTransition(ev, values); err != nil {
		return ev, nil, err
	}
	if ev.Type == EngagementRecorded {
		ev.Kind = Kind(values["kind"].(string))
	}
	return ev, values, nil
}

func (e *Engagement) checkEnvelope(ev Event) error {
	var v ValidationError
	if err := CheckID(ev.ID); err != nil {
		v.add("id", "must be a UUID")
	}
	if err := CheckID(ev.EngagementID); err != nil {
		v.add("engagement_id", "must be a UUID")
	}
	if ev.Version != e.Version+1 {
		v.add("version", "must be %d, the next version of the engagement", e.Version+1)
	}
	if ev.OccurredAt.IsZero() {
		v.add("occurred_at", "is required")
	} else if y := ev.OccurredAt.Year(); y < MinYear || y > MaxYear {
		v.add("occurred_at", "year must be between %d and %d", MinYear, MaxYear)
	} else if !ev.RecordedAt.IsZero() && ev.OccurredAt.After(ev.RecordedAt.Add(MaxClockSkew)) {
		v.add("occurred_at", "must not be in the future (events record what has happened)")
	}
	if ev.RecordedAt.IsZero() {
		v.add("recorded_at", "is required")
	}
	if ev.PrevHash != e.Hash {
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
	base, err := parseFields("data.", pick(fields, "corrects", "reason"), correctionSpecs, nil)
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
	specs := slices.Clone(schemas[t])
	for i := range specs {
		specs[i].required = false // a correction names only what was wrong
	}
	if t == EngagementRecorded {
		specs = slices.DeleteFunc(specs, func(s fieldSpec) bool { return s.name == "kind" })
	}
	corrected, err := parseFields("data.fields.", rest, specs, nil)
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

// checkRules applies rules that span fields or depend on the kind.
func (e *Engagement) checkRules(ev Event, values map[string]any) error {
	var v ValidationError
	kind := e.Kind
	if ev.Type == EngagementRecorded {
		kind = Kind(values["kind"].(string))
	}
	t := ev.Type
	var target string
	if t == EngagementCorrected {
		// The rules of the corrected event's type apply to the corrected fields.
		target = values["corrects"].(string)
		t, _ = e.eventType(target)
		values = values["fields"].(map[string]any)
	}
	switch t {
	case EngagementRecorded, EngagementAmended:
		if _, ok := values["instrument"]; ok && kind != KindPolicy {
			v.add("data.instrument", "applies only to policy engagements")
		}
		if _, ok := values["instrument"]; !ok && kind == KindPolicy && ev.Type == EngagementRecorded {
			v.add("data.instrument", "is required for policy engagements")
		}
		for _, f := range []string{"level", "location"} {
			if _, ok := values[f]; ok && kind != KindMeeting {
				v.add("data."+f, "applies only to meeting engagements")
			}
		}
		if ev.Type == EngagementAmended && len(values) == 0 {
			v.add("data", "must change at least one field")
		}
	case EngagementLinked:
		if values["target_id"] == e.ID && e.ID != "" {
			v.add("data.target_id", "must be another engagement")
		}
	case AgreementSigned, AgreementRenewed:
		start := "signed_on"
		if t == AgreementRenewed {
			start = "renewed_on"
		}
		var curStart, curExp string
		if ev.Type == EngagementCorrected {
			curStart, curExp = e.dateHeldBy(start, target), e.dateHeldBy("expires_on", target)
		}
		checkAfter(&v, values, start, curStart, curExp)
		// Also for corrections: a renewal cannot precede the signing.
		if r, ok := values["renewed_on"].(string); ok && r < e.SignedOn {
			v.add("data.renewed_on", "must not be before signed_on %s", e.SignedOn)
		}
	}
	if ev.Type == EngagementCorrected {
		for i := range v.Fields {
			v.Fields[i].Field = strings.Replace(v.Fields[i].Field, "data.", "data.fields.", 1)
		}
	}
	return v.orNil()
}

// checkAfter requires expires_on to come after the start date named by
// startField. A correction may name only one of the two: the other is then
// curStart or curExp, the corrected event's value ("" when unknown).
func checkAfter(v *ValidationError, values map[string]any, startField, curStart, curExp string) {
	start, hasStart := values[startField].(string)
	exp, hasExp := values["expires_on"].(string)
	if !hasStart {
		start = curStart
	}
	if !hasExp {
		exp = curExp
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

// dateHeldBy is the state's value of a date field of agreement.signed or
// agreement.renewed if event id still determines it, "" otherwise.
func (e *Engagement) dateHeldBy(field, id string) string {
	if e.sources[field] != id {
		return ""
	}
	switch field {
	case "signed_on":
		return e.SignedOn
	case "renewed_on":
		return e.RenewedOn
	case "expires_on":
		return e.ExpiresOn
	}
	return ""
}

// checkTransition is each kind's state machine.
func (e *Engagement) checkTransition(ev Event, values map[string]any) error {
	status := e.StatusAt(ev.OccurredAt)
	deny := func(reason string) error {
		return &TransitionError{Type: ev.Type, Status: status, Reason: reason}
	}
	need := func(allowed ...Status) error {
		if slices.Contains(allowed, status) {
			return nil
		}
		names := make([]string, len(allowed))
		for i, s := range allowed {
			names[i] = string(s)
		}
		return deny(fmt.Sprintf("the %s is %s; allowed only when %s", e.Kind, status, strings.Join(names, " or ")))
	}
	switch ev.Type {
	case EngagementAmended:
		if e.closedAt(ev.OccurredAt) {
			return deny(fmt.Sprintf("the %s is %s and can no longer be amended; record a correction instead", e.Kind, status))
		}
	case EngagementLinked:
		for _, l := range e.Links {
			if l.TargetID == values["target_id"] && l.Relation == values["relation"] {
				return deny("the engagements are already linked with that relation")
			}
		}
	case AgreementSigned:
		return need(StatusDraft)
	case AgreementRenewed:
		// An agreement past its expiry may still be renewed: renewing is what revives it.
		return need(StatusActive, StatusExpired)
	case AgreementTerminated:
		return need(StatusActive)
	case PolicyAdopted:
		return need(StatusInProgress)
	case PolicyCommitted:
		return need(StatusAdopted)
	case InitiativeJoined:
		return need(StatusRecorded, StatusLeft)
	case InitiativeRoleChanged:
		if err := need(StatusMember); err != nil {
			return err
		}
		if values["role"] == e.Role {
			return deny("the role is already " + e.Role)
		}
	case InitiativeLeft:
		return need(StatusMember)
	case MeetingScheduled:
		return need(StatusRecorded)
	case MeetingAttended:
		return need(StatusScheduled)
	case MeetingConcluded:
		return need(StatusAttended)
	}
	return nil
}

// Apply folds ev into e after checking it with Decide, so an event that was
// forged or published around the rules is never applied blindly. On error e
// is unchanged.
func (e *Engagement) Apply(ev Event) error {
	ev, f, err := e.decide(ev)
	if err != nil {
		return err
	}
	if e.sources == nil {
		e.sources = make(map[string]string)
	}
	switch ev.Type {
	case EngagementRecorded:
		e.ID, e.Kind, e.Status = ev.EngagementID, ev.Kind, ev.Kind.initialStatus()
		e.StartedAt, e.CreatedAt = ev.OccurredAt, ev.RecordedAt
		e.Parties, e.Tags, e.Links = []string{}, []string{}, []Link{}
	case AgreementSigned, AgreementRenewed:
		e.Status = StatusActive
		if _, ok := f["expires_on"]; !ok {
			f["expires_on"] = "" // signed or renewed without an end: open-ended
		}
	case AgreementTerminated:
		e.Status = StatusTerminated
	case PolicyAdopted:
		e.Status = StatusAdopted
	case PolicyCommitted:
		e.Status = StatusImplementing
	case InitiativeJoined:
		e.Status = StatusMember
		e.LeftReason = ""
		delete(e.sources, "reason")
	case InitiativeLeft:
		e.Status = StatusLeft
	case MeetingScheduled:
		e.Status = StatusScheduled
	case MeetingAttended:
		e.Status = StatusAttended
	case MeetingConcluded:
		e.Status = StatusConcluded
	}
	if ev.Type == EngagementCorrected {
		target, _ := f["corrects"].(string)
		fields, _ := f["fields"].(map[string]any)
		t, _ := e.eventType(target)
		e.setFields(t, target, ev.OccurredAt, fields, true)
	} else {
		e.setFields(ev.Type, ev.ID, ev.OccurredAt, f, false)
	}
	e.addEvent(ev.ID, ev.Type)
	e.Version = ev.Version
	e.Sequence = ev.Sequence
	e.Hash = strings.Clone(ev.Hash) // not the message's header block
	e.UpdatedAt = ev.RecordedAt
	return nil
}

// setFields copies an event's data into the state. For a correction it sets
// only the fields that the corrected event (id) still determines: those it
// set and no later event changed, and those no event has set at all (the
// corrected event left out what it should have said).
func (e *Engagement) setFields(t EventType, id string, at time.Time, f map[string]any, correcting bool) {
	owns := func(name string) bool {
		if _, ok := f[name]; !ok {
			return false
		}
		if correcting {
			src, set := e.sources[name]
			return !set || src == id
		}
		e.sources[name] = id
		return true
	}
	str := func(name string, dst *string) {
		if owns(name) {
			*dst, _ = f[name].(string)
		}
	}
	strs := func(name string, dst *[]string) {
		if owns(name) {
			*dst, _ = f[name].([]string)
		}
	}
	get := func(name string, dst *string) {
		if v, ok := f[name].(string); ok {
			*dst = v
		}
	}
	switch t {
	case EngagementRecorded, EngagementAmended:
		str("title", &e.Title)
		strs("parties", &e.Parties)
		str("description", &e.Description)
		strs("tags", &e.Tags)
		str("instrument", &e.Instrument)
		str("level", &e.Level)
		str("location", &e.Location)
	case EngagementLinked:
		if !correcting {
			e.Links = append(e.Links, Link{EventID: id})
		}
		for i := range e.Links {
			if e.Links[i].EventID == id {
				get("target_id", &e.Links[i].TargetID)
				get("relation", &e.Links[i].Relation)
			}
		}
	case AgreementSigned:
		str("signed_on", &e.SignedOn)
		str("expires_on", &e.ExpiresOn)
	case AgreementRenewed:
		str("renewed_on", &e.RenewedOn)
		str("expires_on", &e.ExpiresOn)
	case AgreementTerminated:
		str("reason", &e.TerminationReason)
	case PolicyContributed:
		if !correcting {
			e.Contributions = append(e.Contributions, Contribution{EventID: id, OccurredAt: at})
		}
		for i := range e.Contributions {
			if e.Contributions[i].EventID == id {
				get("contribution", &e.Contributions[i].Contribution)
				get("role", &e.Contributions[i].Role)
			}
		}
	case PolicyAdopted:
		str("adopted_by", &e.AdoptedBy)
	case PolicyCommitted:
		if !correcting {
			e.Commitments = append(e.Commitments, Commitment{EventID: id, OccurredAt: at})
		}
		for i := range e.Commitments {
			if e.Commitments[i].EventID == id {
				get("commitment", &e.Commitments[i].Commitment)
			}
		}
	case InitiativeJoined, InitiativeRoleChanged, MeetingAttended:
		str("role", &e.Role)
		str("delegation", &e.Delegation)
	case InitiativeLeft:
		str("reason", &e.LeftReason)
	case MeetingScheduled:
		str("starts_on", &e.StartsOn)
		str("location", &e.Location)
	case MeetingConcluded:
		str("outcome", &e.Outcome)
	}
}
