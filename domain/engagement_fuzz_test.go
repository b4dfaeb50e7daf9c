package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzDecideApply turns the fuzzer's bytes into a history of events for one
// engagement (see fuzzScript for the encoding) and folds it event by event.
// Whatever the history, the state must keep its invariants:
//   - Decide and Apply never panic, and agree on what they accept;
//   - a refused event leaves the state deep-equal to what it was, and is
//     refused with one of the domain's error kinds;
//   - Version counts the events accepted, and Status (and StatusAt, on any
//     day) is always one of the kind's statuses;
//   - the normalised events Decide returns fold again to the same state,
//     which is what readers do with the stored stream (Replay), and their
//     data decodes strictly into the type's struct (Spec.Decode).
func FuzzDecideApply(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		r := &fuzzScript{b: script, engagement: fuzzEngagement}
		e := &Engagement{}
		var stored []Event
		for step := 0; step < fuzzMaxSteps && len(r.b) > 0; step++ {
			ev := r.event(e, step)
			before := e.Clone()
			if !reflect.DeepEqual(before, e) {
				t.Fatalf("step %d: Clone differs from the engagement it copies", step)
			}
			decided, decideErr := e.Decide(ev)
			if !reflect.DeepEqual(before, e) {
				t.Fatalf("step %d: Decide(%s) changed the state", step, ev.Type)
			}
			err := e.Apply(ev)
			if (err == nil) != (decideErr == nil) {
				t.Fatalf("step %d: Decide(%s) = %v but Apply = %v", step, ev.Type, decideErr, err)
			}
			if err != nil {
				if !reflect.DeepEqual(before, e) {
					t.Fatalf("step %d: refused %s %s (%v) changed the state:\nbefore %+v\nafter  %+v",
						step, ev.Type, ev.Data, err, before, e)
				}
				if !domainError(err) {
					t.Fatalf("step %d: %s %s refused with %T %v, not a domain error", step, ev.Type, ev.Data, err, err)
				}
				continue
			}
			decodesStrictly(t, decided) // what Decide stores, readers decode into the type's struct
			stored = append(stored, decided)
			r.ids = append(r.ids, ev.ID)
			if e.v.Version != len(stored) {
				t.Fatalf("step %d: Version = %d after %d accepted events", step, e.v.Version, len(stored))
			}
			if e.v.Hash != ev.Hash || e.v.Sequence != ev.Sequence {
				t.Fatalf("step %d: head is (%q, %d), want the last event's (%q, %d)", step, e.v.Hash, e.v.Sequence, ev.Hash, ev.Sequence)
			}
			checkStatus(t, e, fmt.Sprintf("step %d (%s)", step, ev.Type))
		}
		if len(stored) == 0 {
			return
		}
		replayed, ok := Replay(stored, Window{})
		if !ok || !reflect.DeepEqual(replayed, e) {
			t.Fatalf("the stored events fold to another state:\nlive     %+v\nreplayed %+v", e, replayed)
		}
		for _, at := range fuzzTimes {
			w, _ := Replay(stored, Window{AsOf: at, KnownAt: at.Add(time.Duration(len(stored)) * time.Minute)})
			checkStatus(t, w, "replay as of "+at.Format(time.RFC3339))
		}
	})
}

// checkStatus asserts that e's status, now and on each of fuzzTimes, is one
// of its kind's statuses.
func checkStatus(t *testing.T, e *Engagement, where string) {
	t.Helper()
	if !e.Exists() {
		if e.v.Status != "" {
			t.Fatalf("%s: an engagement that does not exist has status %q", where, e.v.Status)
		}
		return
	}
	statuses := e.v.Kind.Statuses()
	if !slices.Contains(statuses, e.v.Status) {
		t.Fatalf("%s: status %q is not one of %s's %v", where, e.v.Status, e.v.Kind, statuses)
	}
	for _, at := range slices.Concat(fuzzTimes, []time.Time{time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)}) {
		if s := e.StatusAt(at); !slices.Contains(statuses, s) {
			t.Fatalf("%s: StatusAt(%s) = %q is not one of %s's %v", where, at, s, e.v.Kind, statuses)
		}
	}
}

// domainError reports whether err is one of the kinds Decide documents.
func domainError(err error) bool {
	var malformed *MalformedError
	var invalid *ValidationError
	var transition *TransitionError
	return errors.As(err, &malformed) || errors.As(err, &invalid) || errors.As(err, &transition) ||
		errors.Is(err, ErrUnknownEventType) || errors.Is(err, ErrNotFound)
}

