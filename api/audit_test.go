package api_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// logEvent is one event of the global log, of an NDJSON export line or of a
// history with its audit fields.
type logEvent struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	EngagementID string          `json:"engagement_id"`
	Kind         string          `json:"kind"`
	Version      int             `json:"version"`
	Sequence     uint64          `json:"sequence"`
	OccurredAt   time.Time       `json:"occurred_at"`
	RecordedAt   time.Time       `json:"recorded_at"`
	Actor        string          `json:"actor"`
	Data         json.RawMessage `json:"data"`
	Hash         string          `json:"hash"`
	// PrevHash is a pointer so that a missing member differs from "".
	PrevHash    *string  `json:"prev_hash"`
	CorrectedBy []string `json:"corrected_by"`
}

// logPage is the answer of GET /v1/events.
type logPage struct {
	Events    []logEvent `json:"events"`
	NextAfter *uint64    `json:"next_after"`
}

// report is the answer of GET /v1/verify.
type report struct {
	OK           bool   `json:"ok"`
	Events       uint64 `json:"events"`
	Engagements  int    `json:"engagements"`
	LastSequence uint64 `json:"last_sequence"`
	Head         string `json:"head"`
	Problems     []struct {
		Sequence     uint64 `json:"sequence"`
		EngagementID string `json:"engagement_id"`
		Problem      string `json:"problem"`
	} `json:"problems"`
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

// written is one event the test stored, as the stream must show it.
type written struct {
	seq        uint64
	engagement string
	kind, typ  string
	occurred   string // YYYY-MM-DD
}

// seedPortfolio stores eight events about three engagements of three kinds
// with known occurred_at dates, one request at a time, and returns them in
// stream order.
func seedPortfolio(t *testing.T, ts *testServer) []written {
	t.Helper()
	var out []written
	add := func(id, kind, typ, occurred string) {
		out = append(out, written{ts.lastSequence(t), id, kind, typ, occurred})
	}
	mou := ts.create(t, `{"kind":"agreement","title":"IOM–WHO MOU","parties":["IOM","WHO"],"occurred_at":"2017-01-01"}`)
	add(mou, "agreement", "engagement.recorded", "2017-01-01")
	ts.appendEvent(t, mou, `{"type":"agreement.signed","occurred_at":"2018-03-01","data":{"signed_on":"2018-03-01"}}`)
	add(mou, "agreement", "agreement.signed", "2018-03-01")
	res := ts.create(t, `{"kind":"policy","title":"WHA72.14","parties":["WHO"],"instrument":"resolution","occurred_at":"2019-05-01"}`)
	add(res, "policy", "engagement.recorded", "2019-05-01")
	ts.appendEvent(t, res, `{"type":"policy.adopted","occurred_at":"2019-05-28","data":{"adopted_by":"WHA"}}`)
	add(res, "policy", "policy.adopted", "2019-05-28")
	board := ts.create(t, `{"kind":"meeting","title":"Executive Board","parties":["WHO"],"occurred_at":"2020-01-01"}`)
	add(board, "meeting", "engagement.recorded", "2020-01-01")
	ts.appendEvent(t, mou, `{"type":"engagement.noted","occurred_at":"2020-02-01","data":{"note":"annual review"}}`)
	add(mou, "agreement", "engagement.noted", "2020-02-01")
	ts.appendEvent(t, mou, `{"type":"agreement.renewed","occurred_at":"2021-06-01","data":{"renewed_on":"2021-06-01"}}`)
	add(mou, "agreement", "agreement.renewed", "2021-06-01")
	ts.appendEvent(t, board, `{"type":"engagement.noted","occurred_at":"2021-07-01","data":{"note":"side event"}}`)
	add(board, "meeting", "engagement.noted", "2021-07-01")
	for i, w := range out {
		if w.seq != uint64(i+1) {
			t.Fatalf("event %d stored at sequence %d; the fixture expects a fresh stream", i+1, w.seq)
		}
	}
	return out
}

// seqsWhere lists the sequences of the written events that keep accepts.
func seqsWhere(events []written, keep func(written) bool) []uint64 {
	out := []uint64{}
	for _, w := range events {
		if keep(w) {
			out = append(out, w.seq)
		}
	}
	return out
}

func all(written) bool { return true }

func logSeqs(events []logEvent) []uint64 {
	out := []uint64{}
	for _, e := range events {
		out = append(out, e.Sequence)
	}
	return out
}

// readLog reads the whole global log for query, limit events per page,
// following next_after, and checks every page on the way.
func readLog(t *testing.T, ts *testServer, query string, limit int) []logEvent {
	t.Helper()
	var out []logEvent
	after := uint64(0)
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("%s: paging does not end", query)
		}
		path := fmt.Sprintf("/v1/events?after=%d&limit=%d", after, limit)
		if query != "" {
			path += "&" + query
		}
		r := ts.get(t, path)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %s", path, r)
		}
		p := decode[logPage](t, r)
		if p.NextAfter == nil {
			t.Fatalf("GET %s: no next_after: %s", path, r.body)
		}
		if len(p.Events) > limit {
			t.Fatalf("GET %s: %d events, more than the limit", path, len(p.Events))
		}
		if len(p.Events) == 0 {
			if *p.NextAfter != after {
				t.Errorf("GET %s: empty page with next_after %d, want %d (the after it was given)", path, *p.NextAfter, after)
			}
			return out
		}
		if last := p.Events[len(p.Events)-1].Sequence; *p.NextAfter != last {
			t.Errorf("GET %s: next_after %d, want %d (the page's last sequence)", path, *p.NextAfter, last)
		}
		out = append(out, p.Events...)
		after = *p.NextAfter
	}
}

