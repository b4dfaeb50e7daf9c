package webui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
)

// TestDeskOnTheEngagementPage: a coordinator assigns an action item and a
// focal point through the page's forms (the action's id is made up, the
// party and the action to complete are chosen from lists), sees the term
// with its notice deadline, completes the action; bad input is refused on
// the page and stores nothing.
func TestDeskOnTheEngagementPage(t *testing.T) {
	te := newTestEnv(t)
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	id := te.record(t, "2019-01-10", map[string]any{"kind": "agreement", "title": "IOM–WHO MOU", "parties": []string{"IOM", "WHO"}})
	te.append(t, id, domain.AgreementSigned, "2019-01-15", map[string]any{"signed_on": "2019-01-15", "expires_on": "2190-01-15", "notice_days": 90})

	p := b.get("/engagements/" + id)
	mustContain(t, p, "Term", "Signed 15 Jan 2019", "expires 15 Jan 2190", "Notice must be given by 17 Oct 2189", "(90 days before expiry)")
	if !regexp.MustCompile(`<select id="[^"]*-party" name="party"`).MatchString(p.body) {
		t.Error("the focal point form does not offer the parties to choose from")
	}
	submit := func(typ string, values url.Values) page {
		t.Helper()
		values.Set("type", typ)
		values.Set("version", hidden(t, b.last.body, "version"))
		return b.submit("/engagements/"+id+"/events", values)
	}
	if p := submit("engagement.action_assigned", url.Values{"title": {"Send the joint work plan"}, "owner": {"IOM MHD"}, "due_on": {"2020-03-01"}}); p.status != http.StatusSeeOther {
		t.Fatalf("assign: %d %s", p.status, text(p.body))
	}
	p = b.get("/engagements/" + id)
	mustContain(t, p, "Action items", "overdue", "Send the joint work plan", "IOM MHD", "due 1 Mar 2020")
	v := te.state(t, id)
	if len(v.Actions) != 1 || v.Actions[0].ID == "" || v.Actions[0].Status != domain.ActionOpen {
		t.Fatalf("actions %+v", v.Actions)
	}
	if !regexp.MustCompile(`<option value="` + regexp.QuoteMeta(v.Actions[0].ID) + `">Send the joint work plan \(IOM MHD, due 2020-03-01\)</option>`).MatchString(p.body) {
		t.Error("the completion form does not offer the open action")
	}

	// Refused on the page, nothing stored.
	before := len(te.history(t, id))
	for _, bad := range []struct {
		typ    string
		values url.Values
		want   string
	}{
		{"engagement.focal_point_assigned", url.Values{"party": {"UNICEF"}, "name": {"Dr X"}}, "must be one of the engagement's parties"},
		{"engagement.focal_point_assigned", url.Values{"party": {"WHO"}, "name": {"Dr X"}, "email": {"nope"}}, "must be an e-mail address"},
		{"engagement.action_completed", url.Values{"action_id": {"not-there"}}, "no action item"},
		{"engagement.action_assigned", url.Values{"title": {"t"}, "owner": {"o"}, "due_on": {"2200-01-01"}}, "year must be between 1900 and 2199"},
	} {
		p := submit(bad.typ, bad.values)
		if p.status != http.StatusUnprocessableEntity {
			t.Errorf("%s %v: %d", bad.typ, bad.values, p.status)
		}
		mustContain(t, p, bad.want)
	}
	if n := len(te.history(t, id)); n != before {
		t.Fatalf("refused forms stored %d events", n-before)
	}

	b.get("/engagements/" + id)
	if p := submit("engagement.focal_point_assigned", url.Values{"party": {"WHO"}, "name": {"Dr A. Example"}, "role": {"Director"}, "email": {"a@example.org"}}); p.status != http.StatusSeeOther {
		t.Fatalf("focal point: %d %s", p.status, text(p.body))
	}
	b.get("/engagements/" + id)
	if p := submit("engagement.action_completed", url.Values{"action_id": {v.Actions[0].ID}, "outcome": {"sent on time"}}); p.status != http.StatusSeeOther {
		t.Fatalf("complete: %d %s", p.status, text(p.body))
	}
	p = b.get("/engagements/" + id)
	mustContain(t, p, "Focal points", "Dr A. Example, Director", "a@example.org", "done", "sent on time")
	mustNotContain(t, p, "overdue")

	// Dates as precise as the record: a month, a year, none.
	if p := submit("engagement.noted", url.Values{"note": {"Renewal talks"}, "occurred_at": {"2019-01"}}); p.status != http.StatusSeeOther {
		t.Fatalf("note of January 2019: %d %s", p.status, text(p.body))
	}
	b.get("/engagements/" + id)
	if p := submit("engagement.noted", url.Values{"note": {"x"}, "occurred_at": {"2019-13"}}); p.status != http.StatusUnprocessableEntity {
		t.Errorf("month 13: %d", p.status)
	}
	te.exec(t, app.Command{EngagementID: id, Type: domain.EngagementNoted, Data: raw(t, map[string]any{"note": "Undated"}),
		Actor: "import", TimePrecision: domain.PrecisionNone})
	p = b.get("/engagements/" + id)
	mustContain(t, p, "January 2019 Note", "date not recorded Note")
	h := te.history(t, id)
	if ev := h[len(h)-2]; ev.TimePrecision != domain.PrecisionMonth || !ev.OccurredAt.Equal(time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("stored %s with precision %q", ev.OccurredAt, ev.TimePrecision)
	}
}
