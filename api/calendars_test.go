package api_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apognu/gocal"
	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
)

// syncBuffer is a log destination that handlers on many goroutines write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// feedServer is the API with tokens and calendar feeds on, its logs
// (every level) kept in logs.
type feedServer struct {
	*authServer
	logs *syncBuffer
}

func newFeedServer(t *testing.T, options ...api.Option) *feedServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := buildServer(t, setup{tokens: true, calendars: true, logger: log, options: options})
	return &feedServer{authServer: &authServer{testServer: b.testServer, tokens: b.tokens, admin: b.admin}, logs: logs}
}

// createdFeed is POST /v1/calendars' answer.
type createdFeed struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Owner  string `json:"owner"`
	Kind   string `json:"kind"`
	Party  string `json:"party"`
	Within string `json:"within"`
	URL    string `json:"url"`
}

// newFeed creates a feed as token with body ("" for none); anything but
// 201 fails.
func (fs *feedServer) newFeed(t *testing.T, token, body string) createdFeed {
	t.Helper()
	r := fs.post(t, "/v1/calendars", body, bearer(token)...)
	if r.status != http.StatusCreated {
		t.Fatalf("create feed %s: %s", body, r)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store (the answer holds the secret)", cc)
	}
	f := decode[createdFeed](t, r)
	prefix := fs.URL + "/calendars/"
	secret, ok := strings.CutSuffix(strings.TrimPrefix(f.URL, prefix), ".ics")
	if !strings.HasPrefix(f.URL, prefix) || !ok || len(secret) != calendars.SecretLength ||
		strings.Trim(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Fatalf("feed url = %q, want %s<%d base64url characters>.ics", f.URL, prefix, calendars.SecretLength)
	}
	if domain.CheckID(f.ID) != nil {
		t.Fatalf("feed id = %q", f.ID)
	}
	return f
}

// fetch GETs a feed's URL without any Authorization header.
func (fs *feedServer) fetch(t *testing.T, url string) response {
	t.Helper()
	return fs.fetchWith(t, url)
}

