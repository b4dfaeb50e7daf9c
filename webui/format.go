package webui

import (
	"html/template"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
)

// specOf is t's spec; an unknown type has an empty one.
func specOf(t domain.EventType) *domain.Spec {
	if s, ok := domain.SpecOf(t); ok {
		return s
	}
	return &domain.Spec{Type: t}
}

// pastLabel names an event of type t as an entry of the timeline.
func pastLabel(t domain.EventType) string {
	if s := specOf(t); s.Past != "" {
		return s.Past
	}
	return string(t)
}

// actionLabel names the form that records an event of type t.
func actionLabel(t domain.EventType) string { return specOf(t).Action }

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

// dayText shows a YYYY-MM-DD date field as "15 Jan 2019", a partial one as
// "January 2019" or "1999".
func dayText(s string) string {
	t, precision, err := domain.ParsePartialDate(s)
	if err != nil {
		return s
	}
	return occurredText(t, precision)
}

// occurredText shows when something happened as precisely as the record
// knows it: "1999", "January 2019", "15 Jan 2019", or a day and time.
func occurredText(t time.Time, precision string) string {
	switch precision {
	case domain.PrecisionYear:
		return t.UTC().Format("2006")
	case domain.PrecisionMonth:
		return t.UTC().Format("January 2006")
	case domain.PrecisionNone:
		return "date not recorded"
	}
	return when(t)
}

var funcs = template.FuncMap{
	"when":     when,
	"stamp":    func(t time.Time) string { return t.UTC().Format(dateTimeFormat) },
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"day":      dayText,
	"occurred": occurredText,
	"neg":      func(n int) int { return -n },
	"add":      func(a, b float64) float64 { return a + b },
	"width":    func(x1, x2 float64) float64 { return max(x2-x1, 1) },
	"deadline": deadlineLabel,
	"words":    func(s any) string { return words(toString(s)) },
	"kind":     kindLabel,
	"kinds":    kindPlural,
	"tone":     tone,
	"join":     strings.Join,
	"past":     pastLabel,
	"formCtx":  func(csrf string, f formView) formCtx { return formCtx{CSRF: csrf, Form: f} },
	"dec":      func(n uint64) uint64 { return max(n, 1) - 1 },
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

// deadlineLabel names a kind of dated item.
func deadlineLabel(k domain.DeadlineKind) string {
	switch k {
	case domain.DeadlineExpiry:
		return "Expires"
	case domain.DeadlineNotice:
		return "Notice deadline"
	case domain.DeadlineAction:
		return "Action due"
	case domain.DeadlineMeeting:
		return "Meeting"
	}
	return string(k)
}