func TestGlobalLog(t *testing.T) {
	ts := newTestServer(t)
	want := seedPortfolio(t, ts)

	r := ts.get(t, "/v1/events")
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/events: %s", r)
	}
	p := decode[logPage](t, r)
	if len(p.Events) != len(want) {
		t.Fatalf("%d events, want %d: %s", len(p.Events), len(want), r.body)
	}
	if p.NextAfter == nil || *p.NextAfter != want[len(want)-1].seq {
		t.Errorf("next_after = %v, want %d", p.NextAfter, want[len(want)-1].seq)
	}
	head := map[string]string{} // engagement → hash of its latest event
	for i, e := range p.Events {
		w := want[i]
		if e.Sequence != w.seq || e.EngagementID != w.engagement || e.Kind != w.kind || e.Type != w.typ ||
			e.OccurredAt.Format(domain.DateLayout) != w.occurred {
			t.Errorf("event %d = seq %d %s %s %s %s, want seq %d %s %s %s %s", i, e.Sequence, e.EngagementID, e.Kind,
				e.Type, e.OccurredAt.Format(domain.DateLayout), w.seq, w.engagement, w.kind, w.typ, w.occurred)
		}
		if !hexHash.MatchString(e.Hash) {
			t.Errorf("event %d: hash %q is not 64 lower-case hex digits", i, e.Hash)
		}
		if e.PrevHash == nil {
			t.Errorf("event %d has no prev_hash member", i)
		} else if *e.PrevHash != head[e.EngagementID] {
			t.Errorf("event %d: prev_hash %q, want %q (the hash of the engagement's previous event)", i, *e.PrevHash, head[e.EngagementID])
		}
		head[e.EngagementID] = e.Hash
	}

	t.Run("paging covers every event exactly once", func(t *testing.T) {
		for _, limit := range []int{1, 3, len(want), api.MaxLimit} {
			got := logSeqs(readLog(t, ts, "", limit))
			if w := seqsWhere(want, all); !slices.Equal(got, w) {
				t.Errorf("limit %d: sequences %v, want %v", limit, got, w)
			}
		}
	})

	t.Run("after the last event the page is empty", func(t *testing.T) {
		last := want[len(want)-1].seq
		p := decode[logPage](t, ts.get(t, fmt.Sprintf("/v1/events?after=%d", last)))
		if len(p.Events) != 0 || p.NextAfter == nil || *p.NextAfter != last {
			t.Errorf("after %d: %d events, next_after %v; want none and %d", last, len(p.Events), p.NextAfter, last)
		}
	})

	filters := []struct {
		name, query string
		keep        func(written) bool
	}{
		{"exact type", "type=agreement.signed", func(w written) bool { return w.typ == "agreement.signed" }},
		{"agreement.*", "type=agreement.*", func(w written) bool { return strings.HasPrefix(w.typ, "agreement.") }},
		{"engagement.*", "type=engagement.*", func(w written) bool { return strings.HasPrefix(w.typ, "engagement.") }},
		{"a type nobody used", "type=initiative.joined", func(written) bool { return false }},
		{"kind", "kind=agreement", func(w written) bool { return w.kind == "agreement" }},
		{"kind and type prefix", "kind=meeting&type=engagement.*", func(w written) bool {
			return w.kind == "meeting" && strings.HasPrefix(w.typ, "engagement.")
		}},
		{"kind and exact type", "kind=agreement&type=engagement.noted", func(w written) bool {
			return w.kind == "agreement" && w.typ == "engagement.noted"
		}},
	}
	for _, f := range filters {
		t.Run(f.name, func(t *testing.T) {
			w := seqsWhere(want, f.keep)
			for _, limit := range []int{1, 2, api.MaxLimit} {
				if got := logSeqs(readLog(t, ts, f.query, limit)); !slices.Equal(got, w) {
					t.Errorf("%s, limit %d: sequences %v, want %v", f.query, limit, got, w)
				}
			}
		})
	}

	bad := []struct{ name, query, field string }{
		{"after not a number", "after=abc", "after"},
		{"after negative", "after=-1", "after"},
		{"limit zero", "limit=0", "limit"},
		{"limit negative", "limit=-5", "limit"},
		{"limit over the maximum", fmt.Sprintf("limit=%d", api.MaxLimit+1), "limit"},
		{"limit not a number", "limit=ten", "limit"},
		{"unknown type", "type=agreement.bogus", "type"},
		{"unknown prefix", "type=treaty.*", "type"},
		{"subject wildcard", "type=*", "type"},
		{"subject tail wildcard", "type=agreement.>", "type"},
		{"unknown kind", "kind=treaty", "kind"},
		{"kind in upper case", "kind=AGREEMENT", "kind"},
	}
	for _, tt := range bad {
		t.Run("400 "+tt.name, func(t *testing.T) {
			r := ts.get(t, "/v1/events?"+tt.query)
			if r.status != http.StatusBadRequest {
				t.Fatalf("GET /v1/events?%s: %s, want 400", tt.query, r)
			}
			checkProblem(t, r, tt.field)
		})
	}
}