// fetchWith is fetch with header fields (name, value pairs).
func (fs *feedServer) fetchWith(t *testing.T, url string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	r, err := fs.send(req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// parsed is a feed read by gocal, an iCalendar parser independent of the
// library that wrote it.
type parsed struct {
	events  []gocal.Event
	calName string
}

// parseFeed checks a 200 text/calendar answer and parses it with gocal.
func parseFeed(t *testing.T, r response) parsed {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("feed: %s", r)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/calendar; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if !bytes.Contains(r.body, []byte("\r\n")) || bytes.Contains(bytes.ReplaceAll(r.body, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("lines are not CRLF-terminated:\n%s", r.body)
	}
	p := gocal.NewParser(bytes.NewReader(r.body))
	start, end := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	p.Start, p.End = &start, &end
	if err := p.Parse(); err != nil {
		t.Fatalf("gocal: %v\n%s", err, r.body)
	}
	out := parsed{events: p.Events}
	// gocal does not read calendar properties: unfold and find it.
	unfolded := strings.ReplaceAll(string(r.body), "\r\n ", "")
	for line := range strings.SplitSeq(unfolded, "\r\n") {
		if v, ok := strings.CutPrefix(line, "X-WR-CALNAME:"); ok {
			out.calName = v
		}
	}
	return out
}

func (p parsed) uids() []string {
	var out []string
	for _, e := range p.events {
		out = append(out, e.Uid)
	}
	slices.Sort(out)
	return out
}

func (p parsed) byUID(uid string) (gocal.Event, bool) {
	for _, e := range p.events {
		if e.Uid == uid {
			return e, true
		}
	}
	return gocal.Event{}, false
}

// day is today plus n days, YYYY-MM-DD (UTC).
func day(n int) string { return time.Now().UTC().AddDate(0, 0, n).Format(domain.DateLayout) }

// TestCalendarFeed: a coordinator makes a feed, a calendar app (no
// Authorization) fetches it, and gocal finds one all-day event per open
// dated item: the active agreements' expiries and the scheduled meeting,
// with stable UIDs, the summary, the link and the calendar's name; not the
// terminated agreement's nor the draft's. Filters narrow it.
func TestCalendarFeed(t *testing.T) {
	fs := newFeedServer(t)
	maria := fs.mint(t, "maria", domain.RoleCoordinator)
	auditor := fs.mint(t, "audrey", domain.RoleAuditor)
	A := bearer(maria)

	mou := fs.create(t, agreement("Memorandum of Understanding IOM–WHO"), A...)
	fs.appendEvent(t, mou, fmt.Sprintf(`{"type":"agreement.signed","data":{"signed_on":"2019-01-15","expires_on":%q}}`, day(40)), A...)
	unhcr := fs.create(t, `{"kind":"agreement","title":"IOM–UNHCR data sharing; phase 2, annex","parties":["IOM","UNHCR"]}`, A...)
	fs.appendEvent(t, unhcr, fmt.Sprintf(`{"type":"agreement.signed","data":{"signed_on":"2020-01-15","expires_on":%q}}`, day(3000)), A...)
	ended := fs.create(t, agreement("Terminated letter of intent"), A...)
	fs.appendEvent(t, ended, fmt.Sprintf(`{"type":"agreement.signed","data":{"signed_on":"2020-01-15","expires_on":%q}}`, day(10)), A...)
	fs.appendEvent(t, ended, `{"type":"agreement.terminated","data":{"reason":"superseded"}}`, A...)
	fs.create(t, agreement("Draft without dates"), A...)
	wha := fs.create(t, `{"kind":"meeting","title":"World Health Assembly","parties":["IOM","WHO"]}`, A...)
	fs.appendEvent(t, wha, fmt.Sprintf(`{"type":"meeting.scheduled","data":{"starts_on":%q}}`, day(100)), A...)

	feed := fs.newFeed(t, maria, `{"name":"Maria's deadlines"}`)
	if feed.Name != "Maria's deadlines" || feed.Owner != "maria" {
		t.Errorf("feed = %+v", feed)
	}
	r := fs.fetch(t, feed.URL)
	cal := parseFeed(t, r)
	want := []string{mou + "-expiry@engagements", unhcr + "-expiry@engagements", wha + "-meeting@engagements"}
	slices.Sort(want)
	if got := cal.uids(); !slices.Equal(got, want) {
		t.Fatalf("UIDs = %v, want %v\n%s", got, want, r.body)
	}
	if cal.calName != "Maria's deadlines" {
		t.Errorf("X-WR-CALNAME = %q", cal.calName)
	}
	for _, tc := range []struct {
		uid, summary, on, link string
	}{
		{mou + "-expiry@engagements", "Expires: Memorandum of Understanding IOM–WHO", day(40), mou},
		{unhcr + "-expiry@engagements", "Expires: IOM–UNHCR data sharing; phase 2, annex", day(3000), unhcr},
		{wha + "-meeting@engagements", "Meeting: World Health Assembly", day(100), wha},
	} {
		e, _ := cal.byUID(tc.uid)
		if e.Summary != tc.summary {
			t.Errorf("%s: SUMMARY = %q, want %q", tc.uid, e.Summary, tc.summary)
		}
		if e.Start == nil || e.Start.Format(domain.DateLayout) != tc.on || e.RawStart.Params["VALUE"] != "DATE" {
			t.Errorf("%s: DTSTART = %v %+v, want the all-day %s", tc.uid, e.Start, e.RawStart, tc.on)
		}
		// DTEND is the day after (exclusive), which gocal reads as the end
		// of the day itself.
		next, _ := time.Parse(domain.DateLayout, tc.on)
		if e.RawEnd.Value != next.AddDate(0, 0, 1).Format("20060102") || e.RawEnd.Params["VALUE"] != "DATE" ||
			e.End == nil || e.End.Format(domain.DateLayout) != tc.on {
			t.Errorf("%s: DTEND = %+v (%v), want the day after %s", tc.uid, e.RawEnd, e.End, tc.on)
		}
		link := fs.URL + "/engagements/" + tc.link
		if !strings.Contains(e.Description, link) || e.URL != link {
			t.Errorf("%s: DESCRIPTION %q / URL %q lack %s", tc.uid, e.Description, e.URL, link)
		}
		if e.Stamp == nil || time.Since(*e.Stamp) > time.Minute {
			t.Errorf("%s: DTSTAMP = %v", tc.uid, e.Stamp)
		}
	}
	// UIDs are stable: a second fetch names the same events.
	if again := parseFeed(t, fs.fetch(t, feed.URL)); !slices.Equal(again.uids(), want) {
		t.Errorf("second fetch UIDs = %v", again.uids())
	}

	// A calendar app polling with the ETag gets a 304 while nothing changed.
	tag := r.header.Get("ETag")
	if len(tag) < 3 || tag[0] != '"' {
		t.Fatalf("ETag = %q", tag)
	}
	if r := fs.fetchWith(t, feed.URL, "If-None-Match", tag); r.status != http.StatusNotModified || len(r.body) != 0 {
		t.Errorf("If-None-Match with the feed's tag: %s, want 304", r)
	}
	if r := fs.fetchWith(t, feed.URL, "If-None-Match", `W/"other", `+tag); r.status != http.StatusNotModified {
		t.Errorf("If-None-Match with the tag in a list: %s, want 304", r)
	}

	// A renewal that moves the expiry moves the event, same UID; the
	// feed reads the current projection, and its tag changes.
	later := day(55)
	fs.appendEvent(t, mou, fmt.Sprintf(`{"type":"agreement.renewed","data":{"renewed_on":%q,"expires_on":%q}}`, day(0), later), A...)
	r = fs.fetchWith(t, feed.URL, "If-None-Match", tag)
	if e, ok := parseFeed(t, r).byUID(mou + "-expiry@engagements"); !ok || e.Start.Format(domain.DateLayout) != later {
		t.Errorf("after the renewal the expiry is %v (found %v), want %s", e.Start, ok, later)
	}
	if r.header.Get("ETag") == tag {
		t.Errorf("the ETag did not change with the feed")
	}

	// Filters: kind, party (case-insensitive), within.
	for _, tc := range []struct {
		body string
		want []string
	}{
		{`{"kind":"meeting"}`, []string{wha + "-meeting@engagements"}},
		{`{"party":"unhcr"}`, []string{unhcr + "-expiry@engagements"}},
		{`{"within":"365d"}`, []string{mou + "-expiry@engagements", wha + "-meeting@engagements"}},
		{`{"kind":"agreement","party":"WHO","within":"90d"}`, []string{mou + "-expiry@engagements"}},
	} {
		f := fs.newFeed(t, auditor, tc.body)
		slices.Sort(tc.want)
		if got := parseFeed(t, fs.fetch(t, f.URL)).uids(); !slices.Equal(got, tc.want) {
			t.Errorf("feed %s: UIDs = %v, want %v", tc.body, got, tc.want)
		}
	}

	// HEAD answers like GET, without a body.
	req, _ := http.NewRequest(http.MethodHead, feed.URL, nil)
	if r, err := fs.send(req); err != nil || r.status != http.StatusOK || r.header.Get("Content-Type") != calendars.ContentType {
		t.Errorf("HEAD: %v %v", r, err)
	}
}

// TestCalendarFeedOwnership: the list shows one's own feeds without
// secrets; one coordinator cannot revoke another's (404, and it keeps
// working); revoking one's own is a 404 at the next fetch; an admin sees
// and revokes any; a revoked token's feeds stop at once; subscribers may not
// make feeds.
func TestCalendarFeedOwnership(t *testing.T) {
	fs := newFeedServer(t)
	maria := fs.mint(t, "maria", domain.RoleCoordinator)
	li := fs.mint(t, "li", domain.RoleCoordinator)
	sub := fs.mint(t, "hooks", domain.RoleSubscriber)

	mf := fs.newFeed(t, maria, "")
	if mf.Name != calendars.DefaultName {
		t.Errorf("default name = %q", mf.Name)
	}
	lf := fs.newFeed(t, li, `{"name":"Li"}`)
	secretOf := func(f createdFeed) string {
		return strings.TrimSuffix(strings.TrimPrefix(f.URL, fs.URL+"/calendars/"), ".ics")
	}

	list := func(token string) []createdFeed {
		t.Helper()
		r := fs.get(t, "/v1/calendars", bearer(token)...)
		if r.status != http.StatusOK {
			t.Fatalf("list: %s", r)
		}
		if bytes.Contains(r.body, []byte(secretOf(mf))) || bytes.Contains(r.body, []byte(secretOf(lf))) ||
			bytes.Contains(r.body, []byte(`"url"`)) {
			t.Errorf("the list shows a secret: %s", r.body)
		}
		return decode[struct {
			Items []createdFeed `json:"items"`
		}](t, r).Items
	}
	ids := func(fs []createdFeed) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.ID)
		}
		return out
	}
	if got := ids(list(maria)); !slices.Equal(got, []string{mf.ID}) {
		t.Errorf("maria's list = %v, want [%s]", got, mf.ID)
	}
	if got := ids(list(fs.admin)); !slices.Equal(got, []string{mf.ID, lf.ID}) {
		t.Errorf("admin's list = %v", got)
	}

	// Li cannot revoke Maria's feed: as if it did not exist.
	if r := fs.request(t, http.MethodDelete, "/v1/calendars/"+mf.ID, "", bearer(li)...); r.status != http.StatusNotFound {
		t.Errorf("li revokes maria's feed: %s, want 404", r)
	}
	if r := fs.fetch(t, mf.URL); r.status != http.StatusOK {
		t.Errorf("maria's feed after li's attempt: %s", r)
	}
	for _, tc := range []struct {
		name, path string
		token      string
		want       int
	}{
		{"not an id", "/v1/calendars/feed-1", maria, http.StatusBadRequest},
		{"unknown id", "/v1/calendars/" + newID(), maria, http.StatusNotFound},
		{"subscriber", "/v1/calendars/" + mf.ID, sub, http.StatusForbidden},
		{"no token", "/v1/calendars/" + mf.ID, "", http.StatusUnauthorized},
	} {
		var h []string
		if tc.token != "" {
			h = bearer(tc.token)
		}
		if r := fs.request(t, http.MethodDelete, tc.path, "", h...); r.status != tc.want {
			t.Errorf("%s: DELETE %s = %s, want %d", tc.name, tc.path, r, tc.want)
		}
	}
	if r := fs.post(t, "/v1/calendars", "", bearer(sub)...); r.status != http.StatusForbidden {
		t.Errorf("a subscriber makes a feed: %s, want 403", r)
	}

	// Maria revokes hers: 404 at once, and it is gone from her list.
	if r := fs.request(t, http.MethodDelete, "/v1/calendars/"+mf.ID, "", bearer(maria)...); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %s", r)
	}
	if r := fs.fetch(t, mf.URL); r.status != http.StatusNotFound || mediaType(r.header) != "application/problem+json" {
		t.Errorf("revoked feed: %s, want a 404 problem", r)
	}
	if got := list(maria); len(got) != 0 {
		t.Errorf("maria's list after revoking = %v", got)
	}
	if r := fs.request(t, http.MethodDelete, "/v1/calendars/"+mf.ID, "", bearer(maria)...); r.status != http.StatusNotFound {
		t.Errorf("revoke twice: %s, want 404", r)
	}

	// Li's token is revoked: her feed stops with it, and a new token of the
	// same name does not bring it back.
	if r := fs.fetch(t, lf.URL); r.status != http.StatusOK {
		t.Fatalf("li's feed: %s", r)
	}
	if r := fs.request(t, http.MethodDelete, "/v1/tokens/li", "", bearer(fs.admin)...); r.status != http.StatusNoContent {
		t.Fatalf("revoke li's token: %s", r)
	}
	if r := fs.fetch(t, lf.URL); r.status != http.StatusNotFound {
		t.Errorf("feed of a revoked token: %s, want 404", r)
	}
	fs.mint(t, "li", domain.RoleCoordinator)
	if r := fs.fetch(t, lf.URL); r.status != http.StatusNotFound {
		t.Errorf("feed of a revoked token, its name given again: %s, want 404", r)
	}
	// The admin revokes it anyway.
	if r := fs.request(t, http.MethodDelete, "/v1/calendars/"+lf.ID, "", bearer(fs.admin)...); r.status != http.StatusNoContent {
		t.Errorf("admin revokes li's feed: %s", r)
	}
}

