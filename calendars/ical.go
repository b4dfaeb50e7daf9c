package calendars

import (
	"fmt"
	"io"
	"strings"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// MaxItems caps the events of one feed (about 2 MB of iCalendar): the
// earliest are kept.
const MaxItems = 5_000

// ProductID is the feed's PRODID.
const ProductID = "-//IOM-WHO//engagements//EN"

// ContentType is what a feed is served as.
const ContentType = "text/calendar; charset=utf-8"

// Write renders items as an iCalendar document of feed's: one all-day
// VEVENT per item, its UID stable across fetches (engagement id, deadline
// kind and ref), its DESCRIPTION linking to the engagement's page under
// base (the service's public URL, no trailing slash); now is the DTSTAMP.
func Write(w io.Writer, feed Feed, items []projections.DatedItem, base string, now time.Time) error {
	cal := ics.NewCalendarFor("engagements")
	cal.SetProductId(ProductID)
	cal.SetCalscale("GREGORIAN")
	cal.SetMethod(ics.MethodPublish)
	cal.SetName(feed.Name) // NAME and X-WR-CALNAME
	cal.SetXWRCalDesc(describeFilter(feed.Filter))
	cal.SetRefreshInterval("PT1H")
	cal.SetXPublishedTTL("PT1H")
	stamp := now.UTC().Truncate(time.Second)
	for _, it := range items {
		// A partial date (an expiry known as "2030") is its first day.
		day, _, err := domain.ParsePartialDate(it.On)
		if err != nil {
			continue // a date the domain never stores
		}
		ev := cal.AddEvent(UID(it))
		ev.SetDtStampTime(stamp)
		ev.SetAllDayStartAt(day)
		ev.SetAllDayEndAt(day.AddDate(0, 0, 1))
		ev.SetSummary(Summary(it))
		link := base + "/engagements/" + it.EngagementID
		ev.SetDescription(description(it, link))
		ev.SetURL(link)
		ev.SetTimeTransparency(ics.TransparencyTransparent)
		ev.AddProperty(ics.ComponentPropertyCategories, string(it.Deadline.Kind))
	}
	// RFC 5545 lines end in CRLF; the library's default on Unix is LF.
	return cal.SerializeTo(w, ics.WithNewLineWindows)
}

// UID is an item's stable UID: the engagement, the kind of deadline and,
// for kinds with several items per engagement (action items), its ref.
func UID(it projections.DatedItem) string {
	uid := it.EngagementID + "-" + string(it.Deadline.Kind)
	if it.Ref != "" {
		uid += "-" + it.Ref
	}
	return uid + "@engagements"
}

// Summary is an item's SUMMARY, e.g. "Expires: Memorandum of Understanding
// IOM–WHO", on one line (line breaks and runs of spaces in titles become
// one space). A kind of deadline this package does not name yet is shown
// by its name.
func Summary(it projections.DatedItem) string {
	return strings.Join(strings.Fields(summary(it)), " ")
}

func summary(it projections.DatedItem) string {
	var label string
	switch it.Deadline.Kind {
	case domain.DeadlineExpiry:
		label = "Expires"
	case domain.DeadlineNotice:
		label = "Notice deadline"
	case domain.DeadlineAction:
		label = "Action due"
	case domain.DeadlineMeeting:
		label = "Meeting"
	default:
		k := string(it.Deadline.Kind)
		label = strings.ToUpper(k[:min(1, len(k))]) + strings.ReplaceAll(k[min(1, len(k)):], "_", " ")
	}
	if it.Deadline.Title != "" {
		return fmt.Sprintf("%s: %s (%s)", label, it.Deadline.Title, it.Title)
	}
	return label + ": " + it.Title
}

func description(it projections.DatedItem, link string) string {
	var b strings.Builder
	b.WriteString(Summary(it))
	fmt.Fprintf(&b, "\n%s", it.Kind)
	if len(it.Parties) > 0 {
		fmt.Fprintf(&b, " · %s", strings.Join(it.Parties, ", "))
	}
	fmt.Fprintf(&b, "\n%s", link)
	return b.String()
}

// describeFilter says what a feed holds, for X-WR-CALDESC.
func describeFilter(f Filter) string {
	what := "Open deadlines and meetings of "
	if f.Kind != "" {
		what += string(f.Kind) + " engagements"
	} else {
		what += "engagements"
	}
	if f.Party != "" {
		what += " with " + f.Party
	}
	if f.WithinDays > 0 {
		what += fmt.Sprintf(", up to %d days ahead", f.WithinDays)
	}
	return what
}
