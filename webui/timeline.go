package webui

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// The real-scale timelines: server-rendered SVG (no script) where the
// distance between two entries is the time between them, so the twenty
// years between the MOU's signing and its renewal look like twenty years.

const (
	svgWidth = 800.0
	svgPad   = 24.0
)

// axis maps times onto x between the padding.
type axis struct {
	start, end time.Time
}

func newAxis(times ...time.Time) axis {
	var a axis
	for _, t := range times {
		if t.IsZero() {
			continue
		}
		if a.start.IsZero() || t.Before(a.start) {
			a.start = t
		}
		if t.After(a.end) {
			a.end = t
		}
	}
	if !a.end.After(a.start) { // one instant: a day either side
		a.start, a.end = a.start.AddDate(0, 0, -1), a.end.AddDate(0, 0, 1)
	}
	// A little room at both ends, 2% of the span.
	pad := a.end.Sub(a.start) / 50
	a.start, a.end = a.start.Add(-pad), a.end.Add(pad)
	return a
}

// x is t's position.
func (a axis) x(t time.Time) float64 {
	span := a.end.Sub(a.start).Seconds()
	return math.Round((svgPad+(svgWidth-2*svgPad)*t.Sub(a.start).Seconds()/span)*10) / 10
}

// svgTick is a labelled year on the axis.
type svgTick struct {
	X     float64
	Label string
}

// ticks are the axis' years: every year, or every 5, 10, 25 or 50 years
// when the span is longer, at most about a dozen.
func (a axis) ticks() []svgTick {
	years := a.end.Year() - a.start.Year()
	step := 1
	for _, s := range []int{1, 2, 5, 10, 25, 50, 100} {
		step = s
		if years/s <= 12 {
			break
		}
	}
	var out []svgTick
	for y := (a.start.Year()/step + 1) * step; y <= a.end.Year(); y += step {
		t := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		if t.After(a.start) && t.Before(a.end) {
			out = append(out, svgTick{X: a.x(t), Label: fmt.Sprint(y)})
		}
	}
	return out
}

// svgMark is one entry on a timeline.
type svgMark struct {
	X     float64
	Y     float64
	Label string
	Class string
}

// svgBar is an agreement's term, from signing to expiry (or to today when
// open-ended, Open).
type svgBar struct {
	X1, X2, Y float64
	Label     string
	Open      bool
	Renewals  []float64
}

// engagementTimeline is one engagement's timeline.
type engagementTimeline struct {
	Height float64
	Axis   float64
	Ticks  []svgTick
	Marks  []svgMark
	Bar    *svgBar
	Today  float64
	// TodayShown says today is on the axis.
	TodayShown bool
}

// timelineOf draws e's events (marks, within the page's window) to scale,
// with an agreement's term as a bar, up to day.
func timelineOf(v domain.View, marks []projections.Mark, day time.Time) *engagementTimeline {
	if len(marks) == 0 {
		return nil
	}
	times := []time.Time{day}
	for _, m := range marks {
		times = append(times, m.OccurredAt)
	}
	signed, _, errS := domain.ParsePartialDate(v.SignedOn)
	expires, _, errE := domain.ParsePartialDate(v.ExpiresOn)
	if errE == nil {
		times = append(times, expires)
	}
	a := newAxis(times...)
	tl := &engagementTimeline{Height: 70, Axis: 46, Ticks: a.ticks(), Today: a.x(day), TodayShown: true}
	for _, m := range marks {
		class := "mark"
		if m.Type == domain.EngagementCorrected {
			class = "mark mark-correction"
		}
		tl.Marks = append(tl.Marks, svgMark{X: a.x(m.OccurredAt), Y: tl.Axis, Class: class,
			Label: pastLabel(m.Type) + ", " + when(m.OccurredAt)})
	}
	if v.Kind == domain.KindAgreement && errS == nil {
		bar := &svgBar{X1: a.x(signed), Y: 18, Label: "Term"}
		if errE == nil {
			bar.X2 = a.x(expires)
			bar.Label = "Term: " + dayText(v.SignedOn) + " → " + dayText(v.ExpiresOn)
		} else {
			bar.X2, bar.Open = a.x(day), true
			bar.Label = "Term: since " + dayText(v.SignedOn) + ", open-ended"
		}
		for _, m := range marks {
			if m.Type == domain.AgreementRenewed {
				bar.Renewals = append(bar.Renewals, a.x(m.OccurredAt))
			}
		}
		tl.Bar = bar
	}
	return tl
}

