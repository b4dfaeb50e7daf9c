package importer

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
)

// Namespace is the UUID namespace of the idempotency keys derived from the
// rows' keys (UUID v5). It never changes: a file imported again yields the
// same keys, and the service stores nothing twice.
var Namespace = uuid.MustParse("bf6f2390-1a69-43b2-a406-51634a2a2c7d")

// MaxKey is the longest key a row may have.
const MaxKey = 200

// Engagement is one engagements row, ready to record, with its events.
type Engagement struct {
	Row Row
	Key string
	// Body is the create command's body (POST /v1/engagements).
	Body   map[string]any
	Events []*Event
	// IdempotencyKey is derived from Key.
	IdempotencyKey string
}

// Event is one events row, ready to append.
type Event struct {
	Row  Row
	Key  string // its own key, or its position among its engagement's events
	Type domain.EventType
	// OccurredAt is the cell as written ("" for now).
	OccurredAt string
	Data       map[string]any
	// Target is engagement.linked's target: the key of an engagements row
	// (TargetKey true) or the id of an engagement already recorded.
	Target    string
	TargetKey bool
	// IdempotencyKey is derived from the engagement's key and Key.
	IdempotencyKey string
	// bad marks a row with a problem of its own.
	bad bool
}

// Plan is what a file would record, and every problem found in it.
type Plan struct {
	Engagements []*Engagement
	Problems    []Problem
	// Unchecked counts the events not checked because their engagement's
	// row, or an earlier event of it, has a problem.
	Unchecked int
}

// Events is how many events the plan holds.
func (p *Plan) Events() int {
	n := 0
	for _, e := range p.Engagements {
		n += len(e.Events)
	}
	return n
}

// Check reads f's rows into a plan and checks each with the domain's
// rules, as the service will: each engagement is recorded and its events
// decided in order on a state of its own (the rules of every event type,
// the transitions, back-dated times not in the future). now is the time
// an empty occurred_at stands for. What only the service can check (that
// a target id exists, that links form no cycle) is left to it.
func Check(f *File, now time.Time) *Plan {
	p := &Plan{}
	byKey := make(map[string]*Engagement)
	for _, r := range f.Engagements {
		e := &Engagement{Row: r, Key: r.Cells[ColKey]}
		if !p.checkKey(r, e.Key) {
			continue
		}
		if prev := byKey[e.Key]; prev != nil {
			p.add(r, ColKey, fmt.Sprintf("the key %q is already row %d's", e.Key, prev.Row.Num))
			continue
		}
		e.IdempotencyKey = uuid.NewSHA1(Namespace, []byte("engagement\x00"+e.Key)).String()
		e.Body = make(map[string]any)
		spec, _ := domain.SpecOf(domain.EngagementRecorded)
		for _, fl := range spec.Fields {
			if v, ok := r.Cells[fl.Name]; ok {
				e.Body[fl.Name] = value(&fl, v)
			}
		}
		if v, ok := r.Cells[ColOccurredAt]; ok {
			e.Body[ColOccurredAt] = v
		}
		byKey[e.Key] = e
		p.Engagements = append(p.Engagements, e)
	}
	for _, r := range f.Events {
		ref := r.Cells[ColEngagement]
		e := byKey[ref]
		switch {
		case ref == "":
			p.add(r, ColEngagement, "is required: the key of the engagements row this event belongs to")
			continue
		case e == nil:
			p.add(r, ColEngagement, fmt.Sprintf("no engagements row has the key %q", ref))
			continue
		}
		e.Events = append(e.Events, p.event(r, e, byKey))
	}
	for _, e := range p.Engagements {
		p.decide(e, byKey, now)
	}
	SortProblems(p.Problems)
	return p
}

