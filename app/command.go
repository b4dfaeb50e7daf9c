package app

import (
	"encoding/json"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// Command asks for one event to be appended.
type Command struct {
	// EngagementID is empty to record a new engagement.
	EngagementID string
	Type         domain.EventType
	// OccurredAt is when it happened; zero means now. TimePrecision is
	// domain.PrecisionYear or PrecisionMonth when the record knows only the
	// year or month (OccurredAt is then its first instant).
	OccurredAt    time.Time
	TimePrecision string
	Data          json.RawMessage
	Actor         string
	// ActorIssuer and ActorSubject name a directory person's identity at
	// their OpenID Provider (see domain.Event); empty for a token.
	ActorIssuer, ActorSubject string
	// IfMatch, when positive, is the version the caller last saw; the append
	// fails with ErrPreconditionFailed unless it is still current.
	IfMatch        int
	IdempotencyKey string
	CorrelationID  string
	CausationID    string
	// withBytes is set by Attach, which stored the bytes an upload type's
	// event describes; Execute refuses such a type without it.
	withBytes bool
	// erasing is set by Erase, which destroyed the key the event records
	// the erasure of; Execute refuses the type without it.
	erasing bool
}

// Result is what an append produced. It is the projection's type, since the
// projection remembers it for each idempotency key.
type Result = projections.Result

// scopedKey is the message id an idempotency key is stored under, "" without
// one. Keys are the client's: scoped to who sent them and to what they
// write, so two clients' keys never answer for each other.
func scopedKey(cmd Command) string {
	if cmd.IdempotencyKey == "" {
		return ""
	}
	scope := cmd.EngagementID
	if scope == "" {
		scope = "new"
	}
	return cmd.Actor + ":" + scope + ":" + cmd.IdempotencyKey
}
