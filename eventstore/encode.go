package eventstore

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// encodeOptions make jsontext write a CloudEvent byte for byte as
// encoding/json's json.Marshal does, which is how every stored event was
// written and what the hash chain covers (they are the jsontext part of
// json/v1's DefaultOptionsV1):
//   - <, > and & escaped as \u003c, \u003e and \u0026, U+2028 and U+2029
//     as \u2028 and \u2029;
//   - invalid UTF-8 in strings written as U+FFFD, and kept as it is in data;
//   - the data compacted but otherwise verbatim: its escapes, numbers,
//     member order and any repeated names kept.
var encodeOptions = jsonv2.JoinOptions(
	jsontext.EscapeForHTML(true),
	jsontext.EscapeForJS(true),
	jsontext.AllowInvalidUTF8(true),
	jsontext.PreserveRawStrings(true),
	jsontext.AllowDuplicateNames(true),
)

// writer is a jsontext.Encoder appending to a bytes.Buffer (jsontext writes
// straight into one), pooled: Encode runs once per appended event and per
// event re-encoded for its hash.
type writer struct {
	buf     bytes.Buffer
	enc     jsontext.Encoder
	err     error // the first error writing the event
	scratch [len(`""`) + len(time.RFC3339Nano)]byte
}

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
)

// marshalCloudEvent is json.Marshal(ce) written member by member by a
// jsontext.Encoder: the same bytes without json.Marshal's reflection, which
// was most of what Encode cost. The members are CloudEvent's, in its order.
func marshalCloudEvent(ce *CloudEvent) ([]byte, error) {
	w := writers.Get().(*writer)
	defer w.release()
	w.buf = *bytes.NewBuffer(make([]byte, 0, 512+len(ce.Data)))
	w.enc.Reset(&w.buf, encodeOptions)
	w.err = w.enc.WriteToken(jsontext.BeginObject)
	w.str(nameSpecVersion, ce.SpecVersion)
	w.str(nameID, ce.ID)
	w.str(nameSource, ce.Source)
	w.str(nameType, ce.Type)
	w.str(nameSubject, ce.Subject)
	w.time(nameTime, ce.Time)
	w.str(nameDataContentType, ce.DataContentType)
	if ce.DataSchema != "" {
		w.str(nameDataSchema, ce.DataSchema)
	}
	if ce.Data == nil {
		w.member(nameData, jsontext.Null, nil) // json.RawMessage's nil
	} else {
		w.member(nameData, jsontext.Token{}, jsontext.Value(ce.Data))
	}
	w.time(nameRecordedAt, ce.RecordedAt)
	w.str(nameActor, ce.Actor)
	w.str(nameKind, ce.Kind)
	w.member(nameVersion, jsontext.Int(int64(ce.Version)), nil)
	if ce.CorrelationID != "" {
		w.str(nameCorrelationID, ce.CorrelationID)
	}
	if ce.CausationID != "" {
		w.str(nameCausationID, ce.CausationID)
	}
	if w.err == nil {
		w.err = w.enc.WriteToken(jsontext.EndObject)
	}
	if w.err != nil {
		return nil, fmt.Errorf("encode CloudEvent: %w", w.err)
	}
	b := w.buf.Bytes()
	return b[:len(b)-1], nil // the Encoder ends each top-level value with a newline
}

// member writes one member: name, then v if it is not nil, else tok. After
// an error it does nothing.
func (w *writer) member(name jsontext.Value, tok jsontext.Token, v jsontext.Value) {
	if w.err == nil {
		w.err = w.enc.WriteValue(name)
	}
	if w.err != nil {
		return
	}
	if v != nil {
		w.err = w.enc.WriteValue(v)
	} else {
		w.err = w.enc.WriteToken(tok)
	}
}

// str writes a member whose value is a string.
func (w *writer) str(name jsontext.Value, s string) {
	w.member(name, jsontext.String(s), nil)
}

// time writes a member whose value is a time, as time.Time's MarshalJSON
// writes it, or records its error for a time RFC 3339 cannot hold (a year
// outside 0000–9999).
func (w *writer) time(name jsontext.Value, t time.Time) {
	if w.err != nil {
		return
	}
	b, err := t.AppendText(append(w.scratch[:0], '"'))
	if err != nil {
		w.err = err
		return
	}
	w.member(name, jsontext.Token{}, append(b, '"'))
}

// release returns w to the pool, holding on to no event.
func (w *writer) release() {
	w.buf, w.err = bytes.Buffer{}, nil
	w.enc.Reset(&w.buf)
	writers.Put(w)
}
