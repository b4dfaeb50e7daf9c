package calendars_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apognu/gocal"
	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openStore opens a real embedded nats-server on a temp dir and the feed
// store on it, twice (as two instances would share the bucket).
func openStore(t *testing.T) (a, b *calendars.Store, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	es, err := eventstore.Open(ctx, eventstore.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := es.Close(); err != nil {
			t.Error(err)
		}
	})
	if a, err = calendars.Open(ctx, es.JetStream(), calendars.Config{}); err != nil {
		t.Fatal(err)
	}
	if b, err = calendars.Open(ctx, es.JetStream(), calendars.Config{}); err != nil {
		t.Fatal(err)
	}
	return a, b, es.JetStream()
}

// TestStore: a feed is found by its secret only, the bucket holds only the
// secret's digest, and a revocation through one store is seen by the other
// at the next lookup.
func TestStore(t *testing.T) {
	ctx := context.Background()
	a, b, js := openStore(t)
	secret, feed, err := a.Create(ctx, "maria", calendars.Request{Name: " MOU ", Kind: "agreement", Party: "WHO", Within: "90d"})
	if err != nil {
		t.Fatal(err)
	}
	if feed.Name != "MOU" || feed.Owner != "maria" || feed.Filter != (calendars.Filter{Kind: domain.KindAgreement, Party: "WHO", WithinDays: 90}) {
		t.Errorf("feed = %+v", feed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(raw) != 48 || len(secret) != calendars.SecretLength {
		t.Fatalf("secret %q: %d bytes, %v", secret, len(raw), err)
	}
	kv, err := js.KeyValue(ctx, calendars.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, feed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(e.Value(), []byte(secret)) || bytes.Contains(e.Value(), []byte(secret[22:])) {
		t.Fatalf("the bucket holds the secret: %s", e.Value())
	}
	got, ok, err := b.Lookup(ctx, secret)
	if err != nil || !ok || got.ID != feed.ID {
		t.Fatalf("lookup on the other store: %+v %v %v", got, ok, err)
	}
	for _, wrong := range []string{"", secret[:63], secret + "A", strings.ToUpper(secret), feed.ID,
		secret[:22] + strings.Repeat("A", 42), strings.Repeat("A", 64)} {
		if _, ok, err := b.Lookup(ctx, wrong); ok || err != nil {
			t.Errorf("lookup %q: %v %v, want not found", wrong, ok, err)
		}
	}
	if err := b.Revoke(ctx, feed.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.Lookup(ctx, secret); ok || err != nil {
		t.Errorf("after revoking on the other store: %v %v, want not found", ok, err)
	}
	if err := a.Revoke(ctx, feed.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("revoke twice: %v", err)
	}
	if err := a.Revoke(ctx, "../x"); !errors.Is(err, domain.ErrInvalidID) {
		t.Errorf("revoke a bad id: %v, want ErrInvalidID (never a KV key)", err)
	}
}

func TestParseWithin(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"1d", 1, true}, {"90d", 90, true}, {"36500d", 36500, true}, {"0d", 0, false}, {"36501d", 0, false},
		{"90", 0, false}, {"d", 0, false}, {"-1d", 0, false}, {"+1d", 0, false}, {"1.5d", 0, false},
		{"12w", 0, false}, {" 9d", 0, false}, {"9999999d", 0, false}, {"９d", 0, false},
	} {
		got, err := calendars.ParseWithin(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseWithin(%q) = %d, %v", tc.in, got, err)
		}
		if tc.ok && calendars.FormatWithin(got) != tc.in {
			t.Errorf("FormatWithin(%d) = %q", got, calendars.FormatWithin(got))
		}
	}
}

func TestRedactPath(t *testing.T) {
	id := "01a23c40-87f3-7446-bfb2-ad104b5b07b1"
	for in, want := range map[string]string{
		"/calendars/SECRET.ics":            "/calendars/[redacted]",
		"/calendars/SECRET":                "/calendars/[redacted]",
		"/x/calendars/SECRET.ics":          "/x/calendars/[redacted]",
		"/v1/calendars/" + id:              "/v1/calendars/" + id,
		"/v1/calendars/SECRET":             "/v1/calendars/[redacted]",
		"/v1/calendars/../calendars/S.ics": "/v1/calendars/[redacted]",
		"/v1/calendars":                    "/v1/calendars",
		"/v1/engagements":                  "/v1/engagements",
	} {
		if got := calendars.RedactPath(in); got != want {
			t.Errorf("RedactPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWrite: the document parses with gocal, each item one all-day event,
// text escaped (commas, semicolons, newlines) and long lines folded; a
// deadline kind the package does not name yet still gets a summary.
func TestWrite(t *testing.T) {
	id := "01a23c40-87f3-7446-bfb2-ad104b5b07b1"
	items := []projections.DatedItem{
		{Deadline: domain.Deadline{Kind: domain.DeadlineExpiry, On: "2027-01-31"}, EngagementID: id,
			Title: "MOU; IOM, WHO\nand a title long enough to be folded over more than one line of seventy-five octets",
			Kind:  domain.KindAgreement, Parties: []string{"IOM", "WHO"}},
		{Deadline: domain.Deadline{Kind: domain.DeadlineNotice, On: "2026-11-02"}, EngagementID: id, Title: "MOU",
			Kind: domain.KindAgreement},
		{Deadline: domain.Deadline{Kind: domain.DeadlineAction, On: "2026-12-15", Ref: "a-1", Title: "Send the draft"},
			EngagementID: id, Title: "MOU", Kind: domain.KindAgreement},
		{Deadline: domain.Deadline{Kind: "review_due", On: "2026-12-20"}, EngagementID: id, Title: "MOU", Kind: domain.KindAgreement},
	}
	var buf bytes.Buffer
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	if err := calendars.Write(&buf, calendars.Feed{Name: "Desk, IOM"}, items, "https://tracker.example.org", now); err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(buf.String(), "\r\n"), "\r\n") {
		if len(line) > 75 || strings.Contains(line, "\n") {
			t.Errorf("line of %d octets or with a bare LF: %q", len(line), line)
		}
	}
	p := gocal.NewParser(bytes.NewReader(buf.Bytes()))
	start, end := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	p.Start, p.End = &start, &end
	if err := p.Parse(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		id + "-expiry@engagements":     items[0].Title,
		id + "-notice@engagements":     "Notice deadline: MOU",
		id + "-action-a-1@engagements": "Action due: Send the draft (MOU)",
		id + "-review_due@engagements": "Review due: MOU",
	}
	// On one line: the title's line break is a space.
	want[id+"-expiry@engagements"] = "Expires: " + strings.ReplaceAll(items[0].Title, "\n", " ")
	if len(p.Events) != len(want) {
		t.Fatalf("%d events, want %d:\n%s", len(p.Events), len(want), buf.String())
	}
	for _, e := range p.Events {
		if e.Summary != want[e.Uid] {
			t.Errorf("%s: SUMMARY %q, want %q", e.Uid, e.Summary, want[e.Uid])
		}
		if e.Stamp == nil || !e.Stamp.Equal(now) {
			t.Errorf("%s: DTSTAMP %v", e.Uid, e.Stamp)
		}
		if e.URL != "https://tracker.example.org/engagements/"+id {
			t.Errorf("%s: URL %q", e.Uid, e.URL)
		}
	}
	if !strings.Contains(buf.String(), "X-WR-CALNAME:Desk\\, IOM\r\n") {
		t.Errorf("X-WR-CALNAME not escaped:\n%s", buf.String())
	}
}
