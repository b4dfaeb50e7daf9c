package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// encodeOptions make jsontext write a CloudEvent byte for byte as
// encoding/json's json.Marshal does, which is how every stored event was
// written and what the hash chain covers (json/v1's DefaultOptionsV1 has
// them too):
//   - <, > and & escaped as \u003c, \u003e and \u0026, U+2028 and U+2029
//     as \u2028 and \u2029;
//   - invalid UTF-8 refused (json.Marshal writes what has it, see
//     marshalCloudEvent);
//   - the data compacted but otherwise verbatim: its escapes, numbers,
//     member order and any repeated names kept.
var encodeOptions = jsonv2.JoinOptions(
	jsontext.EscapeForHTML(true),
	jsontext.EscapeForJS(true),
	jsontext.PreserveRawStrings(true),
	jsontext.AllowDuplicateNames(true),
)

// writer is a jsontext.Encoder writing a stream of CloudEvents, one per
// line, into a bytes.Buffer (jsontext appends straight into one), pooled:
// Encode runs once per appended event. Each event is copied out of the
// stream; the stream starts again when it has grown past maxStream or an
// event could not be written.
type writer struct {
	buf   bytes.Buffer
	enc   jsontext.Encoder
	ready bool // enc is between two events on buf
}

// maxStream is how much of its stream a pooled writer keeps.
const maxStream = 16 << 10

var writers = sync.Pool{New: func() any { return new(writer) }}

// The members' names, quoted: jsontext copies a quoted name it is given as
// a Value where it would quote a Token's.
var (
	nameSpecVersion     = jsontext.Value(`"specversion"`)
	nameID              = jsontext.Value(`"id"`)
	nameSource          = jsontext.Value(`"source"`)
	nameType            = jsontext.Value(`"type"`)
	nameSubject         = jsontext.Value(`"subject"`)
	nameTime            = jsontext.Value(`"time"`)
	nameDataContentType = jsontext.Value(`"datacontenttype"`)
	nameDataSchema      = jsontext.Value(`"dataschema"`)
	nameData            = jsontext.Value(`"data"`)
	nameRecordedAt      = jsontext.Value(`"recordedat"`)
	nameActor           = jsontext.Value(`"actor"`)
	nameKind            = jsontext.Value(`"kind"`)
	nameVersion         = jsontext.Value(`"version"`)
	nameCorrelationID   = jsontext.Value(`"correlationid"`)
	nameCausationID     = jsontext.Value(`"causationid"`)
	nameTimePrecision   = jsontext.Value(`"timeprecision"`)
	nameActorIssuer     = jsontext.Value(`"actorissuer"`)
	nameActorSubject    = jsontext.Value(`"actorsubject"`)
)

// marshalCloudEvent is json.Marshal(ce): written by writeCloudEvent, or,
// for what jsontext refuses, by encoding/json, which refuses it too or
// writes it as it always did: times RFC 3339 cannot hold, data that is not
// one JSON value, and invalid UTF-8, which json.Marshal writes as the
// escape \ufffd in a string and as it is in data, and which no jsontext
// option writes so. No event from the API or the stream has any of these
// (ids are canonical, types allow-listed, headers visible ASCII, bodies
// checked UTF-8, Decode strict).
func marshalCloudEvent(ce *CloudEvent) ([]byte, error) {
	if b, err := writeCloudEvent(ce); err == nil {
		return b, nil
	}
	b, err := json.Marshal(*ce) // a copy: ce itself stays on its caller's stack
	if err != nil {
		return nil, fmt.Errorf("encode CloudEvent: %w", err)
	}
	return b, nil
}

// writeCloudEvent is json.Marshal(ce) written member by member by a
// jsontext.Encoder, for a CloudEvent jsontext accepts: the same bytes
// without json.Marshal's reflection, which was most of what Encode cost.
// The members are CloudEvent's, in its order. Each step passes the first
// error on (kept in a local variable rather than in a struct: a pointer
// store would cost a GC write barrier per member).
func writeCloudEvent(ce *CloudEvent) ([]byte, error) {
	w := writers.Get().(*writer)
	if !w.ready || w.buf.Len() > maxStream {
		if w.buf.Cap() > 4*maxStream {
			w.buf = bytes.Buffer{} // after a large event: keep no large buffer
		}
		w.buf.Reset()
		w.enc.Reset(&w.buf, encodeOptions)
	}
	start := w.buf.Len()
	w.ready = false
	err := w.enc.WriteToken(jsontext.BeginObject)
	err = w.str(err, nameSpecVersion, ce.SpecVersion)
	err = w.str(err, nameID, ce.ID)
	err = w.str(err, nameSource, ce.Source)
	err = w.str(err, nameType, ce.Type)
	err = w.str(err, nameSubject, ce.Subject)
	err = w.time(err, nameTime, ce.Time)
	err = w.str(err, nameDataContentType, ce.DataContentType)
	if ce.DataSchema != "" {
		err = w.str(err, nameDataSchema, ce.DataSchema)
	}
	if ce.Data == nil {
		err = w.member(err, nameData, jsontext.Null, nil) // json.RawMessage's nil
	} else {
		err = w.member(err, nameData, jsontext.Token{}, jsontext.Value(ce.Data))
	}
	err = w.time(err, nameRecordedAt, ce.RecordedAt)
	err = w.str(err, nameActor, ce.Actor)
	err = w.str(err, nameKind, ce.Kind)
	err = w.member(err, nameVersion, jsontext.Int(int64(ce.Version)), nil)
	if ce.CorrelationID != "" {
		err = w.str(err, nameCorrelationID, ce.CorrelationID)
	}
	if ce.CausationID != "" {
		err = w.str(err, nameCausationID, ce.CausationID)
	}
	if ce.TimePrecision != "" {
		err = w.str(err, nameTimePrecision, ce.TimePrecision)
	}
	if ce.ActorIssuer != "" {
		err = w.str(err, nameActorIssuer, ce.ActorIssuer)
	}
	if ce.ActorSubject != "" {
		err = w.str(err, nameActorSubject, ce.ActorSubject)
	}
	if err == nil {
		err = w.enc.WriteToken(jsontext.EndObject)
	}
	if err != nil {
		writers.Put(w)
		return nil, err
	}
	b := w.buf.Bytes()[start:]
	b = bytes.Clone(b[:len(b)-1]) // the Encoder ends each event with a newline
	w.ready = true
	writers.Put(w)
	return b, nil
}

// member writes one member, name then v if it is not nil, else tok, unless
// err (an earlier step's) is not nil; it returns the first error.
func (w *writer) member(err error, name jsontext.Value, tok jsontext.Token, v jsontext.Value) error {
	if err != nil {
		return err
	}
	if err := w.enc.WriteValue(name); err != nil {
		return err
	}
	if v != nil {
		return w.enc.WriteValue(v)
	}
	return w.enc.WriteToken(tok)
}

// str writes a member whose value is a string.
func (w *writer) str(err error, name jsontext.Value, s string) error {
	return w.member(err, name, jsontext.String(s), nil)
}

// time writes a member whose value is a time, as time.Time's MarshalJSON
// writes it, or returns its error for a time RFC 3339 cannot hold (a year
// outside 0000–9999).
func (w *writer) time(err error, name jsontext.Value, t time.Time) error {
	if err != nil {
		return err
	}
	if err := w.enc.WriteValue(name); err != nil {
		return err
	}
	// Written in the Encoder's own buffer, the value is not copied again.
	b, err := t.AppendText(append(w.enc.AvailableBuffer(), '"'))
	if err != nil {
		return err
	}
	return w.enc.WriteValue(append(b, '"'))
}
