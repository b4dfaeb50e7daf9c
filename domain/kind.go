package domain

// Kind is what sort of engagement something is.
type Kind string

// The engagement kinds of the contract.
const (
	KindAgreement  Kind = "agreement"
	KindPolicy     Kind = "policy"
	KindInitiative Kind = "initiative"
	KindMeeting    Kind = "meeting"
)

// Kinds lists every kind, in the contract's order.
var Kinds = []Kind{KindAgreement, KindPolicy, KindInitiative, KindMeeting}

// Valid reports whether k is one of the contract's kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindAgreement, KindPolicy, KindInitiative, KindMeeting:
		return true
	}
	return false
}

// Status is an engagement's derived state.
type Status string

// Statuses of every kind. StatusRecorded is where initiatives and meetings
// start before their first joined or scheduled event.
const (
	StatusDraft      Status = "draft"
	StatusActive     Status = "active"
	StatusTerminated Status = "terminated"
	StatusExpired    Status = "expired"

	StatusInProgress   Status = "in_progress"
	StatusAdopted      Status = "adopted"
	StatusImplementing Status = "implementing"

	StatusRecorded Status = "recorded"
	StatusMember   Status = "member"
	StatusLeft     Status = "left"

	StatusScheduled Status = "scheduled"
	StatusAttended  Status = "attended"
	StatusConcluded Status = "concluded"
)

// Statuses returns the statuses an engagement of kind k can have.
func (k Kind) Statuses() []Status {
	switch k {
	case KindAgreement:
		return []Status{StatusDraft, StatusActive, StatusTerminated, StatusExpired}
	case KindPolicy:
		return []Status{StatusInProgress, StatusAdopted, StatusImplementing}
	case KindInitiative:
		return []Status{StatusRecorded, StatusMember, StatusLeft}
	case KindMeeting:
		return []Status{StatusRecorded, StatusScheduled, StatusAttended, StatusConcluded}
	}
	return nil
}

// initialStatus is the status right after engagement.recorded.
func (k Kind) initialStatus() Status {
	switch k {
	case KindAgreement:
		return StatusDraft
	case KindPolicy:
		return StatusInProgress
	}
	return StatusRecorded
}

// ValidStatus reports whether s is a status of any kind.
func ValidStatus(s Status) bool {
	for _, k := range Kinds {
		for _, ks := range k.Statuses() {
			if ks == s {
				return true
			}
		}
	}
	return false
}

// Instruments a policy engagement can contribute to.
var Instruments = []string{"resolution", "framework", "report", "action_plan", "compact"}

// Relations between linked engagements.
var Relations = []string{"references", "implements", "part_of", "supersedes"}

// AttendanceRoles are the roles of meeting.attended.
var AttendanceRoles = []string{"participant", "speaker", "organiser"}