// An engagement begun in 2017, signed in 2018, and renewed in 2018 by an
// event recorded only now: the two time axes answer different questions.
func TestAsOfBothAxes(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, `{"kind":"agreement","title":"MOU","parties":["IOM","WHO"],"occurred_at":"2017-01-01"}`)
	ts.appendEvent(t, id, `{"type":"agreement.signed","occurred_at":"2018-03-01","data":{"signed_on":"2018-03-01"}}`)
	ts.appendEvent(t, id, `{"type":"agreement.renewed","occurred_at":"2018-06-01","data":{"renewed_on":"2018-06-01"}}`)
	today := ts.create(t, agreement("Recorded and begun today"))

	h := ts.history(t, id)
	if len(h) != 3 {
		t.Fatalf("history has %d events, want 3", len(h))
	}
	signedAt, renewedAt := h[1].RecordedAt, h[2].RecordedAt
	if !renewedAt.After(signedAt) {
		t.Fatalf("renewal recorded at %v, not after the signing at %v", renewedAt, signedAt)
	}
	between := url.QueryEscape(signedAt.Add(renewedAt.Sub(signedAt) / 2).Format(time.RFC3339Nano))

	type want struct {
		status    string // "" when the engagement did not exist
		version   int
		renewedOn string
	}
	tests := []struct {
		name  string
		query string
		want  want
		// today says whether the engagement begun today is listed.
		today bool
	}{
		{"no window: as it is now", "", want{"active", 3, "2018-06-01"}, true},
		{"as_of before it began", "as_of=2016-12-31", want{}, false},
		{"as_of the day it began includes that day", "as_of=2017-01-01", want{"draft", 1, ""}, false},
		{"as_of 2018-01-01: a draft", "as_of=2018-01-01", want{"draft", 1, ""}, false},
		{"as_of a second before the signing", "as_of=2018-02-28T23:59:59Z", want{"draft", 1, ""}, false},
		{"as_of 2018-04-01: signed, not yet renewed", "as_of=2018-04-01", want{"active", 2, ""}, false},
		{"as_of 2018-07-01: renewed", "as_of=2018-07-01", want{"active", 3, "2018-06-01"}, false},
		{"as_of with an offset", "as_of=" + url.QueryEscape("2018-07-01T02:00:00+02:00"), want{"active", 3, "2018-06-01"}, false},
		{"known_at between the signing and the renewal writes", "known_at=" + between, want{"active", 2, ""}, false},
		{"known_at before anything was recorded", "known_at=2017-06-01", want{}, false},
		{"both: renewed in the world, not yet known", "as_of=2018-07-01&known_at=" + between, want{"active", 2, ""}, false},
		{"both: a draft then, as known then", "as_of=2018-01-01&known_at=" + between, want{"draft", 1, ""}, false},
		{"both: before it began", "as_of=2016-12-31&known_at=" + between, want{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := ""
			if tt.query != "" {
				q = "?" + tt.query
			}

			r := ts.get(t, "/v1/engagements/"+id+q)
			if tt.want.status == "" {
				if r.status != http.StatusNotFound {
					t.Errorf("GET %s: %s, want 404", q, r)
				}
			} else if r.status != http.StatusOK {
				t.Errorf("GET %s: %s, want 200", q, r)
			} else if e := decode[engagement](t, r); e.Status != tt.want.status || e.Version != tt.want.version ||
				e.RenewedOn != tt.want.renewedOn {
				t.Errorf("GET %s: status %s, version %d, renewed_on %q; want %s, %d, %q", q, e.Status, e.Version,
					e.RenewedOn, tt.want.status, tt.want.version, tt.want.renewedOn)
			}

			r = ts.get(t, "/v1/engagements/"+id+"/history"+q)
			if tt.want.status == "" {
				if r.status != http.StatusNotFound {
					t.Errorf("history %s: %s, want 404", q, r)
				}
			} else if r.status != http.StatusOK {
				t.Errorf("history %s: %s, want 200", q, r)
			} else {
				got := decode[struct{ Events []event }](t, r).Events
				var types []string
				for _, e := range got {
					types = append(types, e.Type)
				}
				all := []string{"engagement.recorded", "agreement.signed", "agreement.renewed"}
				if w := all[:tt.want.version]; !slices.Equal(types, w) {
					t.Errorf("history %s: %v, want %v", q, types, w)
				}
			}

			sep := "?"
			if q != "" {
				sep = "&"
			}
			r = ts.get(t, "/v1/engagements"+q+sep+"limit=100")
			if r.status != http.StatusOK {
				t.Fatalf("list %s: %s", q, r)
			}
			listed := map[string]engagement{}
			for _, e := range decode[page](t, r).Items {
				listed[e.ID] = e
			}
			e, ok := listed[id]
			switch {
			case tt.want.status == "" && ok:
				t.Errorf("list %s shows the engagement before it existed: %+v", q, e)
			case tt.want.status != "" && !ok:
				t.Errorf("list %s lacks the engagement", q)
			case ok && (e.Status != tt.want.status || e.Version != tt.want.version || e.RenewedOn != tt.want.renewedOn):
				t.Errorf("list %s: status %s, version %d, renewed_on %q; want %s, %d, %q", q, e.Status, e.Version,
					e.RenewedOn, tt.want.status, tt.want.version, tt.want.renewedOn)
			}
			if _, ok := listed[today]; ok != tt.today {
				t.Errorf("list %s: engagement begun today listed = %v, want %v", q, ok, tt.today)
			}
		})
	}

	t.Run("status filter applies to the status then", func(t *testing.T) {
		for _, c := range []struct {
			query  string
			listed bool
		}{
			{"as_of=2018-01-01&status=draft", true},
			{"as_of=2018-01-01&status=active", false},
			{"as_of=2018-04-01&status=active", true},
			{"as_of=2018-04-01&status=draft", false},
		} {
			found := slices.Contains(ids(decode[page](t, ts.get(t, "/v1/engagements?"+c.query)).Items), id)
			if found != c.listed {
				t.Errorf("list ?%s: listed = %v, want %v", c.query, found, c.listed)
			}
		}
	})

	for _, bad := range []struct{ query, field string }{
		{"as_of=yesterday", "as_of"},
		{"as_of=2018-13-01", "as_of"},
		{"as_of=2018-1-1", "as_of"},
		{"as_of=2018-01-01T00:00:00", "as_of"}, // no zone
		{"known_at=soon", "known_at"},
		{"as_of=2018-01-01&known_at=2018-02-30", "known_at"},
	} {
		for _, path := range []string{"/v1/engagements/" + id, "/v1/engagements", "/v1/engagements/" + id + "/history"} {
			t.Run("400 "+path+"?"+bad.query, func(t *testing.T) {
				r := ts.get(t, path+"?"+bad.query)
				if r.status != http.StatusBadRequest {
					t.Fatalf("GET %s?%s: %s, want 400", path, bad.query, r)
				}
				checkProblem(t, r, bad.field)
			})
		}
	}
}

