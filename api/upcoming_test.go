package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type upcomingItem struct {
	Kind            string `json:"kind"`
	On              string `json:"on"`
	Ref             string `json:"ref"`
	Title           string `json:"title"`
	Owner           string `json:"owner"`
	EngagementID    string `json:"engagement_id"`
	EngagementTitle string `json:"engagement_title"`
	EngagementKind  string `json:"engagement_kind"`
	DaysLeft        int    `json:"days_left"`
	Overdue         bool   `json:"overdue"`
}

type upcomingPage struct {
	Items      []upcomingItem `json:"items"`
	NextCursor *string        `json:"next_cursor"`
}

// TestUpcoming: GET /v1/upcoming lists expiries, notice deadlines, action
// due dates and meetings within the window, overdue first then by date;
// filters, paging, and what a renewal, a completion or a termination takes
// off the list; bad parameters are 400 problems.
func TestUpcoming(t *testing.T) {
	ts := newTestServer(t)
	today := time.Now().UTC()
	day := func(n int) string { return today.AddDate(0, 0, n).Format("2006-01-02") }

	a := ts.create(t, agreement("Agreement A"))
	ts.appendEvent(t, a, fmt.Sprintf(`{"type":"agreement.signed","data":{"signed_on":"2020-01-15","expires_on":%q,"notice_days":30}}`, day(10)))
	ts.appendEvent(t, a, fmt.Sprintf(`{"type":"engagement.action_assigned","data":{"action_id":"plan","title":"Send the plan","owner":"IOM MHD","due_on":%q}}`, day(-3)))
	b := ts.create(t, agreement("Agreement B"))
	ts.appendEvent(t, b, fmt.Sprintf(`{"type":"agreement.signed","data":{"signed_on":"2020-01-15","expires_on":%q}}`, day(200)))
	ts.appendEvent(t, b, fmt.Sprintf(`{"type":"engagement.action_assigned","data":{"action_id":"x","title":"Done already","owner":"WHO","due_on":%q}}`, day(1)))
	ts.appendEvent(t, b, `{"type":"engagement.action_completed","data":{"action_id":"x"}}`)
	c := ts.create(t, `{"kind":"agreement","title":"Agreement C","parties":["IOM","UNHCR"]}`)
	ts.appendEvent(t, c, fmt.Sprintf(`{"type":"agreement.signed","data":{"signed_on":"2020-01-15","expires_on":%q}}`, day(5)))
	ts.appendEvent(t, c, `{"type":"agreement.terminated","data":{"reason":"superseded"}}`)
	m := ts.create(t, `{"kind":"meeting","title":"Regional committee","parties":["IOM","WHO"]}`)
	ts.appendEvent(t, m, fmt.Sprintf(`{"type":"meeting.scheduled","data":{"starts_on":%q}}`, day(5)))

	list := func(query string) upcomingPage {
		t.Helper()
		r := ts.get(t, "/v1/upcoming?"+query)
		if r.status != http.StatusOK {
			t.Fatalf("upcoming?%s: %s", query, r)
		}
		return decode[upcomingPage](t, r)
	}
	summary := func(p upcomingPage) string {
		var out []string
		for _, it := range p.Items {
			out = append(out, fmt.Sprintf("%s:%s:%d", it.EngagementTitle, it.Kind, it.DaysLeft))
		}
		return strings.Join(out, " ")
	}
	all := "Agreement A:notice:-20 Agreement A:action:-3 Regional committee:meeting:5 Agreement A:expiry:10"
	for _, tt := range []struct{ query, want string }{
		{"", all},
		{"within=90d", all},
		{"within=365", all + " Agreement B:expiry:200"},
		{"within=7d", "Agreement A:notice:-20 Agreement A:action:-3 Regional committee:meeting:5"},
		{"type=action", "Agreement A:action:-3"},
		{"owner=iom%20mhd", "Agreement A:action:-3"},
		{"owner=WHO", ""},
		{"kind=meeting", "Regional committee:meeting:5"},
		{"party=unhcr&within=365d", ""},
	} {
		if got := summary(list(tt.query)); got != tt.want {
			t.Errorf("upcoming?%s:\n got %s\nwant %s", tt.query, got, tt.want)
		}
	}
	first := list("within=90d")
	if it := first.Items[1]; it.Ref != "plan" || it.Title != "Send the plan" || it.Owner != "IOM MHD" || !it.Overdue ||
		it.EngagementID != a || it.EngagementKind != "agreement" || it.On != day(-3) {
		t.Errorf("the action item: %+v", it)
	}

	// Paging: two and two, with nothing repeated or skipped.
	p1 := list("limit=2")
	if p1.NextCursor == nil || summary(p1) != "Agreement A:notice:-20 Agreement A:action:-3" {
		t.Fatalf("page 1: %s, cursor %v", summary(p1), p1.NextCursor)
	}
	p2 := list("limit=2&cursor=" + url.QueryEscape(*p1.NextCursor))
	if summary(p2) != "Regional committee:meeting:5 Agreement A:expiry:10" || p2.NextCursor != nil {
		t.Errorf("page 2: %s, cursor %v", summary(p2), p2.NextCursor)
	}

	// A renewal moves the expiry out of the window; completing the action
	// and attending the meeting take them off.
	ts.appendEvent(t, a, fmt.Sprintf(`{"type":"agreement.renewed","data":{"renewed_on":%q,"expires_on":%q}}`, day(0), day(400)))
	ts.appendEvent(t, a, `{"type":"engagement.action_completed","data":{"action_id":"plan","outcome":"sent"}}`)
	ts.appendEvent(t, m, `{"type":"meeting.attended","data":{"role":"participant"}}`)
	if got := summary(list("within=3650d")); got != "Agreement B:expiry:200 Agreement A:notice:370 Agreement A:expiry:400" {
		t.Errorf("after renewal, completion, attendance: %s", got)
	}

	for _, q := range []string{"within=0", "within=-5d", "within=abc", "within=3651d", "within=%2B5d", "type=bogus",
		"kind=treaty", "limit=0", "limit=abc", "cursor=!!", "cursor=bm90LWEtY3Vyc29y", "owner=" + strings.Repeat("x", 300)} {
		r := ts.get(t, "/v1/upcoming?"+q)
		if r.status != http.StatusBadRequest || mediaType(r.header) != "application/problem+json" {
			t.Errorf("upcoming?%s: %s", q, r)
		}
	}
}
