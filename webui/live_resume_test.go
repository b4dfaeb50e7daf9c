package webui_test

import (
	"bufio"
	"context"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

var dataLiveRE = regexp.MustCompile(`data-live="([^"]+)"`)

// TestLiveMissesNothingRecordedWhileThePageLoads: a page's live stream starts
// after what the page showed, not when its script happens to connect.
func TestLiveMissesNothingRecordedWhileThePageLoads(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))

	for _, tc := range []struct {
		name string
		page string
	}{
		{"the portfolio", "/"},
		{"an engagement page", "/engagements/" + id},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.get(tc.page)
			m := dataLiveRE.FindStringSubmatch(p.body)
			if m == nil {
				t.Fatalf("no data-live on %s", tc.page)
			}
			live := html.UnescapeString(m[1])
			if !strings.Contains(live, "after=") {
				t.Fatalf("data-live %q does not say what the page showed", live)
			}
			// Recorded after the page was built, before its script connects.
			te.append(t, id, domain.EngagementNoted, "", map[string]any{"note": "while loading " + tc.name})

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, te.URL+live, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			lines := bufio.NewScanner(resp.Body)
			for lines.Scan() && lines.Text() != "" { // the stream's opening comment
			}
			var frame []string
			for lines.Scan() && lines.Text() != "" {
				frame = append(frame, lines.Text())
			}
			got := strings.Join(frame, "\n")
			if !strings.Contains(got, "event: change") || !strings.Contains(got, `"type":"engagement.noted"`) {
				t.Errorf("first frame after connecting:\n%s", got)
			}
		})
	}
}
