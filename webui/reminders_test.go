package webui_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
)

// TestRemindersOnTheEngagementPage: the service's reminders show on the
// timeline, with their data, by system; the page offers no form to record
// one and no correction of one, and a forged form post is refused.
func TestRemindersOnTheEngagementPage(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2024-01-01", map[string]any{"kind": "agreement", "title": "Reminded MOU", "parties": []string{"IOM", "WHO"}})
	te.append(t, id, domain.AgreementSigned, "2024-01-02", map[string]any{"signed_on": "2024-01-02", "expires_on": "2030-06-30"})
	r := te.exec(t, app.Command{EngagementID: id, Type: domain.AgreementExpiring, Actor: domain.SystemActor,
		Data: raw(t, map[string]any{"expires_on": "2030-06-30", "days_left": 30, "deadline": "expiry"})})
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))

	p := b.get("/engagements/" + id)
	if p.status != http.StatusOK {
		t.Fatalf("status %d", p.status)
	}
	mustContain(t, p, "Expiry reminder", "by system", "Days left 30")
	if got := offered(p.body); slices.ContainsFunc(got, func(typ string) bool {
		s, _ := domain.SpecOf(domain.EventType(typ))
		return s.System
	}) {
		t.Errorf("the page offers a reminder's form: %v", got)
	}
	if strings.Contains(p.body, "form-engagement-corrected-"+r.EventID) {
		t.Error("the page offers a correction of the reminder")
	}

	before := te.history(t, id)
	form := url.Values{"type": {string(domain.AgreementExpired)}, "version": {hidden(t, p.body, "version")},
		"_key": {hidden(t, p.body, "_key")}, "expires_on": {"2030-06-30"}}
	if p := b.submit("/engagements/"+id+"/events", form); p.status < 400 {
		t.Errorf("a forged form post for %s: status %d", domain.AgreementExpired, p.status)
	}
	if after := te.history(t, id); len(after) != len(before) {
		t.Errorf("a forged form post stored %d events", len(after)-len(before))
	}
}
