package domain

import (
	"slices"
	"strings"
	"time"
)

// DeadlineKind says what a dated item of an engagement is.
type DeadlineKind string

// The kinds of deadline. Expiry and meeting come from the agreement's and the
// meeting's own fields; notice and action deadlines are added by the event
// types that carry them.
const (
	DeadlineExpiry  DeadlineKind = "expiry"  // an agreement's expires_on
	DeadlineNotice  DeadlineKind = "notice"  // expires_on less the notice period
	DeadlineAction  DeadlineKind = "action"  // an open action item's due_on
	DeadlineMeeting DeadlineKind = "meeting" // a scheduled meeting's starts_on
)

// Deadline is one dated item ahead of (or overdue for) an engagement: what
// the upcoming list, the calendar feed and the reminders are built from.
type Deadline struct {
	Kind DeadlineKind `json:"kind"`
	// On is the day, YYYY-MM-DD.
	On string `json:"on"`
	// Ref tells deadlines of one kind apart (an action's action_id); "" for
	// the engagement's single expiry, notice or meeting.
	Ref string `json:"ref,omitempty"`
	// Title is what the item is, e.g. an action's title; "" for the
	// engagement's own expiry, notice or meeting.
	Title string `json:"title,omitempty"`
	// Owner is who an action item is for; "" for other kinds.
	Owner string `json:"owner,omitempty"`
}

// Deadlines lists v's dated items that are still open, by day: an active
// agreement's expiry (also when it lies in the past and no expiry was
// recorded yet) and its notice deadline (expiry less notice_days), a
// scheduled meeting's start, each open action item's due day. Closed
// engagements (terminated, left, concluded) have none.
func (v *View) Deadlines() []Deadline {
	var out []Deadline
	switch {
	case v.Kind == KindAgreement && v.Status == StatusActive && v.ExpiresOn != "":
		out = append(out, Deadline{Kind: DeadlineExpiry, On: v.ExpiresOn})
		if on, _, err := ParsePartialDate(v.ExpiresOn); err == nil && v.NoticeDays > 0 {
			out = append(out, Deadline{Kind: DeadlineNotice, On: on.AddDate(0, 0, -v.NoticeDays).Format(DateLayout)})
		}
	case v.Kind == KindMeeting && v.Status == StatusScheduled && v.StartsOn != "":
		out = append(out, Deadline{Kind: DeadlineMeeting, On: v.StartsOn})
	}
	if !closedStatus(v.Status) {
		for _, a := range v.Actions {
			if a.Status == ActionOpen {
				out = append(out, Deadline{Kind: DeadlineAction, On: a.DueOn, Ref: a.ID, Title: a.Title, Owner: a.Owner})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Deadline) int { return strings.Compare(a.On, b.On) })
	return out
}

// Deadlines lists e's open dated items (see View.Deadlines).
func (e *Engagement) Deadlines() []Deadline { return e.v.Deadlines() }

// DaysLeft is the number of whole days from the day of now (UTC) to the
// deadline's day: 0 on the day, negative when overdue.
func (d Deadline) DaysLeft(now time.Time) int {
	on, _, err := ParsePartialDate(d.On)
	if err != nil {
		return 0
	}
	today := now.UTC().Truncate(24 * time.Hour)
	return int(on.Sub(today).Hours() / 24)
}

// closedStatus reports whether an engagement in status s is over: its
// action items are no longer anyone's deadline.
func closedStatus(s Status) bool {
	switch s {
	case StatusTerminated, StatusLeft, StatusConcluded:
		return true
	}
	return false
}