func (ts *testServer) verify(t *testing.T) report {
	t.Helper()
	r := ts.get(t, "/v1/verify")
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/verify: %s", r)
	}
	return decode[report](t, r)
}

func TestVerifyCleanStream(t *testing.T) {
	ts := newTestServer(t)
	written := seedPortfolio(t, ts)

	first := ts.verify(t)
	if !first.OK || len(first.Problems) != 0 {
		t.Errorf("clean stream: ok %v, problems %+v", first.OK, first.Problems)
	}
	if first.Events != uint64(len(written)) || first.Engagements != 3 || first.LastSequence != uint64(len(written)) {
		t.Errorf("clean stream: %d events, %d engagements, last sequence %d; want %d, 3, %d",
			first.Events, first.Engagements, first.LastSequence, len(written), len(written))
	}
	if !hexHash.MatchString(first.Head) {
		t.Errorf("head %q is not 64 lower-case hex digits", first.Head)
	}
	if again := ts.verify(t); again.Head != first.Head || !again.OK {
		t.Errorf("second verify: head %s ok %v, want the same head %s and ok", again.Head, again.OK, first.Head)
	}

	ts.appendEvent(t, written[0].engagement, note("one more"))
	after := ts.verify(t)
	if !after.OK || after.Events != first.Events+1 || after.Engagements != 3 {
		t.Errorf("after one more event: ok %v, %d events, %d engagements", after.OK, after.Events, after.Engagements)
	}
	if after.Head == first.Head || !hexHash.MatchString(after.Head) {
		t.Errorf("head %s after a new event, was %s: it must change", after.Head, first.Head)
	}
}

