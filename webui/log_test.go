package webui_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/iom-who/engagements/domain"
)

// An auditor reads the global log: every event in stream order, filtered
// by kind and type, read on after a sequence; a filter that is not valid
// is a 400 page naming it, never the whole log filtered wrongly.
func TestEventLogPage(t *testing.T) {
	te := newTestEnv(t)
	s := seed(t, te)
	b := te.browser(t)
	b.mustLogin(te.token(t, "audit-office", domain.RoleAuditor))

	p := b.get("/log")
	if p.status != http.StatusOK {
		t.Fatalf("GET /log: %d", p.status)
	}
	mustContain(t, p, "Event log", "engagement.recorded", "agreement.signed", "policy.adopted", "engagement.linked")
	if !strings.Contains(p.body, `href="/engagements/`+s.mou+`?entry=2"`) {
		t.Error("the MOU's signing does not link to its entry")
	}
	// rows are the event types in the page's table (the filter's choices
	// name every type).
	rows := func(p page, want, not []string) {
		t.Helper()
		for _, typ := range want {
			if !strings.Contains(p.body, "<td>"+typ+"</td>") {
				t.Errorf("no %s row", typ)
			}
		}
		for _, typ := range not {
			if strings.Contains(p.body, "<td>"+typ+"</td>") {
				t.Errorf("a %s row", typ)
			}
		}
	}
	rows(b.get("/log?type=agreement.signed"), []string{"agreement.signed"}, []string{"policy.adopted", "agreement.renewed"})
	rows(b.get("/log?kind=policy"), []string{"policy.adopted", "engagement.linked"}, []string{"agreement.signed"})
	// After the third event: the first three are not shown.
	p = b.get("/log?after=3")
	mustContain(t, p, "After sequence 3", "First page")
	rows(p, []string{"policy.adopted"}, []string{"agreement.signed", "agreement.renewed"})
	for _, bad := range []string{"?kind=*", "?type=agreement.>", "?after=-1", "?after=1e3"} {
		if p := b.get("/log" + bad); p.status != http.StatusBadRequest {
			t.Errorf("GET /log%s: %d, want 400", bad, p.status)
		}
	}
}