// SortProblems orders problems as a reader goes through the file: the
// engagements sheet, then events, each by row and column.
func SortProblems(ps []Problem) {
	rank := func(s string) int {
		switch s {
		case SheetEngagements:
			return 1
		case SheetEvents:
			return 2
		}
		return 0
	}
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(rank(a.Sheet), rank(b.Sheet)), cmp.Compare(a.Row, b.Row), cmp.Compare(a.Column, b.Column))
	})
}

// event reads an events row of engagement e; an event whose row has a
// problem is marked bad.
func (p *Plan) event(r Row, e *Engagement, byKey map[string]*Engagement) *Event {
	before := len(p.Problems)
	ev := &Event{Row: r, Key: r.Cells[ColKey], OccurredAt: r.Cells[ColOccurredAt], Data: make(map[string]any)}
	defer func() { ev.bad = len(p.Problems) > before }()
	if ev.Key == "" {
		ev.Key = fmt.Sprintf("#%d", len(e.Events)+1)
	} else if !p.checkKey(r, ev.Key) {
		return ev
	}
	for _, other := range e.Events {
		if other.Key == ev.Key {
			p.add(r, ColKey, fmt.Sprintf("the key %q is already row %d's, of the same engagement", ev.Key, other.Row.Num))
			return ev
		}
	}
	ev.IdempotencyKey = uuid.NewSHA1(Namespace, []byte("event\x00"+e.Key+"\x00"+ev.Key)).String()
	typ := r.Cells[ColType]
	if typ == "" {
		p.add(r, ColType, "is required")
		return ev
	}
	t, err := domain.ParseEventType(typ)
	if err != nil || !importable(t) {
		p.add(r, ColType, fmt.Sprintf("%q is not an event type that can be imported (engagement.recorded is a row of the engagements sheet; corrections are made in the tracker)", typ))
		return ev
	}
	ev.Type = t
	spec, _ := domain.SpecOf(t)
	for col, v := range r.Cells {
		switch col {
		case ColEngagement, ColKey, ColType, ColOccurredAt:
			continue
		}
		name := col
		if col == ColTarget {
			name = "target_id"
		}
		fl, ok := spec.Field(name)
		if !ok {
			p.add(r, col, fmt.Sprintf("is not a field of %s; leave it empty in this row", t))
			continue
		}
		if col == ColTarget {
			ev.Target = v
			_, ev.TargetKey = byKey[v]
			if !ev.TargetKey && domain.CheckID(v) != nil {
				p.add(r, col, fmt.Sprintf("no engagements row has the key %q (nor is it the id of an engagement)", v))
			}
			continue
		}
		ev.Data[name] = value(fl, v)
	}
	return ev
}

// checkKey reports whether a row's key is usable, adding a problem if not.
func (p *Plan) checkKey(r Row, key string) bool {
	switch {
	case key == "":
		p.add(r, ColKey, "is required: a key of your own that names the row (it makes a second import record nothing twice)")
	case len(key) > MaxKey:
		p.add(r, ColKey, fmt.Sprintf("must be at most %d bytes", MaxKey))
	default:
		return true
	}
	return false
}

func (p *Plan) add(r Row, col, msg string) {
	p.Problems = append(p.Problems, Problem{Sheet: r.Sheet, Row: r.Num, Column: r.Column(col), Message: msg})
}