const fuzzMaxSteps = 64

// fuzzEngagement and fuzzOther are the engagement under test and another one
// (a link target, or an event that names the wrong engagement).
const (
	fuzzEngagement = "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a01"
	fuzzOther      = "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a02"
)

// fuzzRecordedAt is when the first event was recorded; each step is a minute later.
var fuzzRecordedAt = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// fuzzTimes are the occurred_at values a script can pick; an index past the
// end means zero (missing).
var fuzzTimes = []time.Time{
	time.Date(2019, 3, 14, 9, 0, 0, 0, time.UTC),
	time.Date(2020, 1, 15, 0, 0, 0, 0, time.UTC),
	time.Date(2023, 6, 1, 0, 0, 0, 0, time.FixedZone("UTC+2", 2*3600)),
	time.Date(2024, 12, 31, 23, 59, 0, 0, time.UTC),
	time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), // after recorded_at: refused as future
	time.Date(1850, 1, 1, 0, 0, 0, 0, time.UTC), // before MinYear
	time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
}

// fuzzFields is every field name of every schema, plus one no schema has.
var fuzzFields = []string{
	"adopted_by", "commitment", "contribution", "corrects", "delegation", "description", "expires_on",
	"fields", "instrument", "kind", "level", "location", "note", "outcome", "parties", "reason",
	"relation", "renewed_on", "role", "signed_on", "starts_on", "tags", "target_id", "title", "bogus",
}

