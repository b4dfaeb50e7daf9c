package webui_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

func TestLiveUpdates(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})
	other := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "Other", "parties": []string{"IOM"}})
	b := te.browser(t)
	b.mustLogin(te.token(t, "audit-office", domain.RoleAuditor))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, te.URL+"/engagements/live?engagement="+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() && lines.Text() != "" { // the stream's opening comment
	}
	te.append(t, other, domain.EngagementNoted, "", map[string]any{"note": "not this one"})
	te.append(t, id, domain.EngagementNoted, "", map[string]any{"note": "this one"})
	var frame []string
	for lines.Scan() {
		if lines.Text() == "" {
			break
		}
		frame = append(frame, lines.Text())
	}
	got := strings.Join(frame, "\n")
	if !strings.Contains(got, "event: change") || !strings.Contains(got, `"engagement_id":"`+id+`"`) ||
		!strings.Contains(got, `"type":"engagement.noted"`) || !strings.Contains(got, `"actor":"someone-else"`) {
		t.Errorf("first frame:\n%s", got)
	}

	t.Run("signed out → 401, not a redirect", func(t *testing.T) {
		p := te.browser(t).get("/engagements/live")
		if p.status != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", p.status)
		}
	})
}
