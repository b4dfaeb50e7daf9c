package reminders

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
	"golang.org/x/time/rate"
)

// day is 24 hours: the unit of the offsets and of days_left.
const day = 24 * time.Hour

// clock maps the deadlines' days to instants. In production a day is 24
// hours and each day starts at midnight UTC. Tests shorten the day (say to
// two seconds) from an origin: the origin's UTC day then starts at the
// origin, the next day one short day later, and so on, so that an
// agreement expiring "in three days" expires a few seconds ahead.
type clock struct {
	origin    time.Time // the instant the day originDay starts
	originDay time.Time // midnight UTC
	length    time.Duration
}

// newClock is the clock of days of length (0: 24 hours) counted from
// origin (zero: now). Instants are whole seconds, as schedules are.
func newClock(length time.Duration, origin time.Time) clock {
	if length <= 0 {
		length = day
	}
	if origin.IsZero() {
		origin = time.Now()
	}
	origin = origin.UTC()
	c := clock{originDay: origin.Truncate(day), length: length}
	c.origin = origin.Truncate(time.Second)
	if length == day {
		c.origin = c.originDay // real days start at midnight
	}
	return c
}

// start is the instant day d (midnight UTC) starts.
func (c clock) start(d time.Time) time.Time {
	n := int64(d.Sub(c.originDay) / day)
	return c.origin.Add(time.Duration(n) * c.length)
}

// today is the day (midnight UTC) that instant t falls on.
func (c clock) today(t time.Time) time.Time {
	n := t.Sub(c.origin)
	days := int64(n / c.length)
	if n < 0 && n%c.length != 0 {
		days-- // floor, not truncation
	}
	return c.originDay.AddDate(0, 0, int(days))
}

// daysUntil is the number of days from day from to the day on.
func daysUntil(from time.Time, on time.Time) int {
	return int(on.Sub(from) / day)
}

// parseDay parses a deadline's day: YYYY-MM-DD, or the first day of a
// YYYY-MM or YYYY the record knows no better (as the domain reads it).
func parseDay(s string) (time.Time, error) {
	t, _, err := domain.ParsePartialDate(s)
	return t, err
}

// MaxOffsets bounds how many reminders each deadline gets before it.
const MaxOffsets = 10

// ParseOffsets reads a --reminders value: days before a deadline,
// comma-separated positive whole numbers ("90,30,7"), each at most
// domain.MaxDaysLeft, at most MaxOffsets of them. They are returned
// largest first, without repeats.
func ParseOffsets(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		n, err := strconv.Atoi(part)
		if err != nil || n < 1 || n > domain.MaxDaysLeft {
			return nil, fmt.Errorf("reminder offsets are positive whole days up to %d, separated by commas (e.g. 90,30,7); %q is not one", domain.MaxDaysLeft, part)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) > MaxOffsets {
		return nil, fmt.Errorf("at most %d reminder offsets, not %d", MaxOffsets, len(out))
	}
	slices.SortFunc(out, func(a, b int) int { return b - a })
	return out, nil
}

// pacer spreads work over time: wait lets perSecond callers through a
// second, in small bursts.
type pacer struct{ lim *rate.Limiter }

func newPacer(perSecond int) pacer {
	return pacer{lim: rate.NewLimiter(rate.Limit(perSecond), max(perSecond/20, 1))}
}

func (p pacer) wait(ctx context.Context) error { return p.lim.Wait(ctx) }