// fuzzValues are the values a script can give a field, by field; an index
// past the end picks from fuzzWrongTypes.
var fuzzValues = map[string][]any{
	"text":        {"IOM", "  WHO regional office  ", "", "line one\nline two", "bell\a", strings.Repeat("x", MaxTitle+1), "Genève", "\uFFFD"},
	"list":        {[]string{"IOM"}, []string{"IOM", "WHO"}, []string{}, []string{"IOM", "iom"}, []string{" "}, make([]string, MaxListEntries+1)},
	"date":        {"2020-01-15", "2023-01-15", "2030-06-30", "2019-01-01", "1899-12-31", "2200-01-01", "2020-02-30", "20200115", "2024-03-01"},
	"kind":        {"agreement", "policy", "initiative", "meeting", "treaty", "Agreement"},
	"instrument":  anys(append(slices.Clone(Instruments), "memo")),
	"relation":    anys(append(slices.Clone(Relations), "loves")),
	"role":        {"participant", "speaker", "organiser", "member", "chair", ""},
	"target_id":   {fuzzOther, fuzzEngagement, strings.ToUpper(fuzzOther), "not-a-uuid"},
	"description": {"A long description.\n\tIndented.", "", " "},
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// fuzzWrongTypes are values of the wrong JSON type for any field.
var fuzzWrongTypes = []any{42, nil, true, map[string]any{}, []any{1}, "null"}

// fuzzRawData are whole data documents that are not a plain object.
var fuzzRawData = []string{``, `null`, `[]`, `"x"`, `{"note":"a","note":"b"}`, `{`, `{} {}`, ` {"note":"padded"} `, `{"fields":null}`}

func fuzzCategory(field string) string {
	switch field {
	case "parties", "tags":
		return "list"
	case "signed_on", "renewed_on", "expires_on", "starts_on":
		return "date"
	case "kind", "instrument", "relation", "role", "target_id", "description":
		return field
	}
	return "text"
}

// fuzzScript reads a history from bytes; a script that runs out reads zeros.
// Each event is:
//
//	type     EventTypes[b % (len+1)], the last being an unknown type
//	flags    bit 0 wrong kind, 1 wrong engagement, 2 wrong version,
//	         3 wrong prev_hash, 4 reuse the previous event id,
//	         5 no recorded_at, 6 bad actor, 7 data from fuzzRawData
//	when     fuzzTimes[b], past the end: zero
//	data     count n (b % 6), then n (name, value) byte pairs; a value of
//	         "fields" is itself a count and pairs; a value of "corrects"
//	         picks an accepted event id, past the end an unknown one.
//	         With flag 7 instead one byte picks from fuzzRawData.
type fuzzScript struct {
	b          []byte
	engagement string
	ids        []string // ids of the events accepted so far
	lastID     string
}

func (r *fuzzScript) next() int {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return int(c)
}

func (r *fuzzScript) event(e *Engagement, step int) Event {
	types := len(EventTypes)
	typ := EventType("engagement.bogus")
	if i := r.next() % (types + 1); i < types {
		typ = EventTypes[i]
	}
	flags := r.next()
	ev := Event{
		ID:           fmt.Sprintf("0193a5b2-7c3d-7e4f-8a9b-%012x", step+1),
		Type:         typ,
		EngagementID: r.engagement,
		Kind:         e.v.Kind,
		Version:      e.v.Version + 1,
		Sequence:     uint64(step + 1),
		RecordedAt:   fuzzRecordedAt.Add(time.Duration(step) * time.Minute),
		Actor:        "fuzzer",
		Hash:         fmt.Sprintf("%064x", step+1),
		PrevHash:     e.v.Hash,
	}
	if flags&1 != 0 {
		ev.Kind = Kinds[(slices.Index(Kinds, e.v.Kind)+1)%len(Kinds)]
	}
	if flags&2 != 0 {
		ev.EngagementID = fuzzOther
	}
	if flags&4 != 0 {
		ev.Version += 2
	}
	if flags&8 != 0 {
		ev.PrevHash = "0" + e.v.Hash
	}
	if flags&16 != 0 && r.lastID != "" {
		ev.ID = r.lastID
	}
	if flags&32 != 0 {
		ev.RecordedAt = time.Time{}
	}
	if flags&64 != 0 {
		ev.Actor = " \x00"
	}
	if i := r.next(); i < len(fuzzTimes) {
		ev.OccurredAt = fuzzTimes[i]
	}
	if flags&128 != 0 {
		ev.Data = json.RawMessage(fuzzRawData[r.next()%len(fuzzRawData)])
	} else {
		ev.Data = r.object(0)
	}
	r.lastID = ev.ID
	return ev
}

// object writes a JSON object member by member, so a script can repeat a key.
func (r *fuzzScript) object(depth int) json.RawMessage {
	var buf bytes.Buffer
	buf.WriteByte('{')
	n := r.next() % 6
	for i := 0; i < n; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		name := fuzzFields[r.next()%len(fuzzFields)]
		key, _ := json.Marshal(name)
		buf.Write(key)
		buf.WriteByte(':')
		buf.Write(r.value(name, depth))
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

func (r *fuzzScript) value(name string, depth int) []byte {
	if name == "fields" && depth == 0 {
		return r.object(depth + 1)
	}
	i := r.next()
	var v any
	if name == "corrects" {
		if i < len(r.ids) {
			v = r.ids[i]
		} else {
			v = fuzzOther
		}
	} else if pool := fuzzValues[fuzzCategory(name)]; i < len(pool) {
		v = pool[i]
	} else {
		v = fuzzWrongTypes[(i-len(pool))%len(fuzzWrongTypes)]
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// fuzzStep is one event of a seed script, written the way fuzzScript reads it.
type fuzzStep struct {
	typ   EventType
	flags byte
	when  int // index into fuzzTimes
	data  []fuzzMember
	raw   int // with flag 128: index into fuzzRawData
}

// fuzzMember is one member of a seed's data: a field and the index of its value
// (for "fields", nested holds the members instead).
type fuzzMember struct {
	name   string
	value  int
	nested []fuzzMember
}

func member(name string, value int, nested ...fuzzMember) fuzzMember {
	return fuzzMember{name: name, value: value, nested: nested}
}

func encodeScript(steps ...fuzzStep) []byte {
	var b []byte
	var members func([]fuzzMember)
	members = func(ms []fuzzMember) {
		b = append(b, byte(len(ms)))
		for _, mb := range ms {
			b = append(b, byte(slices.Index(fuzzFields, mb.name)))
			if mb.name == "fields" {
				members(mb.nested)
			} else {
				b = append(b, byte(mb.value))
			}
		}
	}
	for _, s := range steps {
		b = append(b, byte(slices.Index(EventTypes, s.typ)), s.flags, byte(s.when))
		if s.flags&128 != 0 {
			b = append(b, byte(s.raw))
		} else {
			members(s.data)
		}
	}
	return b
}

// fuzzSeeds are histories worth starting from: each kind's lifecycle, a
// correction, and events that must be refused.
func fuzzSeeds() [][]byte {
	agreement := fuzzStep{typ: EngagementRecorded, data: []fuzzMember{member("kind", 0), member("title", 0), member("parties", 1)}}
	policy := fuzzStep{typ: EngagementRecorded, data: []fuzzMember{member("kind", 1), member("title", 0), member("parties", 0), member("instrument", 0)}}
	initiative := fuzzStep{typ: EngagementRecorded, data: []fuzzMember{member("kind", 2), member("title", 6), member("parties", 0), member("tags", 1)}}
	meeting := fuzzStep{typ: EngagementRecorded, when: 1, data: []fuzzMember{member("kind", 3), member("title", 0), member("parties", 0), member("level", 0), member("location", 6)}}
	return [][]byte{
		// agreement: signed with an expiry, renewed, terminated
		encodeScript(agreement,
			fuzzStep{typ: AgreementSigned, when: 1, data: []fuzzMember{member("signed_on", 0), member("expires_on", 2)}},
			fuzzStep{typ: AgreementRenewed, when: 2, data: []fuzzMember{member("renewed_on", 1)}},
			fuzzStep{typ: AgreementTerminated, when: 3, data: []fuzzMember{member("reason", 1)}}),
		// agreement signed, then the signing corrected, then a note
		encodeScript(agreement,
			fuzzStep{typ: AgreementSigned, when: 1, data: []fuzzMember{member("signed_on", 0), member("expires_on", 8)}},
			fuzzStep{typ: EngagementCorrected, when: 3, data: []fuzzMember{member("corrects", 1), member("reason", 0), member("fields", 0, member("expires_on", 2))}},
			fuzzStep{typ: EngagementNoted, when: 3, data: []fuzzMember{member("note", 0)}}),
		// policy: contributed, adopted, committed, linked
		encodeScript(policy,
			fuzzStep{typ: PolicyContributed, when: 1, data: []fuzzMember{member("contribution", 0), member("role", 3)}},
			fuzzStep{typ: PolicyAdopted, when: 2, data: []fuzzMember{member("adopted_by", 0)}},
			fuzzStep{typ: PolicyCommitted, when: 3, data: []fuzzMember{member("commitment", 1)}},
			fuzzStep{typ: EngagementLinked, when: 3, data: []fuzzMember{member("target_id", 0), member("relation", 1)}}),
		// initiative: joined, role changed, left, joined again
		encodeScript(initiative,
			fuzzStep{typ: InitiativeJoined, when: 1, data: []fuzzMember{member("role", 3)}},
			fuzzStep{typ: InitiativeRoleChanged, when: 2, data: []fuzzMember{member("role", 4)}},
			fuzzStep{typ: InitiativeLeft, when: 3, data: []fuzzMember{member("reason", 0)}},
			fuzzStep{typ: InitiativeJoined, when: 3, data: []fuzzMember{member("role", 3)}}),
		// meeting: scheduled, attended, concluded, then amending it is refused
		encodeScript(meeting,
			fuzzStep{typ: MeetingScheduled, when: 1, data: []fuzzMember{member("starts_on", 8)}},
			fuzzStep{typ: MeetingAttended, when: 3, data: []fuzzMember{member("role", 1), member("delegation", 0)}},
			fuzzStep{typ: MeetingConcluded, when: 3, data: []fuzzMember{member("outcome", 0)}},
			fuzzStep{typ: EngagementAmended, when: 3, data: []fuzzMember{member("title", 1)}}),
		// refused: wrong version, duplicate key, future, wrong kind's event
		encodeScript(agreement,
			fuzzStep{typ: EngagementNoted, flags: 4, when: 1, data: []fuzzMember{member("note", 0)}},
			fuzzStep{typ: EngagementNoted, flags: 128, when: 1, raw: 4},
			fuzzStep{typ: EngagementNoted, when: 4, data: []fuzzMember{member("note", 0)}},
			fuzzStep{typ: PolicyAdopted, when: 1, data: []fuzzMember{member("adopted_by", 0)}}),
	}
}

// TestFuzzSeedsMeanWhatTheySay keeps the seeds meaningful: each lifecycle
// seed is accepted in full, and the refusal seed only records.
func TestFuzzSeedsMeanWhatTheySay(t *testing.T) {
	want := []int{4, 4, 5, 5, 4, 1}
	for i, s := range fuzzSeeds() {
		r := &fuzzScript{b: s, engagement: fuzzEngagement}
		e := &Engagement{}
		for step := 0; len(r.b) > 0; step++ {
			ev := r.event(e, step)
			if err := e.Apply(ev); err == nil {
				r.ids = append(r.ids, ev.ID)
			} else {
				t.Logf("seed %d step %d: %s %s: %v", i, step, ev.Type, ev.Data, err)
			}
		}
		if e.v.Version != want[i] {
			t.Errorf("seed %d folds to version %d, want %d", i, e.v.Version, want[i])
		}
	}
}
