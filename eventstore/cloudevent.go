package eventstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/iom-who/engagements/domain"
)

// Source is the CloudEvents source attribute of every event.
const Source = "/engagements"

// CloudEvent is the structured-mode CloudEvents 1.0 document stored on the
// stream and delivered to subscribers.
type CloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	// DataSchema names the data's shape and version, an absolute URI (see
	// domain.DataSchema); events stored by earlier releases have the
	// relative /schemas/<type>/v<N>, and the earliest none.
	DataSchema    string          `json:"dataschema,omitempty"`
	Data          json.RawMessage `json:"data"`
	RecordedAt    time.Time       `json:"recordedat"`
	Actor         string          `json:"actor"`
	Kind          string          `json:"kind"`
	Version       int             `json:"version"`
	CorrelationID string          `json:"correlationid,omitempty"`
	CausationID   string          `json:"causationid,omitempty"`
	// TimePrecision is the extension timeprecision: "year" or "month" when
	// time is only the first instant of the year or month the record
	// knows; absent when time is as precise as it reads.
	TimePrecision string `json:"timeprecision,omitempty"`
	// ActorIssuer and ActorSubject are the extensions actorissuer and
	// actorsubject: for an actor signed in through the directory (OpenID
	// Connect), the issuer that vouched for them and their subject there;
	// absent for a token's events and for events of earlier releases.
	ActorIssuer  string `json:"actorissuer,omitempty"`
	ActorSubject string `json:"actorsubject,omitempty"`
}

// dataSchemas holds each event type's dataschema under one public URL,
// built once so that encoding an event does not build a string.
type dataSchemas map[domain.EventType]string

// newDataSchemas builds the dataschemas under base ("": URNs), a public
// URL domain.CheckPublicURL accepts.
func newDataSchemas(base string) (dataSchemas, error) {
	if base != "" {
		if err := domain.CheckPublicURL(base); err != nil {
			return nil, err
		}
	}
	m := make(dataSchemas, len(domain.EventTypes))
	for _, t := range domain.EventTypes {
		m[t] = domain.DataSchema(base, t)
	}
	return m, nil
}

// urnSchemas are the dataschemas of a service with no public URL.
var urnSchemas, _ = newDataSchemas("")

// Encode turns an event into its CloudEvent JSON, with the dataschema of a
// service that has no public URL (urn:engagements:schema:<type>:v<N>); the
// store encodes with its Config.PublicURL.
func Encode(ev domain.Event) ([]byte, error) {
	return encode(ev, urnSchemas)
}

// encode is Encode with the dataschemas under one public URL.
func encode(ev domain.Event, schemas dataSchemas) ([]byte, error) {
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	ce := CloudEvent{
		SpecVersion:     "1.0",
		ID:              ev.ID,
		Source:          Source,
		Type:            string(ev.Type),
		Subject:         ev.EngagementID,
		Time:            ev.OccurredAt.UTC(),
		DataContentType: "application/json",
		DataSchema:      schemas[ev.Type],
		Data:            data,
		RecordedAt:      ev.RecordedAt.UTC(),
		Actor:           ev.Actor,
		Kind:            string(ev.Kind),
		Version:         ev.Version,
		CorrelationID:   ev.CorrelationID,
		CausationID:     ev.CausationID,
		TimePrecision:   ev.TimePrecision,
		ActorIssuer:     ev.ActorIssuer,
		ActorSubject:    ev.ActorSubject,
	}
	return marshalCloudEvent(&ce)
}

// ErrUndecodable marks a stream message that is not a valid event envelope.
var ErrUndecodable = errors.New("undecodable event")

// Decode reads a stored message back into an event and checks that the
// envelope agrees with the subject it was stored under. It does not check the
// data against the domain rules; folding does that.
func Decode(subject string, payload []byte, seq uint64) (domain.Event, error) {
	fail := func(format string, args ...any) (domain.Event, error) {
		return domain.Event{}, fmt.Errorf("%w at sequence %d: %s", ErrUndecodable, seq, fmt.Sprintf(format, args...))
	}
	var ce CloudEvent
	if err := jsonv2.Unmarshal(payload, &ce, jsonv2.RejectUnknownMembers(true)); err != nil {
		return fail("%v", err)
	}
	if ce.SpecVersion != "1.0" || ce.Source != Source || ce.DataContentType != "application/json" {
		return fail("not an engagement CloudEvent (specversion %q, source %q)", ce.SpecVersion, ce.Source)
	}
	t, err := domain.ParseEventType(ce.Type)
	if err != nil {
		return fail("%v", err)
	}
	// Encode writes times in UTC, where RFC 3339 has room for years 0000 to
	// 9999 only: an offset can push a readable time out of them, and such an
	// event could be decoded but never encoded again.
	for _, at := range []time.Time{ce.Time, ce.RecordedAt} {
		if y := at.UTC().Year(); y < 0 || y > 9999 {
			return fail("time %s lies outside the years 0000 to 9999 in UTC", at.Format(time.RFC3339Nano))
		}
	}
	// Rebuilding the subject checks the kind and the engagement id as well:
	// a message published straight to the stream may agree with itself and
	// still name an unknown kind or a non-canonical id.
	kind := domain.Kind(ce.Kind)
	want, err := Subject(kind, ce.Subject, t)
	if err != nil {
		return fail("%v", err)
	}
	if want != subject {
		return fail("subject %q does not match the envelope (%s %s %s)", subject, ce.Kind, ce.Subject, ce.Type)
	}
	if err := domain.CheckID(ce.ID); err != nil {
		return fail("event id: %v", err)
	}
	// Events stored before dataschema existed are version 1. Every form a
	// release has stored is read: the URN, an absolute URL under any public
	// URL, and the relative path of earlier releases (their bytes are kept:
	// the hash chain covers them).
	version := 1
	if ce.DataSchema != "" {
		st, v, err := domain.ParseDataSchema(ce.DataSchema)
		if err != nil {
			return fail("%v", err)
		}
		if st != t {
			return fail("dataschema %q does not match type %s", ce.DataSchema, t)
		}
		version = v
	}
	data, err := domain.Upcast(t, version, ce.Data)
	if err != nil {
		return fail("%v", err)
	}
	return domain.Event{
		ID:            ce.ID,
		Type:          t,
		EngagementID:  ce.Subject,
		Kind:          kind,
		Version:       ce.Version,
		Sequence:      seq,
		OccurredAt:    ce.Time,
		RecordedAt:    ce.RecordedAt,
		Actor:         ce.Actor,
		CorrelationID: ce.CorrelationID,
		CausationID:   ce.CausationID,
		TimePrecision: ce.TimePrecision,
		ActorIssuer:   ce.ActorIssuer,
		ActorSubject:  ce.ActorSubject,
		Data:          data,
	}, nil
}
