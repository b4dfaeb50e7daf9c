package webui

import (
	"html/template"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
)

// eventLabels name each event type on pages: as an entry of the timeline
// (past) and as a form to record one (action).
var eventLabels = map[domain.EventType]struct{ past, action string }{
	domain.EngagementRecorded:    {"Recorded", "Record an engagement"},
	domain.EngagementAmended:     {"Amended", "Amend details"},
	domain.EngagementLinked:      {"Linked", "Link to another engagement"},
	domain.EngagementNoted:       {"Note", "Add a note"},
	domain.EngagementCorrected:   {"Correction", "Correct this entry"},
	domain.AgreementSigned:       {"Signed", "Record signing"},
	domain.AgreementRenewed:      {"Renewed", "Record renewal"},
	domain.AgreementTerminated:   {"Terminated", "Record termination"},
	domain.PolicyContributed:     {"Contribution", "Record a contribution"},
	domain.PolicyAdopted:         {"Adopted", "Record adoption"},
	domain.PolicyCommitted:       {"Commitment", "Record a commitment"},
	domain.InitiativeJoined:      {"Joined", "Record joining"},
	domain.InitiativeRoleChanged: {"Role changed", "Change role"},
	domain.InitiativeLeft:        {"Left", "Record leaving"},
	domain.MeetingScheduled:      {"Scheduled", "Record scheduling"},
	domain.MeetingAttended:       {"Attended", "Record attendance"},
	domain.MeetingConcluded:      {"Concluded", "Record conclusion"},
}

func pastLabel(t domain.EventType) string {
	if l, ok := eventLabels[t]; ok {
		return l.past
	}
	return string(t)
}

// words turns a code such as in_progress or action_plan into "in progress".
func words(s string) string { return strings.ReplaceAll(s, "_", " ") }

// kindLabel is "Agreement" for agreement.
func kindLabel(k domain.Kind) string {
	if k == "" {
		return ""
	}
	return strings.ToUpper(string(k[:1])) + string(k[1:])
}

// kindPlural is "Agreements" for agreement, "Policies" for policy.
func kindPlural(k domain.Kind) string {
	if l, ok := strings.CutSuffix(kindLabel(k), "y"); ok {
		return l + "ies"
	}
	return kindLabel(k) + "s"
}

// tone groups statuses into a few colours: where it starts, under way,
// needs attention, closed.
func tone(s domain.Status) string {
	switch s {
	case domain.StatusActive, domain.StatusMember, domain.StatusAdopted, domain.StatusImplementing,
		domain.StatusAttended:
		return "ok"
	case domain.StatusExpired:
		return "warn"
	case domain.StatusTerminated, domain.StatusLeft, domain.StatusConcluded:
		return "closed"
	}
	return "new"
}

const (
	dateFormat     = "2 Jan 2006"
	dateTimeFormat = "2 Jan 2006, 15:04 UTC"
)

// when shows an occurred_at: a date alone when it is midnight UTC (the
// date-only form of the API and the forms), else date and time.
func when(t time.Time) string {
	t = t.UTC()
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0 {
		return t.Format(dateFormat)
	}
	return t.Format(dateTimeFormat)
}

// dayText shows a YYYY-MM-DD date field as "15 Jan 2019".
func dayText(s string) string {
	t, err := time.Parse(domain.DateLayout, s)
	if err != nil {
		return s
	}
	return t.Format(dateFormat)
}

var funcs = template.FuncMap{
	"when":    when,
	"stamp":   func(t time.Time) string { return t.UTC().Format(dateTimeFormat) },
	"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"day":     dayText,
	"words":   func(s any) string { return words(toString(s)) },
	"kind":    kindLabel,
	"kinds":   kindPlural,
	"tone":    tone,
	"join":    strings.Join,
	"past":    pastLabel,
	"formCtx": func(csrf string, f formView) formCtx { return formCtx{CSRF: csrf, Form: f} },
}

// formCtx is what the form-body template needs: the form and the session's
// CSRF token.
type formCtx struct {
	CSRF string
	Form formView
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case domain.Status:
		return string(x)
	case domain.Kind:
		return string(x)
	case domain.EventType:
		return string(x)
	case domain.Role:
		return string(x)
	}
	return ""
}
