package webui_test

import (
	"math"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
)

var cxRE = regexp.MustCompile(`<circle class="[^"]*" cx="([0-9.]+)" cy="[0-9.]+" r="4"><title>([^<]+)</title>`)

// TestTimelinesToScale: on the MOU's page, 1999 and 2019 are twenty years
// apart on the drawing, as far apart as twenty years are on its axis; the
// term bar runs from signing to expiry; the portfolio timeline draws the
// agreement as a bar with its renewal, and a meeting as a mark.
func TestTimelinesToScale(t *testing.T) {
	te := newTestEnv(t)
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleAuditor))
	year := func(y int) time.Time { return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC) }
	rec := te.exec(t, app.Command{Type: domain.EngagementRecorded, OccurredAt: year(1999), TimePrecision: domain.PrecisionYear,
		Data: raw(t, map[string]any{"kind": "agreement", "title": "IOM–WHO MOU", "parties": []string{"IOM", "WHO"}}), Actor: "demo"})
	mou := rec.EngagementID
	te.exec(t, app.Command{EngagementID: mou, Type: domain.AgreementSigned, OccurredAt: year(1999), TimePrecision: domain.PrecisionYear,
		Data: raw(t, map[string]any{"signed_on": "1999"}), Actor: "demo"})
	te.exec(t, app.Command{EngagementID: mou, Type: domain.AgreementRenewed, OccurredAt: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC),
		TimePrecision: domain.PrecisionMonth, Data: raw(t, map[string]any{"renewed_on": "2019-01", "expires_on": "2029-01-31"}), Actor: "demo"})
	m := te.record(t, "2018-09-01", map[string]any{"kind": "meeting", "title": "UNGA HLM on TB", "parties": []string{"IOM", "WHO"}})
	te.append(t, m, domain.MeetingScheduled, "2018-09-02", map[string]any{"starts_on": "2018-09-26"})

	p := b.get("/engagements/" + mou)
	if p.status != http.StatusOK {
		t.Fatalf("MOU page: %d", p.status)
	}
	mustContain(t, p, "Timeline", "1999 Recorded", "1999 Signed", "January 2019 Renewed")
	xs := map[string]float64{}
	for _, m := range cxRE.FindAllStringSubmatch(p.body, -1) {
		x, _ := strconv.ParseFloat(m[1], 64)
		xs[m[2]] = x
	}
	signed, renewed := xs["Signed, 1 Jan 1999"], xs["Renewed, 1 Jan 2019"]
	if signed == 0 || renewed == 0 {
		t.Fatalf("marks %v", xs)
	}
	// The axis' ticks give its scale: x per year.
	ticks := regexp.MustCompile(`<line class="axis" x1="([0-9.]+)" x2="[0-9.]+" y1="[0-9.]+" y2="[0-9.]+"/><text x="[0-9.]+" y="[0-9.]+" text-anchor="middle">([0-9]{4})</text>`).FindAllStringSubmatch(p.body, -1)
	if len(ticks) < 2 {
		t.Fatalf("ticks %v", ticks)
	}
	x0, _ := strconv.ParseFloat(ticks[0][1], 64)
	x1, _ := strconv.ParseFloat(ticks[len(ticks)-1][1], 64)
	y0, _ := strconv.Atoi(ticks[0][2])
	y1, _ := strconv.Atoi(ticks[len(ticks)-1][2])
	perYear := (x1 - x0) / float64(y1-y0)
	if got := (renewed - signed) / perYear; math.Abs(got-20) > 0.1 {
		t.Errorf("1999 → 2019 is %.2f years on the drawing (signed at %.1f, renewed at %.1f, %.2f per year)", got, signed, renewed, perYear)
	}
	bar := regexp.MustCompile(`<rect class="bar" x="([0-9.]+)" y="[0-9.]+" width="([0-9.]+)"[^>]*><title>Term: 1999 → 31 Jan 2029</title>`).FindStringSubmatch(p.body)
	if bar == nil {
		t.Fatal("no term bar from 1999 to 31 Jan 2029")
	}
	bx, _ := strconv.ParseFloat(bar[1], 64)
	bw, _ := strconv.ParseFloat(bar[2], 64)
	if math.Abs(bx-signed) > 0.2 || math.Abs(bw/perYear-30.08) > 0.1 {
		t.Errorf("term bar at %.1f, %.1f wide (%.2f years)", bx, bw, bw/perYear)
	}

	p = b.get("/timeline")
	if p.status != http.StatusOK {
		t.Fatalf("timeline: %d", p.status)
	}
	mustContain(t, p, "IOM–WHO MOU", "UNGA HLM on TB")
	if !regexp.MustCompile(`<title>IOM–WHO MOU</title></rect><line class="renewal"`).MatchString(p.body) ||
		!regexp.MustCompile(`<title>UNGA HLM on TB: starts 26 Sep 2018</title>`).MatchString(p.body) {
		t.Errorf("the portfolio timeline lacks the MOU's bar and renewal or the meeting's mark")
	}
}
