package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestList(t *testing.T) {
	ts := newTestServer(t)

	// Created in this order; the list is in creation order.
	health := ts.create(t, `{"kind":"agreement","title":"Health MOU","parties":["IOM","WHO"],"tags":["health","Migration"]}`)
	expired := ts.create(t, `{"kind":"agreement","title":"Expired MOU","parties":["IOM","UNHCR"]}`)
	ts.appendEvent(t, expired, `{"type":"agreement.signed","data":{"signed_on":"2019-01-01","expires_on":"2020-01-01"}}`)
	active := ts.create(t, `{"kind":"agreement","title":"Standing agreement","parties":["WHO","UNICEF"]}`)
	ts.appendEvent(t, active, `{"type":"agreement.signed","data":{"signed_on":"2019-01-01","expires_on":"2190-01-01"}}`)
	compact := ts.create(t, `{"kind":"policy","title":"Global Compact contribution","parties":["IOM","WHO"],"instrument":"compact","tags":["migration"],"description":"Text on health of migrants"}`)
	cluster := ts.create(t, `{"kind":"initiative","title":"Health cluster","parties":["IOM"]}`)
	wha := ts.create(t, `{"kind":"meeting","title":"WHA77","parties":["WHO"],"level":"ministerial"}`)
	all := []string{health, expired, active, compact, cluster, wha}

	if e := ts.state(t, expired); e.Status != "expired" {
		t.Errorf("agreement past its expires_on has status %q, want expired", e.Status)
	}

	for _, c := range []struct {
		name  string
		query string
		want  []string
	}{
		{"everything", "", all},
		{"kind", "kind=agreement", []string{health, expired, active}},
		{"kind policy", "kind=policy", []string{compact}},
		{"status draft", "status=draft", []string{health}},
		{"status active leaves out the expired one", "status=active", []string{active}},
		{"status expired is derived from expires_on", "status=expired", []string{expired}},
		{"status of another kind", "status=recorded", []string{cluster, wha}},
		{"status nobody has", "status=terminated", []string{}},
		{"party, case-insensitive", "party=iom", []string{health, expired, compact, cluster}},
		{"party, mixed case", "party=Who", []string{health, active, compact, wha}},
		{"party nobody has", "party=UNDP", []string{}},
		{"tag, case-insensitive", "tag=MIGRATION", []string{health, compact}},
		{"text in titles", "q=mou", []string{health, expired}},
		{"text in descriptions", "q=migrants", []string{compact}},
		{"text in parties", "q=unicef", []string{active}},
		{"text nobody wrote", "q=ebola", []string{}},
		{"filters combine", "kind=agreement&party=WHO", []string{health, active}},
		{"filters and text combine", "party=who&q=health", []string{health, compact}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ts.get(t, "/v1/engagements?"+c.query)
			if r.status != http.StatusOK {
				t.Fatalf("status %s", r)
			}
			p := decode[page](t, r)
			if got := ids(p.Items); !slices.Equal(got, c.want) {
				t.Errorf("ids %v, want %v", got, c.want)
			}
			if p.NextCursor != nil {
				t.Errorf("next_cursor %q on the only page", *p.NextCursor)
			}
			if c.query == "status=expired" && len(p.Items) == 1 && p.Items[0].Status != "expired" {
				t.Errorf("listed with status %q", p.Items[0].Status)
			}
		})
	}

	t.Run("items are never null", func(t *testing.T) {
		r := ts.get(t, "/v1/engagements?party=nobody")
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &raw); err != nil {
			t.Fatal(err)
		}
		if string(raw["items"]) != "[]" || string(raw["next_cursor"]) != "null" {
			t.Errorf("empty page %s, want items [] and next_cursor null", r.body)
		}
	})

	for _, c := range []struct {
		query string
		limit string
		want  []string
		pages int
	}{
		{"", "1", all, 6},
		{"", "2", all, 3},
		{"", "4", all, 2},
		{"", "6", all, 1},
		{"", "1000", all, 1},
		{"kind=agreement", "1", []string{health, expired, active}, 3},
		{"party=iom", "3", []string{health, expired, compact, cluster}, 2},
	} {
		t.Run("paging "+c.query+" limit "+c.limit, func(t *testing.T) {
			var got []string
			cursor := ""
			pages := 0
			for {
				q, _ := url.ParseQuery(c.query)
				q.Set("limit", c.limit)
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				r := ts.get(t, "/v1/engagements?"+q.Encode())
				if r.status != http.StatusOK {
					t.Fatalf("page %d: %s", pages+1, r)
				}
				p := decode[page](t, r)
				pages++
				got = append(got, ids(p.Items)...)
				if p.NextCursor == nil {
					break
				}
				if len(p.Items) == 0 || pages > len(all) {
					t.Fatalf("page %d has %d items and a next_cursor", pages, len(p.Items))
				}
				cursor = *p.NextCursor
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("pages gave %v, want each of %v once, in order", got, c.want)
			}
			if pages != c.pages {
				t.Errorf("%d pages, want %d", pages, c.pages)
			}
		})
	}
}

func ids(items []engagement) []string {
	out := []string{}
	for _, e := range items {
		out = append(out, e.ID)
	}
	return out
}