// TestCalendarFeedWrongSecrets: whatever stands where the secret goes,
// if it is not a live feed's it is the same 404.
func TestCalendarFeedWrongSecrets(t *testing.T) {
	fs := newFeedServer(t)
	maria := fs.mint(t, "maria", domain.RoleCoordinator)
	f := fs.newFeed(t, maria, "")
	secret := strings.TrimSuffix(strings.TrimPrefix(f.URL, fs.URL+"/calendars/"), ".ics")
	flip := []byte(secret)
	flip[len(flip)-1] ^= 1 // same id, wrong random part
	if flip[len(flip)-1] == '-' || flip[len(flip)-1] == '_' {
		flip[len(flip)-1] = 'A'
	}
	other := []byte(secret)
	other[3] = 'z' // another id
	for _, tc := range []struct{ name, path string }{
		{"no secret", "/calendars/.ics"},
		{"not base64url", "/calendars/" + strings.Repeat("!", calendars.SecretLength) + ".ics"},
		{"short", "/calendars/" + secret[:40] + ".ics"},
		{"long", "/calendars/" + secret + "AAAA.ics"},
		{"wrong random part", "/calendars/" + string(flip) + ".ics"},
		{"another id", "/calendars/" + string(other) + ".ics"},
		{"no .ics", "/calendars/" + secret},
		{"other suffix", "/calendars/" + secret + ".json"},
		{"the feed id", "/calendars/" + f.ID + ".ics"},
		{"huge", "/calendars/" + strings.Repeat("A", 4000) + ".ics"},
	} {
		r := fs.get(t, tc.path)
		if r.status != http.StatusNotFound || mediaType(r.header) != "application/problem+json" {
			t.Errorf("%s: %s, want a 404 problem", tc.name, r)
		}
	}
	// The right one, with a bearer token or without, works.
	if r := fs.fetch(t, f.URL); r.status != http.StatusOK {
		t.Errorf("right secret: %s", r)
	}
}

