package webui_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

// The live stream answers 400, naming what is wrong, when what it should
// follow is malformed: an EventSource stops on a status other than 200
// instead of streaming every change. What is well formed opens the stream.
func TestLiveRefusesMalformedParameters(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})
	b := te.browser(t)
	b.mustLogin(te.token(t, "audit-office", domain.RoleAuditor))

	for _, row := range []struct {
		name        string
		query       string
		lastEventID []string
		want        int
		names       string // what the 400 page names
	}{
		{"engagement=* → 400", "engagement=*", nil, http.StatusBadRequest, "engagement"},
		{"engagement that is no id → 400", "engagement=" + url.QueryEscape(id+"x"), nil, http.StatusBadRequest, "engagement"},
		{"an empty engagement → 400", "engagement=", nil, http.StatusBadRequest, "engagement"},
		{"after that is no number → 400", "after=abc", nil, http.StatusBadRequest, "after"},
		{"a negative after → 400", "after=-1", nil, http.StatusBadRequest, "after"},
		{"an empty after → 400", "after=", nil, http.StatusBadRequest, "after"},
		{"after twice → 400", "after=1&after=2", nil, http.StatusBadRequest, "after"},
		{"after past uint64 → 400", "after=18446744073709551616", nil, http.StatusBadRequest, "after"},
		{"a Last-Event-ID that is no number → 400", "after=1", []string{"x1"}, http.StatusBadRequest, "Last-Event-ID"},
		{"two Last-Event-IDs → 400", "", []string{"1", "2"}, http.StatusBadRequest, "Last-Event-ID"},
		{"everything → 200", "", nil, http.StatusOK, ""},
		{"one engagement after a sequence → 200", "engagement=" + id + "&after=1", nil, http.StatusOK, ""},
		{"after beyond the projection → 200", "after=99999", nil, http.StatusOK, ""},
		{"Last-Event-ID → 200", "", []string{"1"}, http.StatusOK, ""},
		{"an empty Last-Event-ID is none → 200", "after=1", []string{""}, http.StatusOK, ""},
	} {
		t.Run(row.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, te.URL+"/engagements/live?"+row.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range row.lastEventID {
				req.Header.Add("Last-Event-ID", v)
			}
			resp, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != row.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, resp.Header.Get("Content-Type"), row.want)
			}
			if row.want == http.StatusOK {
				if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
					t.Errorf("Content-Type %q, want text/event-stream", ct)
				}
				return // the stream stays open; cancel ends it
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("a refusal as %s", ct)
			}
			if !strings.Contains(string(body), row.names+" must be") {
				t.Errorf("the page does not say what is wrong with %s:\n%s", row.names, text(string(body)))
			}
		})
	}
}