// rawJetStream is a plain JetStream client on the embedded server of ts,
// which must listen for clients; it closes before the server does.
func rawJetStream(t *testing.T, ts *testServer) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(ts.store.ClientURL())
	if err != nil {
		t.Fatalf("connect to %q: %v", ts.store.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Messages published around the API are reported by verify at their exact
// sequence, are not folded, and neither stop the API nor block later writes
// to the engagement they name.
func TestForgedMessages(t *testing.T) {
	forgedRenewal := func(id string) (string, []byte) {
		subject := "engagements.agreement." + id + ".renewed"
		payload, err := eventstore.Encode(domain.Event{
			ID: newID(), Type: domain.AgreementRenewed, EngagementID: id, Kind: domain.KindAgreement, Version: 3,
			OccurredAt: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), RecordedAt: time.Now().UTC(), Actor: "mallory",
			Data: json.RawMessage(`{"renewed_on":"2019-01-01","expires_on":"2030-01-01"}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		return subject, payload
	}
	tests := []struct {
		name string
		// forge builds the message for the engagement, whose head hash is given.
		forge   func(id, head string) *nats.Msg
		counter string // the /readyz counter that counts the message
		// exported says whether the export shows the message: it leaves out
		// only messages that fail to decode or fail their own hash check.
		exported bool
	}{
		{"CloudEvent without a hash header", func(id, _ string) *nats.Msg {
			subject, payload := forgedRenewal(id)
			return &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{}}
		}, "undecodable", false},
		{"hash header that does not match the payload", func(id, head string) *nats.Msg {
			subject, payload := forgedRenewal(id)
			msg := &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{}}
			msg.Header.Set(eventstore.HeaderPrevHash, head)
			msg.Header.Set(eventstore.HeaderHash, eventstore.ChainHash(head, subject, []byte("{}")))
			return msg
		}, "undecodable", false},
		{"correct hash, wrong prev_hash", func(id, _ string) *nats.Msg {
			subject, payload := forgedRenewal(id)
			wrong := strings.Repeat("0", 64)
			msg := &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{}}
			msg.Header.Set(eventstore.HeaderPrevHash, wrong)
			msg.Header.Set(eventstore.HeaderHash, eventstore.ChainHash(wrong, subject, payload))
			return msg
		}, "rejected", true},
		{"garbage bytes", func(id, _ string) *nats.Msg {
			return &nats.Msg{Subject: "engagements.agreement." + id + ".renewed", Data: []byte("not json")}
		}, "undecodable", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServerWith(t, eventstore.Config{NATSListen: "127.0.0.1:-1"})
			js := rawJetStream(t, ts)
			id := ts.create(t, `{"kind":"agreement","title":"MOU","parties":["IOM","WHO"],"occurred_at":"2017-01-01"}`)
			ts.appendEvent(t, id, `{"type":"agreement.signed","occurred_at":"2018-03-01","data":{"signed_on":"2018-03-01"}}`)
			before := ts.state(t, id)
			hist := ts.get(t, "/v1/engagements/"+id+"/history")
			head := decode[struct{ Events []logEvent }](t, hist).Events[1].Hash
			clean := ts.verify(t)

			msg := tt.forge(id, head)
			msg.Subject = eventstore.IntakeSubject(msg.Subject) // stored under the forged subject
			ack, err := js.PublishMsg(t.Context(), msg)
			if err != nil {
				t.Fatalf("publish the forged message: %v", err)
			}
			forged := ack.Sequence
			if err := ts.proj.WaitFor(t.Context(), forged); err != nil {
				t.Fatal(err)
			}

			r := ts.get(t, "/readyz")
			if r.status != http.StatusOK {
				t.Fatalf("/readyz after the forged message: %s", r)
			}
			if n := decode[map[string]any](t, r)[tt.counter]; n != float64(1) {
				t.Errorf("/readyz %s = %v, want 1: %s", tt.counter, n, r.body)
			}
			if after := ts.state(t, id); after.Status != before.Status || after.Version != 2 || after.RenewedOn != "" ||
				after.ExpiresOn != "" {
				t.Errorf("state after the forged renewal: status %s, version %d, renewed_on %q, expires_on %q; want %s, 2, none",
					after.Status, after.Version, after.RenewedOn, after.ExpiresOn, before.Status)
			}
			if h := ts.history(t, id); len(h) != 2 {
				t.Errorf("history has %d events after the forged message, want 2", len(h))
			}
			if p := decode[logPage](t, ts.get(t, "/v1/events")); slices.Contains(logSeqs(p.Events), forged) {
				t.Errorf("the global log shows the forged sequence %d", forged)
			}

			rep := ts.verify(t)
			if rep.OK || len(rep.Problems) != 1 || rep.Problems[0].Sequence != forged {
				t.Fatalf("verify: ok %v, problems %+v; want exactly one at sequence %d", rep.OK, rep.Problems, forged)
			}
			if rep.Events != 3 || rep.Engagements != 1 || rep.LastSequence != forged {
				t.Errorf("verify: %d events, %d engagements, last %d; want 3, 1, %d", rep.Events, rep.Engagements,
					rep.LastSequence, forged)
			}
			if rep.Head != clean.Head {
				t.Errorf("verify head moved from %s to %s, but the forged message is no valid event", clean.Head, rep.Head)
			}

			// The API goes on writing to the engagement, continuing its
			// real chain past the forged message.
			a := ts.appendEvent(t, id, note("after the forgery"), "If-Match", etag(2))
			if a.Version != 3 || a.Sequence != forged+1 {
				t.Errorf("append after the forgery: version %d sequence %d, want 3 and %d", a.Version, a.Sequence, forged+1)
			}
			rep = ts.verify(t)
			if len(rep.Problems) != 1 || rep.Problems[0].Sequence != forged || rep.Events != 4 {
				t.Errorf("verify after a later write: %d events, problems %+v; want 4 events and only the forged one",
					rep.Events, rep.Problems)
			}

			r = ts.get(t, "/v1/events/export")
			var exported []uint64
			for _, l := range nonEmptyLines(r.body) {
				var e logEvent
				if err := json.Unmarshal(l, &e); err != nil {
					t.Fatalf("export line: %v: %s", err, l)
				}
				exported = append(exported, e.Sequence)
			}
			want := []uint64{1, 2, forged + 1}
			if tt.exported {
				want = []uint64{1, 2, forged, forged + 1}
			}
			if !slices.Equal(exported, want) {
				t.Errorf("export has sequences %v, want %v", exported, want)
			}
		})
	}
}

func nonEmptyLines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

func TestExport(t *testing.T) {
	ts := newTestServer(t)
	want := seedPortfolio(t, ts)
	logged := decode[logPage](t, ts.get(t, "/v1/events")).Events

	t.Run("ndjson", func(t *testing.T) {
		r := ts.get(t, "/v1/events/export?format=ndjson")
		if r.status != http.StatusOK {
			t.Fatalf("export: %s", r)
		}
		if mt := mediaType(r.header); mt != "application/x-ndjson" {
			t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
		}
		checkAttachment(t, r, ".ndjson")
		lines := nonEmptyLines(r.body)
		if len(lines) != len(want) || !bytes.HasSuffix(r.body, []byte("\n")) {
			t.Fatalf("%d lines, want %d, each ending in a newline: %s", len(lines), len(want), r.body)
		}
		for i, l := range lines {
			var e logEvent
			if err := json.Unmarshal(l, &e); err != nil {
				t.Fatalf("line %d: %v: %s", i+1, err, l)
			}
			if e.Sequence != logged[i].Sequence || e.ID != logged[i].ID || e.Hash != logged[i].Hash ||
				e.EngagementID != logged[i].EngagementID || e.Type != logged[i].Type || string(e.Data) != string(logged[i].Data) {
				t.Errorf("line %d = %s; the global log has %+v", i+1, l, logged[i])
			}
		}
		if r := ts.get(t, "/v1/events/export"); !bytes.Equal(r.body, ts.get(t, "/v1/events/export?format=ndjson").body) {
			t.Errorf("export without format is not the NDJSON export")
		}
	})

	t.Run("csv", func(t *testing.T) {
		r := ts.get(t, "/v1/events/export?format=csv")
		if r.status != http.StatusOK {
			t.Fatalf("export: %s", r)
		}
		if mt := mediaType(r.header); mt != "text/csv" {
			t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
		}
		checkAttachment(t, r, ".csv")
		rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if err != nil {
			t.Fatalf("the export is not CSV: %v", err)
		}
		header := []string{"sequence", "event_id", "engagement_id", "kind", "type", "occurred_at", "recorded_at",
			"actor", "hash", "data"}
		if len(rows) == 0 || !slices.Equal(rows[0], header) {
			t.Fatalf("header %v, want %v", rows[:min(1, len(rows))], header)
		}
		if len(rows)-1 != len(want) {
			t.Fatalf("%d rows, want %d", len(rows)-1, len(want))
		}
		for i, row := range rows[1:] {
			e := logged[i]
			if row[0] != strconv.FormatUint(e.Sequence, 10) || row[1] != e.ID || row[2] != e.EngagementID ||
				row[3] != e.Kind || row[4] != e.Type || row[7] != e.Actor || row[8] != e.Hash {
				t.Errorf("row %d = %v; the global log has %+v", i+1, row, e)
			}
			for col, v := range map[int]time.Time{5: e.OccurredAt, 6: e.RecordedAt} {
				if got, err := time.Parse(time.RFC3339Nano, row[col]); err != nil || !got.Equal(v) {
					t.Errorf("row %d %s = %q (%v), want %v", i+1, header[col], row[col], err, v)
				}
			}
			if !json.Valid([]byte(row[9])) || !strings.HasPrefix(row[9], "{") {
				t.Errorf("row %d data is not a JSON object: %q", i+1, row[9])
			} else if !jsonEqual(t, []byte(row[9]), e.Data) {
				t.Errorf("row %d data %s, the global log has %s", i+1, row[9], e.Data)
			}
		}
	})

	filters := []struct {
		name, query string
		keep        func(written) bool
	}{
		{"everything", "", all},
		{"kind", "kind=agreement", func(w written) bool { return w.kind == "agreement" }},
		{"exact type", "type=engagement.noted", func(w written) bool { return w.typ == "engagement.noted" }},
		{"type prefix", "type=agreement.*", func(w written) bool { return strings.HasPrefix(w.typ, "agreement.") }},
		{"kind and type prefix", "kind=policy&type=engagement.*", func(w written) bool {
			return w.kind == "policy" && w.typ == "engagement.recorded"
		}},
		{"from a sequence", "from=3", func(w written) bool { return w.seq >= 3 }},
		{"to a sequence", "to=4", func(w written) bool { return w.seq <= 4 }},
		{"from and to sequences", "from=3&to=5", func(w written) bool { return w.seq >= 3 && w.seq <= 5 }},
		{"from sequence 1", "from=1", all},
		{"to past the end", "to=1000", all},
		{"from past the end", "from=1000", func(written) bool { return false }},
		{"from a date", "from=2019-05-28", func(w written) bool { return w.occurred >= "2019-05-28" }},
		{"to a date includes that day", "to=2019-05-28", func(w written) bool { return w.occurred <= "2019-05-28" }},
		{"between dates", "from=2018-01-01&to=2020-01-01", func(w written) bool {
			return w.occurred >= "2018-01-01" && w.occurred <= "2020-01-01"
		}},
		{"from an RFC 3339 time", "from=" + url.QueryEscape("2020-01-01T00:00:01Z"), func(w written) bool {
			return w.occurred > "2020-01-01"
		}},
		{"date and kind and type", "from=2018-01-01&kind=agreement&type=agreement.*", func(w written) bool {
			return w.occurred >= "2018-01-01" && w.kind == "agreement" && strings.HasPrefix(w.typ, "agreement.")
		}},
	}
	for _, f := range filters {
		t.Run(f.name, func(t *testing.T) {
			w := seqsWhere(want, f.keep)
			r := ts.get(t, "/v1/events/export?format=ndjson&"+f.query)
			if r.status != http.StatusOK {
				t.Fatalf("export ?%s: %s", f.query, r)
			}
			got := []uint64{}
			for _, l := range nonEmptyLines(r.body) {
				var e logEvent
				if err := json.Unmarshal(l, &e); err != nil {
					t.Fatalf("%v: %s", err, l)
				}
				got = append(got, e.Sequence)
			}
			if !slices.Equal(got, w) {
				t.Errorf("ndjson ?%s: sequences %v, want %v", f.query, got, w)
			}

			r = ts.get(t, "/v1/events/export?format=csv&"+f.query)
			rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
			if r.status != http.StatusOK || err != nil || len(rows) == 0 {
				t.Fatalf("csv ?%s: %v: %s", f.query, err, r)
			}
			got = []uint64{}
			for _, row := range rows[1:] {
				n, _ := strconv.ParseUint(row[0], 10, 64)
				got = append(got, n)
			}
			if !slices.Equal(got, w) {
				t.Errorf("csv ?%s: sequences %v, want %v", f.query, got, w)
			}
		})
	}

	for _, bad := range []struct{ query, field string }{
		{"format=xml", "format"},
		{"format=CSV", "format"},
		{"from=yesterday", "from"},
		{"from=-1", "from"},
		{"to=0", "to"},
		{"to=2020-02-30", "to"},
		{"kind=treaty", "kind"},
		{"type=agreement.bogus", "type"},
		{"type=treaty.*", "type"},
	} {
		t.Run("400 "+bad.query, func(t *testing.T) {
			r := ts.get(t, "/v1/events/export?"+bad.query)
			if r.status != http.StatusBadRequest {
				t.Fatalf("export ?%s: %s, want 400", bad.query, r)
			}
			checkProblem(t, r, bad.field)
			if cd := r.header.Get("Content-Disposition"); cd != "" {
				t.Errorf("a refused export still sends Content-Disposition %q", cd)
			}
		})
	}
}

func checkAttachment(t *testing.T, r response, ext string) {
	t.Helper()
	cd := r.header.Get("Content-Disposition")
	if !strings.HasPrefix(cd, "attachment") || !strings.Contains(cd, `filename="`) || !strings.Contains(cd, ext+`"`) {
		t.Errorf("Content-Disposition %q, want an attachment with a %s file name", cd, ext)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		return false
	}
	if err := json.Unmarshal(b, &y); err != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// History shows, on the corrected event, the ids of the corrections that
// correct it; the event itself stays as it was recorded.
func TestHistoryShowsCorrectedBy(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("MOU"))
	sign := ts.appendEvent(t, id, signed) // signed_on 2020-01-15
	first := ts.appendEvent(t, id, fmt.Sprintf(
		`{"type":"engagement.corrected","data":{"corrects":%q,"reason":"wrong day","signed_on":"2020-01-16"}}`, sign.ID))
	ts.appendEvent(t, id, note("unrelated"))
	second := ts.appendEvent(t, id, fmt.Sprintf(
		`{"type":"engagement.corrected","data":{"corrects":%q,"reason":"wrong day again","signed_on":"2020-01-17"}}`, sign.ID))

	r := ts.get(t, "/v1/engagements/"+id+"/history")
	h := decode[struct{ Events []logEvent }](t, r).Events
	if len(h) != 5 {
		t.Fatalf("history has %d events, want 5: %s", len(h), r.body)
	}
	want := map[string][]string{sign.ID: {first.ID, second.ID}}
	for _, e := range h {
		if !slices.Equal(e.CorrectedBy, want[e.ID]) {
			t.Errorf("%s %s: corrected_by %v, want %v", e.Type, e.ID, e.CorrectedBy, want[e.ID])
		}
	}
	if h[1].ID != sign.ID || !jsonEqual(t, h[1].Data, []byte(`{"signed_on":"2020-01-15"}`)) {
		t.Errorf("the corrected event changed: %s %s", h[1].ID, h[1].Data)
	}
	if e := ts.state(t, id); e.SignedOn != "2020-01-17" {
		t.Errorf("signed_on %q, want the corrected 2020-01-17", e.SignedOn)
	}
	// The global log shows the same.
	for _, e := range decode[logPage](t, ts.get(t, "/v1/events")).Events {
		if !slices.Equal(e.CorrectedBy, want[e.ID]) {
			t.Errorf("global log %s %s: corrected_by %v, want %v", e.Type, e.ID, e.CorrectedBy, want[e.ID])
		}
	}
}
