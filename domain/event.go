package domain

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// EventType is "<prefix>.<verb>", where the prefix is "engagement" or a kind.
type EventType string

// Every event type of the contract.
const (
	EngagementRecorded  EventType = "engagement.recorded"
	EngagementAmended   EventType = "engagement.amended"
	EngagementLinked    EventType = "engagement.linked"
	EngagementNoted     EventType = "engagement.noted"
	EngagementCorrected EventType = "engagement.corrected"

	EngagementActionAssigned     EventType = "engagement.action_assigned"
	EngagementActionCompleted    EventType = "engagement.action_completed"
	EngagementActionCancelled    EventType = "engagement.action_cancelled"
	EngagementFocalPointAssigned EventType = "engagement.focal_point_assigned"
	EngagementFocalPointReleased EventType = "engagement.focal_point_released"

	AgreementSigned     EventType = "agreement.signed"
	AgreementRenewed    EventType = "agreement.renewed"
	AgreementTerminated EventType = "agreement.terminated"

	PolicyContributed EventType = "policy.contributed"
	PolicyAdopted     EventType = "policy.adopted"
	PolicyCommitted   EventType = "policy.committed"

	InitiativeJoined      EventType = "initiative.joined"
	InitiativeRoleChanged EventType = "initiative.role_changed"
	InitiativeLeft        EventType = "initiative.left"

	MeetingScheduled EventType = "meeting.scheduled"
	MeetingAttended  EventType = "meeting.attended"
	MeetingConcluded EventType = "meeting.concluded"

	EngagementDocumentAttached EventType = "engagement.document_attached"
	// Reminders: recorded by the service itself (actor SystemActor), never
	// by a client. See reminder.go.
	AgreementExpiring       EventType = "agreement.expiring"
	AgreementExpired        EventType = "agreement.expired"
	EngagementActionOverdue EventType = "engagement.action_overdue"
	MeetingUpcoming         EventType = "meeting.upcoming"
	// EngagementPersonalDataErased records that a data subject's key was
	// destroyed (POST /v1/people/{id}/erase); it holds no personal data.
	EngagementPersonalDataErased EventType = "engagement.personal_data_erased"
)

// EventTypes lists every event type.
var EventTypes = []EventType{
	EngagementRecorded, EngagementAmended, EngagementLinked, EngagementNoted, EngagementCorrected,
	AgreementSigned, AgreementRenewed, AgreementTerminated,
	PolicyContributed, PolicyAdopted, PolicyCommitted,
	InitiativeJoined, InitiativeRoleChanged, InitiativeLeft,
	MeetingScheduled, MeetingAttended, MeetingConcluded,
	// Added after the contract's first seventeen: new types go at the end,
	// since a type's index here is stored in checkpoints (packed event
	// references, the timeline, which has room for 32 types).
	EngagementActionAssigned, EngagementActionCompleted, EngagementActionCancelled,
	EngagementFocalPointAssigned, EngagementFocalPointReleased,
	EngagementDocumentAttached,
	AgreementExpiring, AgreementExpired, EngagementActionOverdue, MeetingUpcoming,
	EngagementPersonalDataErased,
}

// ParseEventType checks s against the allow-list. Anything else, including
// strings with subject wildcards or whitespace, is ErrUnknownEventType.
func ParseEventType(s string) (EventType, error) {
	for _, t := range EventTypes {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownEventType, truncate(s, 64))
}

// Prefix is the part before the dot: "engagement" or a kind.
func (t EventType) Prefix() string {
	p, _, _ := strings.Cut(string(t), ".")
	return p
}

// Verb is the part after the dot; it is unique across all types.
func (t EventType) Verb() string {
	_, v, _ := strings.Cut(string(t), ".")
	return v
}

// AppliesTo reports whether events of type t may happen to engagements of kind k.
func (t EventType) AppliesTo(k Kind) bool {
	p := t.Prefix()
	return p == "engagement" || p == string(k)
}

// Event is one fact about one engagement, as stored and as folded.
type Event struct {
	// ID is the event's UUID.
	ID string `json:"id"`
	// Type is the event type.
	Type EventType `json:"type"`
	// EngagementID is the engagement the event belongs to.
	EngagementID string `json:"engagement_id"`
	// Kind is the engagement's kind.
	Kind Kind `json:"kind"`
	// Version is the 1-based position of the event within its engagement.
	Version int `json:"version"`
	// Sequence is the stream sequence; zero until stored.
	Sequence uint64 `json:"sequence"`
	// OccurredAt is when it happened in the world; may be decades back.
	OccurredAt time.Time `json:"occurred_at"`
	// TimePrecision says how much of OccurredAt the record knows:
	// PrecisionYear ("1999") or PrecisionMonth ("January 2019"), when
	// OccurredAt is the first instant of that year or month; "" when
	// OccurredAt is as precise as it reads (an instant, or a day at
	// midnight UTC); PrecisionNone when the record has no date at all
	// (OccurredAt is then when it was entered).
	TimePrecision string `json:"time_precision,omitempty"`
	// RecordedAt is when the system stored it.
	RecordedAt time.Time `json:"recorded_at"`
	// Actor is who recorded it: a token's name, or the verified e-mail
	// (else the subject) of a person signed in through the directory.
	Actor string `json:"actor"`
	// ActorIssuer and ActorSubject, for a person signed in through the
	// directory (OpenID Connect), are the issuer that vouched for them and
	// their subject there; empty otherwise.
	ActorIssuer  string `json:"actor_issuer,omitempty"`
	ActorSubject string `json:"actor_subject,omitempty"`
	// CorrelationID and CausationID tie events to requests and to each other.
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	// Data is the type-specific payload, a JSON object.
	Data json.RawMessage `json:"data"`
	// Hash chains the event to the engagement's previous one:
	// SHA-256(prev_hash ‖ subject ‖ payload), lower-case hex. PrevHash is
	// empty for an engagement's first event.
	Hash     string `json:"hash"`
	PrevHash string `json:"prev_hash"`
	// CorrectedBy lists the ids of engagement.corrected events that correct
	// this one (filled in by projections; not stored with the event).
	CorrectedBy []string `json:"corrected_by,omitempty"`
	// Personal lists the event's personal data fields as readers get them
	// (opened through the keyring, or erased); not stored with the event.
	Personal []PersonalField `json:"personal,omitempty"`
	// IdempotencyKey, when set, makes the store keep only the first of
	// several appends with the same key (within its duplicate window).
	IdempotencyKey string `json:"-"`
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