// portfolioTimeline is the /timeline page's drawing: a row per engagement.
type portfolioTimeline struct {
	base
	Height, Axis float64
	Ticks        []svgTick
	Rows         []timelineRow
	Today        float64
	// Left says how many engagements are not drawn (beyond maxTimelineRows).
	Left int
}

// timelineRow is one engagement: an agreement's term as a bar with its
// renewals, other kinds' dated moments as marks.
type timelineRow struct {
	Y     float64
	Title string
	Href  string
	Bar   *svgBar
	Marks []svgMark
}

// maxTimelineRows is how many engagements the portfolio timeline draws.
const maxTimelineRows = 300

// timelinePage: GET /timeline — agreements as bars from signing to expiry
// with renewals marked; adoptions, commitments, joinings and meetings as
// marks; all on one real-scale axis up to today.
func (u *UI) timelinePage(w http.ResponseWriter, r *http.Request, s *session) {
	day := u.now().UTC()
	all := u.everything()
	type drawn struct {
		v     domain.View
		marks []projections.Mark
	}
	var rows []drawn
	times := []time.Time{day}
	for _, e := range all {
		v := e.View()
		var keep []projections.Mark
		for _, m := range u.proj.Marks(v.ID, domain.Window{}) {
			switch m.Type {
			case domain.AgreementSigned, domain.AgreementRenewed, domain.AgreementTerminated, domain.PolicyAdopted,
				domain.PolicyCommitted, domain.InitiativeJoined, domain.InitiativeLeft, domain.MeetingAttended:
				keep = append(keep, m)
				times = append(times, m.OccurredAt)
			}
		}
		if t, _, err := domain.ParsePartialDate(v.ExpiresOn); err == nil {
			times = append(times, t)
		}
		if t, _, err := domain.ParsePartialDate(v.StartsOn); err == nil && v.Kind == domain.KindMeeting {
			times = append(times, t)
		}
		if len(keep) > 0 || v.Kind == domain.KindMeeting && v.StartsOn != "" {
			rows = append(rows, drawn{v, keep})
		}
	}
	a := newAxis(times...)
	d := portfolioTimeline{base: u.base(s, "Timeline", "timeline"), Ticks: a.ticks(), Today: a.x(day)}
	if len(rows) > maxTimelineRows {
		d.Left = len(rows) - maxTimelineRows
		rows = rows[:maxTimelineRows]
	}
	slices.SortStableFunc(rows, func(x, y drawn) int { return compareKind(x.v.Kind, y.v.Kind) })
	const rowHeight = 26.0
	for i, dr := range rows {
		y := 12 + float64(i)*rowHeight
		row := timelineRow{Y: y, Title: dr.v.Title, Href: "/engagements/" + dr.v.ID}
		if dr.v.Kind == domain.KindAgreement {
			if signed, _, err := domain.ParsePartialDate(dr.v.SignedOn); err == nil {
				bar := &svgBar{X1: a.x(signed), Y: y, Label: dr.v.Title}
				if expires, _, err := domain.ParsePartialDate(dr.v.ExpiresOn); err == nil {
					bar.X2 = a.x(expires)
				} else {
					bar.X2, bar.Open = a.x(day), true
				}
				for _, m := range dr.marks {
					if m.Type == domain.AgreementRenewed {
						bar.Renewals = append(bar.Renewals, a.x(m.OccurredAt))
					}
				}
				row.Bar = bar
			}
		}
		for _, m := range dr.marks {
			if m.Type == domain.AgreementSigned || m.Type == domain.AgreementRenewed && row.Bar != nil {
				continue
			}
			row.Marks = append(row.Marks, svgMark{X: a.x(m.OccurredAt), Y: y + 6, Class: "mark",
				Label: dr.v.Title + ": " + pastLabel(m.Type) + ", " + when(m.OccurredAt)})
		}
		if dr.v.Kind == domain.KindMeeting && dr.v.StartsOn != "" {
			if t, _, err := domain.ParsePartialDate(dr.v.StartsOn); err == nil {
				row.Marks = append(row.Marks, svgMark{X: a.x(t), Y: y + 6, Class: "mark mark-correction",
					Label: dr.v.Title + ": starts " + dayText(dr.v.StartsOn)})
			}
		}
		d.Rows = append(d.Rows, row)
	}
	d.Axis = 12 + float64(len(d.Rows))*rowHeight + 4
	d.Height = d.Axis + 20
	u.render(w, http.StatusOK, "timeline", d)
}

// compareKind orders kinds as the contract lists them.
func compareKind(a, b domain.Kind) int {
	return slices.Index(domain.Kinds, a) - slices.Index(domain.Kinds, b)
}
