package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// erasureFixture is a meeting with a delegation, a focal point and an
// action item, recorded through the API with tokens and webhooks on.
type erasureFixture struct {
	*webhookServer
	coordinator string
	meeting     string
}

const (
	delegate  = "Dr Jane Roe, Ministry of Health"
	focalName = "Ana Lopez"
	focalMail = "ana.lopez@who.int"
	owner     = "Jane Roe"
)

func newErasureFixture(t *testing.T) *erasureFixture {
	t.Helper()
	f := &erasureFixture{webhookServer: newWebhookServer(t)}
	f.coordinator = f.mint(t, "coord", domain.RoleCoordinator)
	auth := bearer(f.coordinator)
	f.meeting = f.create(t, `{"kind":"meeting","title":"WHA77","parties":["IOM","WHO"],"level":"ministerial","location":"Geneva"}`, auth...)
	f.appendEvent(t, f.meeting, `{"type":"meeting.scheduled","data":{"starts_on":"2024-05-27"}}`, auth...)
	f.appendEvent(t, f.meeting, `{"type":"engagement.focal_point_assigned","data":{"party":"WHO","name":"`+focalName+`","email":"`+focalMail+`"}}`, auth...)
	f.appendEvent(t, f.meeting, `{"type":"meeting.attended","data":{"role":"speaker","delegation":"`+delegate+`"}}`, auth...)
	f.appendEvent(t, f.meeting, `{"type":"engagement.action_assigned","data":{"action_id":"a1","title":"Send the report","owner":"`+owner+`","due_on":"2030-01-01"}}`, auth...)
	return f
}

// history reads the meeting's history as an admin.
func (f *erasureFixture) history(t *testing.T) []event {
	t.Helper()
	r := f.get(t, "/v1/engagements/"+f.meeting+"/history", bearer(f.admin)...)
	if r.status != http.StatusOK {
		t.Fatalf("history: %s", r)
	}
	return decode[struct {
		Events []event `json:"events"`
	}](t, r).Events
}

// personOf is the person id history shows for field of the event of type typ.
func personOf(t *testing.T, events []event, typ, field string) string {
	t.Helper()
	for _, ev := range events {
		if ev.Type != typ {
			continue
		}
		for _, p := range ev.Personal {
			if p.Field == field {
				return p.PersonID
			}
		}
	}
	t.Fatalf("no personal field %s on %s: %+v", field, typ, events)
	return ""
}