// value is a cell as the field takes it: a list's entries are separated by
// commas (or semicolons, or new lines), anything else is text.
func value(f *domain.Field, v string) any {
	if f.Input != domain.InputList {
		return v
	}
	entries := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' || r == '\n' })
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// localID stands in, while checking, for the id the service will give the
// engagement of key.
func localID(key string) string { return uuid.NewSHA1(Namespace, []byte("id\x00"+key)).String() }

// decide checks e and its events on a state of their own, as the service's
// command path decides them.
func (p *Plan) decide(e *Engagement, byKey map[string]*Engagement, now time.Time) {
	state := &domain.Engagement{}
	id := localID(e.Key)
	body := make(map[string]any, len(e.Body))
	for k, v := range e.Body {
		if k != ColOccurredAt {
			body[k] = v
		}
	}
	data, _ := json.Marshal(body)
	occurred, _ := e.Body[ColOccurredAt].(string)
	if !p.apply(state, e.Row, id, domain.EngagementRecorded, occurred, data, now, engagementColumn) {
		p.Unchecked += len(e.Events)
		return
	}
	for i, ev := range e.Events {
		if ev.bad {
			p.Unchecked += len(e.Events) - i - 1
			return
		}
		d := ev.Data
		if ev.Target != "" {
			d = make(map[string]any, len(ev.Data)+1)
			for k, v := range ev.Data {
				d[k] = v
			}
			target := ev.Target
			if ev.TargetKey {
				target = localID(ev.Target)
			}
			d["target_id"] = target
		}
		data, _ := json.Marshal(d)
		if !p.apply(state, ev.Row, id, ev.Type, ev.OccurredAt, data, now, eventColumn) {
			p.Unchecked += len(e.Events) - i - 1
			return
		}
	}
}

// apply decides one event on state and folds it in; a refusal is added as
// problems of row, by the columns col names for the domain's fields.
func (p *Plan) apply(state *domain.Engagement, r Row, id string, t domain.EventType, occurred string,
	data []byte, now time.Time, col func(field string) string) bool {
	at, precision := now, ""
	if occurred != "" {
		var err error
		if at, precision, err = ParseOccurred(occurred); err != nil {
			p.add(r, ColOccurredAt, err.Error())
			return false
		}
	}
	ev := domain.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: t, EngagementID: id, Kind: state.Kind(),
		Version: state.Version() + 1, OccurredAt: at, TimePrecision: precision, RecordedAt: now, Actor: "import",
		Data: data, PrevHash: state.Hash()}
	ev, err := state.Decide(ev)
	if err == nil {
		ev.Hash = ev.ID // a hash of its own, for the next event's chain
		err = state.Apply(ev)
	}
	if err != nil {
		for _, fe := range fieldErrors(err) {
			p.add(r, col(fe.Field), fe.Message)
		}
		return false
	}
	return true
}

// fieldErrors is a refusal as field errors: the domain's own, or one
// naming the type for a refused transition.
func fieldErrors(err error) []domain.FieldError {
	var v *domain.ValidationError
	var m *domain.MalformedError
	var tr *domain.TransitionError
	switch {
	case errors.As(err, &v):
		return v.Fields
	case errors.As(err, &m):
		return m.Fields
	case errors.As(err, &tr), errors.Is(err, domain.ErrUnknownEventType):
		return []domain.FieldError{{Field: ColType, Message: err.Error()}}
	}
	return []domain.FieldError{{Message: err.Error()}}
}

// engagementColumn is the engagements sheet's column of a field the domain
// or the API names ("data.title", "title", "occurred_at").
func engagementColumn(field string) string {
	return strings.TrimPrefix(field, "data.")
}

// eventColumn is the events sheet's column of a field the domain or the
// API names ("data.signed_on", "data.target_id", "type").
func eventColumn(field string) string {
	return column(strings.TrimPrefix(field, "data."))
}

// ParseTime reads occurred_at as the API does: RFC 3339, a date
// YYYY-MM-DD meaning midnight UTC, or YYYY-MM / YYYY when the record knows
// no more (their first instant).
func ParseTime(s string) (time.Time, error) {
	t, _, err := ParseOccurred(s)
	return t, err
}

// ParseOccurred is ParseTime with the precision of a partial date
// (domain.PrecisionYear, PrecisionMonth; "" otherwise).
func ParseOccurred(s string) (time.Time, string, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), "", nil
	}
	if t, precision, err := domain.ParsePartialDate(s); err == nil {
		return t, precision, nil
	}
	return time.Time{}, "", errors.New("must be an RFC 3339 time, a date YYYY-MM-DD, or YYYY-MM or YYYY when no more is known")
}
