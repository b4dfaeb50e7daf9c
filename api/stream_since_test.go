package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"
)

// afterNow returns now, once the clock has moved past it (a spin of about a
// microsecond, not a sleep): what is stored next is stored after it.
func afterNow() time.Time {
	t := time.Now()
	for !time.Now().After(t) {
	}
	return t
}

func TestEventStreamSinceATime(t *testing.T) {
	ts := newTestServer(t)
	create := func(title string) (id string, seq uint64) {
		r := ts.post(t, "/v1/engagements", fmt.Sprintf(`{"kind":"initiative","title":%q,"parties":["IOM"]}`, title))
		if r.status != http.StatusCreated {
			t.Fatal(r)
		}
		got := decode[struct {
			ID       string
			Sequence uint64
		}](t, r)
		return got.ID, got.Sequence
	}
	_, first := create("before 1")
	create("before 2")
	at := afterNow()
	later1, _ := create("after 1")
	later2, _ := create("after 2")
	since := url.QueryEscape(at.UTC().Format(time.RFC3339Nano))

	t.Run("since a time between appends → only the later ones, then live", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events, resp := openStream(t, ctx, ts, "?since="+since)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var got []string
		for range 2 {
			ev := <-events
			got = append(got, subjectOf(t, ev))
		}
		if !slices.Equal(got, []string{later1, later2}) {
			t.Fatalf("events since %s are of %v, want %v", since, got, []string{later1, later2})
		}
		live, _ := create("live")
		if ev := <-events; subjectOf(t, ev) != live {
			t.Errorf("live event %s %s, want the new engagement %s", ev.event, ev.data, live)
		}
	})

	t.Run("a date means its midnight UTC", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events, _ := openStream(t, ctx, ts, "?since="+at.UTC().Format("2006-01-02"))
		if ev := <-events; ev.id != first {
			t.Errorf("first event since today: sequence %d, want %d", ev.id, first)
		}
	})

	t.Run("Last-Event-ID wins over since on reconnect", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events, resp := openStream(t, ctx, ts, "?since=2199-01-01", "Last-Event-ID", strconv.FormatUint(first, 10))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if ev := <-events; ev.id != first+1 {
			t.Errorf("resumed at sequence %d, want %d", ev.id, first+1)
		}
	})

	for _, tt := range []struct{ name, query string }{
		{"since not a time → 400", "?since=yesterday"},
		{"since not a date → 400", "?since=2026-13-01"},
		{"since before 1900 → 400", "?since=1899-12-31"},
		{"since with after → 400", "?since=" + since + "&after=1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.get(t, "/v1/events/stream"+tt.query)
			if r.status != http.StatusBadRequest || mediaType(r.header) != "application/problem+json" {
				t.Fatalf("%s: %s", tt.query, r)
			}
			var p struct{ Errors []struct{ Field string } }
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			if len(p.Errors) != 1 || p.Errors[0].Field != "since" {
				t.Errorf("%s: errors %+v, want one naming since", tt.query, p.Errors)
			}
		})
	}
}

// subjectOf is the engagement id of the CloudEvent in ev.
func subjectOf(t *testing.T, ev sseEvent) string {
	t.Helper()
	var ce struct{ Subject string }
	if err := json.Unmarshal([]byte(ev.data), &ce); err != nil {
		t.Fatalf("event %d: %v", ev.id, err)
	}
	return ce.Subject
}
