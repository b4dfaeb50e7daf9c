package api

import (
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

// FuzzParseTime feeds arbitrary strings to the three parsers of times that
// clients send: domain.ParseDate (date fields in event data), parseTime
// (occurred_at) and parseBound (as_of, known_at). None may panic, and each
// success must lie in the years MinYear..MaxYear and survive formatting and
// parsing again:
//   - ParseDate: midnight UTC, and formatting it gives back the input exactly;
//   - parseTime: UTC, never the zero time (which the command path would read
//     as "not given"), and it parses back from RFC 3339 to the same instant;
//   - parseBound: UTC, parses back to the same instant, and never before
//     parseTime's reading of the same text (a bare date bounds the end of its
//     day, not its start).
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2024-03-01", "1900-01-01", "2199-12-31", "1899-12-31", "2200-01-01", "0000-01-01", "9999-12-31",
		"2024-02-30", "2024-3-1", "2024-03-01T09:00:00Z", "2024-03-01T09:00:00.123456789+02:00",
		"0001-01-01T00:00:00Z", "1900-01-01T00:30:00+01:00", "2199-12-31T23:30:00-01:00", "2024-03-01 09:00:00", "", "now",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := domain.ParseDate(s); err == nil {
			inRange(t, "ParseDate", s, d)
			if d.Location() != time.UTC || !d.Equal(d.Truncate(24*time.Hour)) {
				t.Fatalf("ParseDate(%q) = %v, not midnight UTC", s, d)
			}
			if got := d.Format(domain.DateLayout); got != s {
				t.Fatalf("ParseDate(%q) formats back as %q", s, got)
			}
		}

		tm, timeErr := parseTime(s)
		if timeErr == nil {
			if tm.Location() != time.UTC || tm.IsZero() {
				t.Fatalf("parseTime(%q) = %v, not a non-zero UTC time", s, tm)
			}
			inRange(t, "parseTime", s, tm)
			back, err := parseTime(tm.Format(time.RFC3339Nano))
			if err != nil || !back.Equal(tm) {
				t.Fatalf("parseTime(%q) = %v, which parses back as %v (%v)", s, tm, back, err)
			}
		}

		b, err := parseBound(s)
		if err != nil {
			return
		}
		if b.Location() != time.UTC {
			t.Fatalf("parseBound(%q) = %v, not UTC", s, b)
		}
		inRange(t, "parseBound", s, b)
		back, err := parseBound(b.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(b) {
			t.Fatalf("parseBound(%q) = %v, which parses back as %v (%v)", s, b, back, err)
		}
		if timeErr == nil && b.Before(tm) {
			t.Fatalf("parseBound(%q) = %v is before parseTime's %v", s, b, tm)
		}
	})
}

func inRange(t *testing.T, parser, s string, tm time.Time) {
	t.Helper()
	if y := tm.Year(); y < domain.MinYear || y > domain.MaxYear {
		t.Fatalf("%s(%q) = %v, a year outside %d..%d", parser, s, tm, domain.MinYear, domain.MaxYear)
	}
}
