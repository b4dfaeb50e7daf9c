package reminders

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/iom-who/engagements/domain"
)

// after is the offset of the reminders due once a deadline's day is over:
// agreement.expired, engagement.action_overdue.
const after = -1

// point is one reminder of one deadline: what a schedule fires, and what
// the handler of the fired message records if it still applies.
type point struct {
	Engagement string              `json:"engagement_id"`
	Kind       domain.DeadlineKind `json:"kind"`
	Ref        string              `json:"ref,omitempty"`
	// On is the deadline's day, YYYY-MM-DD.
	On string `json:"on"`
	// Offset is the days before On the reminder is due: 0 on the day (a
	// notice deadline), after (-1) once the day is over.
	Offset int `json:"offset"`
}

// points lists the reminders of v's open deadlines with offsets (days
// before, largest first).
func points(v *domain.View, offsets []int) []point {
	var out []point
	for _, d := range v.Deadlines() {
		p := point{Engagement: v.ID, Kind: d.Kind, Ref: d.Ref, On: d.On}
		switch d.Kind {
		case domain.DeadlineExpiry, domain.DeadlineMeeting:
			for _, o := range offsets {
				p.Offset = o
				out = append(out, p)
			}
			if d.Kind == domain.DeadlineExpiry {
				p.Offset = after
				out = append(out, p)
			}
		case domain.DeadlineNotice:
			p.Offset = 0
			out = append(out, p)
		case domain.DeadlineAction:
			p.Offset = after
			out = append(out, p)
		}
	}
	return out
}

// valid checks a fired message's point before it is used: the engagement
// id goes into a subject and a key.
func (p point) valid() error {
	if err := domain.CheckID(p.Engagement); err != nil {
		return err
	}
	if _, err := parseDay(p.On); err != nil {
		return fmt.Errorf("on: %w", err)
	}
	if len(p.Ref) > domain.MaxEntry || p.Offset < after || p.Offset > domain.MaxDaysLeft {
		return fmt.Errorf("reference or offset out of range")
	}
	switch p.Kind {
	case domain.DeadlineExpiry, domain.DeadlineNotice, domain.DeadlineMeeting, domain.DeadlineAction:
		return nil
	}
	return fmt.Errorf("unknown deadline kind %q", p.Kind)
}

// due is the instant the reminder is due by c.
func (p point) due(c clock) (time.Time, error) {
	on, err := parseDay(p.On)
	if err != nil {
		return time.Time{}, err
	}
	if p.Offset == after {
		return c.start(on.AddDate(0, 0, 1)), nil
	}
	return c.start(on.AddDate(0, 0, -p.Offset)), nil
}

// refToken is p.Ref as a subject token: a hash, so that no reference
// flows into a subject unchecked.
func (p point) refToken() string {
	if p.Ref == "" {
		return "-"
	}
	h := sha256.Sum256([]byte(p.Ref))
	return hex.EncodeToString(h[:8])
}

// offsetToken is p.Offset as a subject token.
func (p point) offsetToken() string {
	if p.Offset == after {
		return "after"
	}
	return "d" + strconv.Itoa(p.Offset)
}

// scheduleSubject is the one subject of p's schedule: the same for every
// day of the deadline, so that publishing a moved deadline replaces the
// schedule.
func (p point) scheduleSubject() string {
	return scheduleRoot + "." + p.Engagement + "." + string(p.Kind) + "." + p.refToken() + "." + p.offsetToken()
}

// idempotencyKey names p's reminder for the command path: the same from
// every instance and on every try.
func (p point) idempotencyKey() string {
	return "reminder:" + string(p.Kind) + ":" + p.refToken() + ":" + p.On + ":" + p.offsetToken()
}

// reminder is the event a due point records.
type reminder struct {
	typ  domain.EventType
	data any
}

// decide says what p records on v on day today: the reminder, or why
// nothing (notYet: p is not due yet on today).
func decide(v *domain.View, p point, offsets []int, today time.Time) (r reminder, why string, notYet bool) {
	i := slices.IndexFunc(v.Deadlines(), func(d domain.Deadline) bool { return d.Kind == p.Kind && d.Ref == p.Ref })
	if i < 0 || v.Deadlines()[i].On != p.On {
		return r, "the deadline moved or closed", false
	}
	on, err := parseDay(p.On)
	if err != nil {
		return r, err.Error(), false
	}
	left := daysUntil(today, on)
	last, reminded := v.Reminded(p.Kind, p.Ref, p.On)
	switch {
	case p.Offset == after && left >= 0, p.Offset != after && left > p.Offset:
		return r, "not due yet", true
	case p.Kind == domain.DeadlineAction && reminded:
		return r, "already recorded", false
	}
	switch p.Kind {
	case domain.DeadlineExpiry:
		if p.Offset == after {
			return reminder{domain.AgreementExpired, domain.ExpiredData{ExpiresOn: p.On}}, "", false
		}
		if why := nearest(p, offsets, left, last, reminded); why != "" {
			return r, why, false
		}
		return reminder{domain.AgreementExpiring, domain.ExpiringData{ExpiresOn: p.On, DaysLeft: left,
			Deadline: string(domain.DeadlineExpiry)}}, "", false
	case domain.DeadlineMeeting:
		if why := nearest(p, offsets, left, last, reminded); why != "" {
			return r, why, false
		}
		return reminder{domain.MeetingUpcoming, domain.UpcomingData{StartsOn: p.On, DaysLeft: left}}, "", false
	case domain.DeadlineNotice:
		exp, err := parseDay(v.ExpiresOn)
		switch {
		case err != nil || daysUntil(today, exp) < 0:
			return r, "the agreement's expiry is over", false
		case reminded:
			return r, "already recorded", false
		}
		return reminder{domain.AgreementExpiring, domain.ExpiringData{ExpiresOn: v.ExpiresOn, DaysLeft: daysUntil(today, exp),
			Deadline: string(domain.DeadlineNotice)}}, "", false
	case domain.DeadlineAction:
		return reminder{domain.EngagementActionOverdue, domain.ActionOverdueData{ActionID: p.Ref, DueOn: p.On}}, "", false
	}
	return r, "unknown deadline kind", false
}

// nearest refuses a reminder days before a deadline that is over, that a
// nearer offset supersedes (after a pause, only the latest reminder due is
// recorded) or that was recorded already.
func nearest(p point, offsets []int, left, last int, reminded bool) string {
	if left < 0 {
		return "the deadline is over"
	}
	for _, o := range offsets {
		if o < p.Offset && o >= left {
			return "a nearer reminder is due"
		}
	}
	if reminded && last <= left {
		return "already recorded"
	}
	return ""
}

// wanted reports whether p is to be scheduled for v at now: not recorded
// already, and either due later or due now (a past one fires at once).
func wanted(v *domain.View, p point, offsets []int, c clock, now time.Time) bool {
	due, err := p.due(c)
	if err != nil {
		return false
	}
	if due.After(now) {
		last, reminded := v.Reminded(p.Kind, p.Ref, p.On)
		switch {
		case !reminded || p.Kind == domain.DeadlineExpiry && p.Offset == after:
			return true // expired is once by the status it sets
		case p.Offset == after || p.Kind == domain.DeadlineNotice:
			return false
		}
		return last > p.Offset
	}
	r, _, notYet := decide(v, p, offsets, c.today(now))
	return notYet || r.typ != ""
}

// marshal is the fired message's payload.
func (p point) marshal() ([]byte, error) { return json.Marshal(p) }