func dataOf(t *testing.T, events []event, typ string) map[string]any {
	t.Helper()
	for _, ev := range events {
		if ev.Type == typ {
			var m map[string]any
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no %s in history", typ)
	return nil
}

func (f *erasureFixture) verify(t *testing.T, query string) domain.Report {
	t.Helper()
	r := f.get(t, "/v1/verify"+query, bearer(f.admin)...)
	if r.status != http.StatusOK {
		t.Fatalf("verify: %s", r)
	}
	rep := decode[domain.Report](t, r)
	if !rep.OK || len(rep.Problems) > 0 {
		t.Fatalf("verify not clean: %s", r.body)
	}
	return rep
}

// rawPayloads is every payload the stream holds, byte for byte, as a raw
// NATS subscriber reads them.
func (f *erasureFixture) rawPayloads(t *testing.T) []byte {
	t.Helper()
	var all []byte
	last := f.lastSequence(t)
	for seq := uint64(1); seq <= last; seq++ {
		m, err := f.store.Message(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m.Payload...)
	}
	return all
}

func TestPersonalFieldsAreSealedOnTheStream(t *testing.T) {
	f := newErasureFixture(t)
	raw := f.rawPayloads(t)
	for _, plain := range []string{delegate, focalName, focalMail, owner} {
		if bytes.Contains(raw, []byte(plain)) {
			t.Errorf("the stream holds %q in plain text", plain)
		}
	}
	if !bytes.Contains(raw, []byte("sealed:v1:")) {
		t.Error("the stream holds no sealed value")
	}
	h := f.history(t)
	if got := dataOf(t, h, "meeting.attended")["delegation"]; got != delegate {
		t.Errorf("history delegation %v, want %q", got, delegate)
	}
	fp := dataOf(t, h, "engagement.focal_point_assigned")
	if fp["name"] != focalName || fp["email"] != focalMail {
		t.Errorf("history focal point %v", fp)
	}
	// A focal point is one person: name and e-mail under one id, the one
	// GET /v1/people finds by e-mail; the release names the same person.
	id := personOf(t, h, "engagement.focal_point_assigned", "name")
	if personOf(t, h, "engagement.focal_point_assigned", "email") != id {
		t.Error("the focal point's name and e-mail have different person ids")
	}
	r := f.get(t, "/v1/people?email="+strings.ToUpper(focalMail), bearer(f.admin)...)
	if r.status != http.StatusOK || decode[domain.Person](t, r).ID != id {
		t.Errorf("find by e-mail: %s (want %s)", r, id)
	}
	// A correction of the focal point is sealed for the same person, the
	// new e-mail too.
	var assigned string
	for _, ev := range h {
		if ev.Type == "engagement.focal_point_assigned" {
			assigned = ev.ID
		}
	}
	const corrected = "ana.m.lopez@who.int"
	f.appendEvent(t, f.meeting, `{"type":"engagement.corrected","data":{"corrects":"`+assigned+`","reason":"typo","fields":{"email":"`+corrected+`"}}}`, bearer(f.coordinator)...)
	h = f.history(t)
	if got := personOf(t, h, "engagement.corrected", "fields.email"); got != id {
		t.Errorf("the correction names person %s, the assignment %s", got, id)
	}
	if c := dataOf(t, h, "engagement.corrected")["fields"].(map[string]any); c["email"] != corrected {
		t.Errorf("correction opened as %v", c)
	}
	if bytes.Contains(f.rawPayloads(t), []byte(corrected)) {
		t.Error("the stream holds the corrected e-mail in plain text")
	}
	f.appendEvent(t, f.meeting, `{"type":"engagement.focal_point_released","data":{"party":"WHO","name":"`+focalName+`"}}`, bearer(f.coordinator)...)
	if got := personOf(t, f.history(t), "engagement.focal_point_released", "name"); got != id {
		t.Errorf("the release names person %s, the assignment %s", got, id)
	}
	// A client may not enter what reads as sealed or erased.
	// As JSON strings, also spelt with escapes.
	for _, v := range []string{strconv.Quote(domain.Erased), strconv.Quote("sealed:v1:p0:1:AA"), `"\u005berased]"`, `"sealed\u003av1:p0:1:AA"`} {
		r := f.post(t, "/v1/engagements/"+f.meeting+"/events", fmt.Sprintf(`{"type":"engagement.noted","data":{"note":%s}}`, v), bearer(f.coordinator)...)
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("note %q: %s, want 422", v, r)
		}
	}
}

func TestErasePersonRequests(t *testing.T) {
	f := newErasureFixture(t)
	id := personOf(t, f.history(t), "meeting.attended", "delegation")
	before := f.lastSequence(t)
	for _, tc := range []struct {
		name   string
		path   string
		token  string
		status int
	}{
		{"a coordinator erases → 403", "/v1/people/" + id + "/erase", f.coordinator, http.StatusForbidden},
		{"no token → 401", "/v1/people/" + id + "/erase", "", http.StatusUnauthorized},
		{"unknown person → 404", "/v1/people/p" + strings.Repeat("0", 32) + "/erase", f.admin, http.StatusNotFound},
		{"not a person id → 404", "/v1/people/jane/erase", f.admin, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h []string
			if tc.token != "" {
				h = bearer(tc.token)
			}
			r := f.post(t, tc.path, "", h...)
			if r.status != tc.status {
				t.Fatalf("%s", r)
			}
			if ct := mediaType(r.header); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	if got := f.lastSequence(t); got != before {
		t.Fatalf("refused erasures stored %d messages", got-before)
	}
	for _, tc := range []struct {
		name, query string
		status      int
	}{
		{"neither email nor name → 400", "", http.StatusBadRequest},
		{"both → 400", "?email=a@b.org&name=A", http.StatusBadRequest},
		{"nobody of that name → 404", "?name=Nobody", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := f.get(t, "/v1/people"+tc.query, bearer(f.admin)...); r.status != tc.status {
				t.Fatalf("%s", r)
			}
		})
	}
	if r := f.get(t, "/v1/people?name="+url.QueryEscape(owner), bearer(f.coordinator)...); r.status != http.StatusForbidden {
		t.Errorf("a coordinator looks a person up: %s", r)
	}
	// The erasure event is the endpoint's alone.
	r := f.post(t, "/v1/engagements/"+f.meeting+"/events", fmt.Sprintf(`{"type":"engagement.personal_data_erased","data":{"person_id":%q,"key_version":1,"fields":["x"],"events":["y"]}}`, id), bearer(f.admin)...)
	if r.status != http.StatusUnprocessableEntity {
		t.Errorf("posting the erasure event: %s, want 422", r)
	}
}

func TestEraseADelegate(t *testing.T) {
	f := newErasureFixture(t)
	ctx := context.Background()
	h := f.history(t)
	id := personOf(t, h, "meeting.attended", "delegation")
	attendedHash, knownAt := "", ""
	for _, ev := range h {
		if ev.Type == "meeting.attended" {
			attendedHash = ev.Hash
			knownAt = url.QueryEscape(ev.RecordedAt.Format(time.RFC3339Nano))
		}
	}
	// A state as known when the attendance was recorded (but before the
	// later events): folded from events read from the stream, which the
	// windowed reads cache.
	asKnown := "/v1/engagements/" + f.meeting + "?known_at=" + knownAt
	if st := f.get(t, asKnown, bearer(f.admin)...); st.status != http.StatusOK || !bytes.Contains(st.body, []byte(delegate)) {
		t.Fatalf("state as known at the attendance, before the erasure: %s", st)
	}
	lastBefore := f.lastSequence(t)
	headBefore := f.verify(t, "").Head

	r := f.post(t, "/v1/people/"+id+"/erase", "", bearer(f.admin)...)
	if r.status != http.StatusOK {
		t.Fatalf("erase: %s", r)
	}
	erasure := decode[struct {
		Person   domain.Person
		Recorded []struct {
			EngagementID string `json:"engagement_id"`
		}
	}](t, r)
	if !erasure.Person.Erased || erasure.Person.ErasedBy != "admin" || len(erasure.Recorded) != 1 || erasure.Recorded[0].EngagementID != f.meeting {
		t.Fatalf("erasure answer %s", r.body)
	}
	if r := f.post(t, "/v1/people/"+id+"/erase", "", bearer(f.admin)...); r.status != http.StatusConflict {
		t.Errorf("erase again: %s, want 409", r)
	}

	// History: the delegation reads erased, the rest as it was; the
	// erasure is recorded, with no personal data.
	h = f.history(t)
	if got := dataOf(t, h, "meeting.attended")["delegation"]; got != domain.Erased {
		t.Errorf("delegation after erasure %v", got)
	}
	if got := dataOf(t, h, "engagement.focal_point_assigned")["name"]; got != focalName {
		t.Errorf("another person's field changed: %v", got)
	}
	for _, ev := range h {
		if ev.Type == "meeting.attended" {
			if ev.Hash != attendedHash {
				t.Errorf("the attended event's hash changed")
			}
			if len(ev.Personal) != 1 || !ev.Personal[0].Erased {
				t.Errorf("personal %+v, want the delegation marked erased", ev.Personal)
			}
		}
	}
	last := h[len(h)-1]
	if last.Type != string(domain.EngagementPersonalDataErased) || last.Actor != "admin" {
		t.Fatalf("last event %s by %s", last.Type, last.Actor)
	}
	rec := dataOf(t, h, string(domain.EngagementPersonalDataErased))
	if rec["person_id"] != id || fmt.Sprint(rec["fields"]) != "[meeting.attended delegation]" {
		t.Errorf("erasure record %v", rec)
	}
	if st := f.get(t, "/v1/engagements/"+f.meeting, bearer(f.admin)...); !bytes.Contains(st.body, []byte(`"delegation":"[erased]"`)) ||
		bytes.Contains(st.body, []byte(delegate)) {
		t.Errorf("current state after erasure: %s", st)
	}

	if st := f.get(t, asKnown, bearer(f.admin)...); st.status != http.StatusOK || !bytes.Contains(st.body, []byte(`"delegation":"[erased]"`)) ||
		bytes.Contains(st.body, []byte(delegate)) {
		t.Errorf("state as known at the attendance, after the erasure (the events cached before it): %s", st)
	}

	// Export and the raw stream: the delegate's name nowhere.
	r = f.get(t, "/v1/events/export?format=ndjson", bearer(f.admin)...)
	if r.status != http.StatusOK || bytes.Contains(r.body, []byte(delegate)) || !bytes.Contains(r.body, []byte(`"delegation":"[erased]"`)) {
		t.Errorf("export after erasure: %s", r)
	}
	if !bytes.Contains(r.body, []byte(focalName)) {
		t.Errorf("export lost another person's name")
	}
	if bytes.Contains(f.rawPayloads(t), []byte(delegate)) {
		t.Error("the stream holds the delegate in plain text")
	}

	// verify: clean, and the chain up to the erasure has the same head.
	f.verify(t, "")
	if got := f.verify(t, fmt.Sprintf("?until=%d", lastBefore)).Head; got != headBefore {
		t.Errorf("head up to sequence %d: %s after the erasure, %s before", lastBefore, got, headBefore)
	}

	// A webhook subscription replaying the stream from its start.
	sub := f.mint(t, "crm", domain.RoleSubscriber)
	recv := newHookReceiver(t, http.StatusOK)
	rs := f.post(t, "/v1/subscriptions", fmt.Sprintf(`{"url":%q,"types":["engagement.*","meeting.*"],"secret":%q,"from_sequence":1}`, recv.URL, whsec(t)), bearer(sub)...)
	if rs.status != http.StatusCreated {
		t.Fatalf("subscribe: %s", rs)
	}
	sawAttended := false
	for {
		d := recv.next(t)
		if bytes.Contains(d.body, []byte(delegate)) {
			t.Errorf("webhook replay delivers the delegate: %s", d.body)
		}
		var ce struct {
			Type   string          `json:"type"`
			Erased string          `json:"erased"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(d.body, &ce); err != nil {
			t.Fatal(err)
		}
		if ce.Type == "meeting.attended" {
			sawAttended = true
			if ce.Erased != "delegation" || !bytes.Contains(ce.Data, []byte(`"delegation":"[erased]"`)) {
				t.Errorf("replayed attendance: %s", d.body)
			}
		}
		if ce.Type == "engagement.focal_point_assigned" && !bytes.Contains(ce.Data, []byte(focalMail)) {
			t.Errorf("replayed focal point not opened: %s", d.body)
		}
		if ce.Type == string(domain.EngagementPersonalDataErased) {
			break
		}
	}
	if !sawAttended {
		t.Error("the replay skipped the attendance")
	}

	// SSE from the start of the stream.
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second) // a stream that never shows the erasure ends
	defer cancel()
	events, resp := openStream(t, sctx, f.testServer, "?after=0", bearer(sub)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SSE: %s", resp.Status)
	}
	sawAttended = false
	for ev := range events {
		if strings.Contains(ev.data, delegate) {
			t.Errorf("SSE delivers the delegate: %s", ev.data)
		}
		if ev.event == "meeting.attended" {
			sawAttended = strings.Contains(ev.data, `"delegation":"[erased]"`) && strings.Contains(ev.data, `"erased":"delegation"`)
		}
		if ev.event == string(domain.EngagementPersonalDataErased) {
			break
		}
	}
	cancel()
	if !sawAttended {
		t.Error("SSE did not show the attendance erased")
	}

	// A rebuild from scratch folds the same state, the delegation erased.
	p := projections.New(nil)
	p.UseReader(f.store)
	if err := p.Fold(ctx, f.store, nil); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Rejected != 0 || s.Undecodable != 0 {
		t.Fatalf("rebuild: %+v", s)
	}
	e, err := p.Get(ctx, f.meeting, domain.Window{})
	if err != nil {
		t.Fatal(err)
	}
	live, _ := f.proj.Get(ctx, f.meeting, domain.Window{})
	if e.Delegation() != domain.Erased || e.Hash() != live.Hash() || e.Version() != live.Version() {
		t.Errorf("rebuilt: delegation %q, hash %s version %d; live %s %d", e.Delegation(), e.Hash(), e.Version(), live.Hash(), live.Version())
	}

	// The same person mentioned again gets a new key, readable.
	f.appendEvent(t, f.meeting, `{"type":"engagement.action_assigned","data":{"action_id":"a2","title":"Follow up","owner":"`+delegate+`","due_on":"2030-01-01"}}`, bearer(f.coordinator)...)
	h = f.history(t)
	if got := h[len(h)-1]; !bytes.Contains(got.Data, []byte(delegate)) || got.Personal[0].PersonID != id {
		t.Errorf("a new mention after the erasure: %s %+v", got.Data, got.Personal)
	}
	if got := dataOf(t, h, "meeting.attended")["delegation"]; got != domain.Erased {
		t.Errorf("the new key opened the erased delegation: %v", got)
	}
}

// Writers racing on one engagement, several naming a person never seen
// before (so racing to create the person's key), keep one hash chain: each
// append is stored once, opens to what was written, and the same person
// gets one id; an erasure racing with further appends leaves verify clean.
func TestConcurrentSealedWrites(t *testing.T) {
	const writers = 16
	ts := newTestServer(t)
	id := ts.create(t, agreement("Busy MOU"))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			owner := "Shared Person"
			if i%2 == 1 {
				owner = fmt.Sprintf("Person %d", i)
			}
			body := fmt.Sprintf(`{"type":"engagement.action_assigned","data":{"action_id":"a%d","title":"Task","owner":%q,"due_on":"2030-01-01"}}`, i, owner)
			if r, err := ts.do(http.MethodPost, "/v1/engagements/"+id+"/events", body); err != nil || r.status != http.StatusCreated {
				t.Errorf("writer %d: %v %s", i, err, r)
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	h := ts.history(t, id)
	if len(h) != writers+1 {
		t.Fatalf("history has %d events, want %d", len(h), writers+1)
	}
	shared := ""
	for _, ev := range h[1:] {
		var d domain.ActionAssignedData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(d.ActionID, "a"))
		want := "Shared Person"
		if n%2 == 1 {
			want = fmt.Sprintf("Person %d", n)
		}
		if d.Owner != want || len(ev.Personal) != 1 {
			t.Fatalf("%s: owner %q, want %q; personal %+v", d.ActionID, d.Owner, want, ev.Personal)
		}
		if want == "Shared Person" {
			if shared != "" && ev.Personal[0].PersonID != shared {
				t.Errorf("Shared Person has two ids: %s and %s", shared, ev.Personal[0].PersonID)
			}
			shared = ev.Personal[0].PersonID
		}
	}
	// The erasure races with more writers.
	start = make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			if r, err := ts.do(http.MethodPost, "/v1/engagements/"+id+"/events", note(fmt.Sprintf("late %d", i))); err != nil || r.status != http.StatusCreated {
				t.Errorf("late writer %d: %v %s", i, err, r)
			}
		})
	}
	wg.Go(func() {
		<-start
		if r, err := ts.do(http.MethodPost, "/v1/people/"+shared+"/erase", ""); err != nil || r.status != http.StatusOK {
			t.Errorf("erase: %v %s", err, r)
		}
	})
	close(start)
	wg.Wait()
	r := ts.get(t, "/v1/verify")
	if rep := decode[domain.Report](t, r); !rep.OK || rep.Events != uint64(2*writers+2) {
		t.Fatalf("verify: %s", r)
	}
	for _, ev := range ts.history(t, id) {
		for _, p := range ev.Personal {
			if (p.PersonID == shared) != p.Erased {
				t.Errorf("%s: %+v", ev.Data, p)
			}
		}
	}
}