// TestCalendarFeedBadRequests: what a feed cannot be made from is a 4xx
// problem naming the field, and stores nothing.
func TestCalendarFeedBadRequests(t *testing.T) {
	fs := newFeedServer(t)
	maria := fs.mint(t, "maria", domain.RoleCoordinator)
	for _, tc := range []struct {
		name, body string
		header     []string
		status     int
		field      string
	}{
		{"within without d", `{"within":"90"}`, nil, 422, "within"},
		{"within zero", `{"within":"0d"}`, nil, 422, "within"},
		{"within negative", `{"within":"-5d"}`, nil, 422, "within"},
		{"within too far", `{"within":"99999d"}`, nil, 422, "within"},
		{"within in weeks", `{"within":"3w"}`, nil, 422, "within"},
		{"unknown kind", `{"kind":"treaty"}`, nil, 422, "kind"},
		{"long name", `{"name":"` + strings.Repeat("n", calendars.MaxNameLength+1) + `"}`, nil, 422, "name"},
		{"control in name", `{"name":"a\u0007b"}`, nil, 422, "name"},
		{"long party", `{"party":"` + strings.Repeat("p", calendars.MaxPartyLength+1) + `"}`, nil, 422, "party"},
		{"name a number", `{"name":5}`, nil, 400, "name"},
		{"unknown field", `{"colour":"red"}`, nil, 400, "colour"},
		{"not an object", `[]`, nil, 400, ""},
		{"not JSON", `{"name":`, nil, 400, ""},
		{"wrong media type", `name=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, ""},
	} {
		h := append(bearer(maria), tc.header...)
		r := fs.post(t, "/v1/calendars", tc.body, h...)
		if r.status != tc.status || mediaType(r.header) != "application/problem+json" {
			t.Errorf("%s: %s, want %d problem", tc.name, r, tc.status)
			continue
		}
		if tc.field != "" && !bytes.Contains(r.body, []byte(`"field":"`+tc.field+`"`)) {
			t.Errorf("%s: the problem does not name %s: %s", tc.name, tc.field, r.body)
		}
	}
	if r := fs.get(t, "/v1/calendars", bearer(fs.admin)...); !bytes.Equal(bytes.TrimSpace(r.body), []byte(`{"items":[]}`)) {
		t.Errorf("after refused requests the feeds are %s, want none", r.body)
	}
	// At most MaxPerOwner each.
	for range calendars.MaxPerOwner {
		fs.newFeed(t, maria, "")
	}
	if r := fs.post(t, "/v1/calendars", "", bearer(maria)...); r.status != http.StatusConflict {
		t.Errorf("feed %d: %s, want 409", calendars.MaxPerOwner+1, r)
	}
}

// TestCalendarFeedSecretNotLogged: the request log names a feed's path
// with the secret replaced, on success, 404 and 429 alike; no log line
// holds the secret.
func TestCalendarFeedSecretNotLogged(t *testing.T) {
	fs := newFeedServer(t, api.WithRateLimit(0, 0))
	maria := fs.mint(t, "maria", domain.RoleCoordinator)
	f := fs.newFeed(t, maria, "")
	secret := strings.TrimSuffix(strings.TrimPrefix(f.URL, fs.URL+"/calendars/"), ".ics")
	fs.fetch(t, f.URL)
	fs.get(t, "/calendars/"+secret+"x.ics")
	fs.get(t, "/calendars/"+secret)
	if r := fs.request(t, http.MethodDelete, "/v1/calendars/"+f.ID, "", bearer(maria)...); r.status != http.StatusNoContent {
		t.Fatal(r)
	}
	fs.fetch(t, f.URL)
	logs := fs.logs.String()
	// The random part alone must not appear either.
	if strings.Contains(logs, secret) || strings.Contains(logs, secret[22:]) {
		t.Fatalf("the logs hold the feed's secret:\n%s", logs)
	}
	if n := strings.Count(logs, "path=/calendars/[redacted]"); n != 4 {
		t.Errorf("%d request lines with the redacted path, want 4:\n%s", n, logs)
	}
	if !strings.Contains(logs, "path=/v1/calendars/"+f.ID) {
		t.Errorf("the revocation's line lost its id:\n%s", logs)
	}
}

// TestCalendarFeedRateLimit: fetching feeds is limited per client address,
// right secrets and wrong ones alike, with Retry-After.
func TestCalendarFeedRateLimit(t *testing.T) {
	b := buildServer(t, setup{tokens: true, calendars: true, feedRate: 0.001, feedBurst: 3})
	fs := &feedServer{authServer: &authServer{testServer: b.testServer, tokens: b.tokens, admin: b.admin}}
	f := fs.newFeed(t, fs.admin, "")
	for i, url := range []string{f.URL, fs.URL + "/calendars/nothing.ics", f.URL} {
		if r := fs.fetch(t, url); r.status == http.StatusTooManyRequests {
			t.Fatalf("fetch %d: %s, within the burst", i+1, r)
		}
	}
	r := fs.fetch(t, f.URL)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("fetch 4: %s (Retry-After %q), want 429 with Retry-After", r, r.header.Get("Retry-After"))
	}
	// The API itself (tokens) is not limited by it.
	if r := fs.get(t, "/v1/calendars", bearer(fs.admin)...); r.status != http.StatusOK {
		t.Errorf("API after the feed limit: %s", r)
	}
}
