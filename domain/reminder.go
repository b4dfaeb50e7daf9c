package domain

import (
	"maps"
	"strconv"
)

// SystemActor is the actor of the events the service records itself (the
// reminders: agreement.expiring, agreement.expired,
// engagement.action_overdue, meeting.upcoming). Decide refuses those types
// from any other actor.
const SystemActor = "system"

// MaxDaysLeft bounds a reminder's days_left (a century).
const MaxDaysLeft = 36_500

// The reminder rules. A reminder must name one of the engagement's current
// open deadlines (View.Deadlines) as it stands: a reminder of an expiry that
// a renewal moved, of a meeting that was held, of an action that was done is
// refused. Each deadline is reminded of with fewer days left each time
// (90, then 30, then 7): the same or a later reminder again is refused, so
// however often and by however many instances a reminder is tried, it is
// recorded once. The domain does not compare the dates with the clock: the
// service's scheduler decides when a reminder is due.

// reminderKey names one deadline in View.Reminded.
func reminderKey(kind DeadlineKind, ref, on string) string {
	return string(kind) + "|" + ref + "|" + on
}

// Reminded is the days_left of the last reminder recorded for the deadline
// of kind, ref and day on (0 for an overdue action), and whether there was
// one.
func (v *View) Reminded(kind DeadlineKind, ref, on string) (daysLeft int, ok bool) {
	daysLeft, ok = v.Reminders[reminderKey(kind, ref, on)]
	return daysLeft, ok
}

// deadline finds v's open deadline of kind and ref.
func (v *View) deadline(kind DeadlineKind, ref string) (Deadline, bool) {
	for _, d := range v.Deadlines() {
		if d.Kind == kind && d.Ref == ref {
			return d, true
		}
	}
	return Deadline{}, false
}

// remindedAgain is the reason a reminder of d with daysLeft is refused as
// one already recorded, "" if it is not.
func (v *View) remindedAgain(d Deadline, daysLeft int, once bool) string {
	prev, ok := v.Reminded(d.Kind, d.Ref, d.On)
	switch {
	case !ok:
		return ""
	case once:
		return "this reminder is already recorded"
	case daysLeft >= prev:
		return "a reminder with " + strconv.Itoa(prev) + " days left is already recorded"
	}
	return ""
}

func allowExpiring(e *Engagement, status Status, values map[string]any) string {
	if status != StatusActive {
		return "the agreement is " + string(status) + "; only an active agreement is reminded of its expiry"
	}
	if values == nil {
		return ""
	}
	if values["expires_on"] != e.v.ExpiresOn {
		return "expires_on is not the agreement's expiry " + e.v.ExpiresOn
	}
	kind := DeadlineKind(values["deadline"].(string))
	d, ok := e.v.deadline(kind, "")
	if !ok {
		return "the agreement has no " + string(kind) + " deadline"
	}
	return e.v.remindedAgain(d, values["days_left"].(int), kind == DeadlineNotice)
}

func allowExpired(e *Engagement, _ Status, values map[string]any) string {
	if e.v.Status != StatusActive {
		return "the agreement is " + string(e.v.Status) + "; only an active agreement expires"
	}
	if values != nil && values["expires_on"] != e.v.ExpiresOn {
		return "expires_on is not the agreement's expiry " + e.v.ExpiresOn
	}
	return ""
}

func allowOverdue(e *Engagement, _ Status, values map[string]any) string {
	if values == nil {
		for _, d := range e.v.Deadlines() {
			if d.Kind == DeadlineAction {
				return ""
			}
		}
		return "the engagement has no open action item"
	}
	id, _ := values["action_id"].(string)
	d, ok := e.v.deadline(DeadlineAction, id)
	if !ok || d.On != values["due_on"] {
		return "no open action item " + truncate(id, 64) + " is due on that day"
	}
	return e.v.remindedAgain(d, 0, true)
}

func allowUpcoming(e *Engagement, _ Status, values map[string]any) string {
	if e.v.Status != StatusScheduled {
		return "the meeting is " + string(e.v.Status) + "; only a scheduled meeting is upcoming"
	}
	if values == nil {
		return ""
	}
	d, ok := e.v.deadline(DeadlineMeeting, "")
	if !ok || d.On != values["starts_on"] {
		return "starts_on is not the meeting's start " + e.v.StartsOn
	}
	return e.v.remindedAgain(d, values["days_left"].(int), false)
}

// applyReminder remembers the reminder in View.Reminders, dropping what it
// held of deadlines that are no longer open. The map is replaced, not
// changed: views read before share it.
func applyReminder(e *Engagement, ev Event, f map[string]any) {
	var key string
	days, _ := f["days_left"].(int)
	switch ev.Type {
	case AgreementExpiring:
		kind := DeadlineKind(f["deadline"].(string))
		d, _ := e.v.deadline(kind, "")
		key = reminderKey(kind, "", d.On)
	case EngagementActionOverdue:
		key = reminderKey(DeadlineAction, f["action_id"].(string), f["due_on"].(string))
	case MeetingUpcoming:
		key = reminderKey(DeadlineMeeting, "", f["starts_on"].(string))
	default:
		return
	}
	open := make(map[string]bool)
	for _, d := range e.v.Deadlines() {
		open[reminderKey(d.Kind, d.Ref, d.On)] = true
	}
	m := make(map[string]int, len(e.v.Reminders)+1)
	for k, v := range maps.All(e.v.Reminders) {
		if open[k] {
			m[k] = v
		}
	}
	m[key] = days
	e.v.Reminders = m
}
