package webhooks_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/webhooks"
	"github.com/nats-io/nats.go/jetstream"
)

// The signature checks out with an implementation written from the
// Standard Webhooks text, not with the package's own.
func TestDeliveryIsSignedStandardWebhooks(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	rcv := newReceiver(t, always(http.StatusNoContent))
	secret, key := newSecret(t)
	subscribe(t, m, rcv.URL, secret, 0)
	ev := record(t, store, "MOU")

	d := rcv.next(t)
	if !bytes.Equal(d.body, ev.payload) {
		t.Errorf("body is not the stored CloudEvent:\n got %s\nwant %s", d.body, ev.payload)
	}
	if ct := d.header.Get("Content-Type"); ct != "application/cloudevents+json" {
		t.Errorf("Content-Type %q", ct)
	}
	id, ts, sig := d.header.Get("webhook-id"), d.header.Get("webhook-timestamp"), d.header.Get("webhook-signature")
	if id != ev.id {
		t.Errorf("webhook-id %q, want the event id %s", id, ev.id)
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		t.Errorf("webhook-timestamp %q is not unix seconds", ts)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(d.body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if sig != want {
		t.Errorf("webhook-signature %q, want %q", sig, want)
	}
	// Another key does not verify.
	other := hmac.New(sha256.New, append([]byte("x"), key...))
	other.Write([]byte(id + "." + ts + "." + string(d.body)))
	if sig == "v1,"+base64.StdEncoding.EncodeToString(other.Sum(nil)) {
		t.Error("the signature verifies with another key")
	}
}

func TestFailingTwiceThenSucceedingDeliversThreeTimesWithOneID(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	rcv := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	secret, _ := newSecret(t)
	sub := subscribe(t, m, rcv.URL, secret, 0)
	ev := record(t, store, "MOU")
	next := record(t, store, "after") // delivered only once the first is settled

	for i := 1; i <= 3; i++ {
		if id := rcv.next(t).header.Get("webhook-id"); id != ev.id {
			t.Fatalf("attempt %d: webhook-id %q, want %s", i, id, ev.id)
		}
	}
	if id := rcv.next(t).header.Get("webhook-id"); id != next.id {
		t.Fatalf("after the retries got %q, want the next event %s", id, next.id)
	}
	if f, err := m.Failures(context.Background(), sub.ID); err != nil || len(f) != 0 {
		t.Errorf("failures = %v, %v; want none", f, err)
	}
}

func TestAlwaysFailingEndsInFailuresWithoutBlockingOthers(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	// The failing endpoint holds its first request until the healthy
	// subscription has received everything: delivery is independent.
	release := make(chan struct{})
	failing := newReceiver(t, func(n int) int {
		if n == 1 {
			<-release
		}
		return http.StatusInternalServerError
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the receiver closes, should the test fail early
	healthy := newReceiver(t, always(http.StatusOK))
	secret, _ := newSecret(t)
	bad := subscribe(t, m, failing.URL, secret, 0)
	subscribe(t, m, healthy.URL, secret, 0)

	first, second := record(t, store, "one"), record(t, store, "two")
	for _, want := range []appended{first, second} {
		if got := healthy.next(t).id(t); got != want.id {
			t.Fatalf("healthy subscription got %s, want %s", got, want.id)
		}
	}
	unblock()

	failures := waitFailures(t, m, bad.ID, 2)
	for i, want := range []appended{first, second} {
		f := failures[i]
		if f.Sequence != want.seq || f.EventID != want.id || f.Type != "engagement.recorded" ||
			f.Attempts != quick.MaxAttempts || f.LastStatus != http.StatusInternalServerError ||
			f.LastError == "" || f.FailedAt.IsZero() {
			t.Errorf("failure %d = %+v, want sequence %d, event %s, %d attempts, status 500",
				i, f, want.seq, want.id, quick.MaxAttempts)
		}
	}
}

func TestDeliveryResumesAfterRestart(t *testing.T) {
	store := newStore(t)
	rcv := newReceiver(t, always(http.StatusOK))
	secret, _ := newSecret(t)

	m1 := open(t, store, quick)
	sub := subscribe(t, m1, rcv.URL, secret, 0)
	before := record(t, store, "before")
	if got := rcv.next(t).id(t); got != before.id {
		t.Fatalf("got %s, want %s", got, before.id)
	}
	// Stopping while a POST is in flight would hand the event back (at
	// least once); this test is about where delivery resumes.
	waitSettled(t, store, sub.ID, before.seq)
	m1.Close()

	// Appended while no manager runs.
	var missed []appended
	for _, title := range []string{"a", "b", "c"} {
		missed = append(missed, record(t, store, title))
	}
	open(t, store, quick)
	for _, want := range missed {
		if got := rcv.next(t).id(t); got != want.id {
			t.Fatalf("after the restart got %s, want %s (in stream order, without the delivered one)", got, want.id)
		}
	}
}

func TestNewSubscriptionGetsOnlyNewEventsUnlessFromSequence(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	old1, old2 := record(t, store, "old 1"), record(t, store, "old 2")
	fresh := newReceiver(t, always(http.StatusOK))
	backfill := newReceiver(t, always(http.StatusOK))
	secret, _ := newSecret(t)
	sub := subscribe(t, m, fresh.URL, secret, 0)
	if sub.FromSequence != old2.seq+1 {
		t.Errorf("from_sequence %d, want the stream's next sequence %d", sub.FromSequence, old2.seq+1)
	}
	subscribe(t, m, backfill.URL, secret, old1.seq)
	now := record(t, store, "new")

	// Delivery is in stream order, so an old event would come first.
	if got := fresh.next(t).id(t); got != now.id {
		t.Errorf("new subscription first got %s, want only the new event %s", got, now.id)
	}
	for _, want := range []appended{old1, old2, now} {
		if got := backfill.next(t).id(t); got != want.id {
			t.Errorf("backfill got %s, want %s", got, want.id)
		}
	}
}

func TestDeleteStopsDelivery(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	gone := newReceiver(t, always(http.StatusOK))
	canary := newReceiver(t, always(http.StatusOK))
	secret, _ := newSecret(t)
	sub := subscribe(t, m, gone.URL, secret, 0)
	record(t, store, "one")
	gone.next(t)

	if err := m.Delete(context.Background(), sub.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(sub.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	if n := len(m.List("")); n != 0 {
		t.Errorf("%d subscriptions listed after delete", n)
	}
	stream, err := store.JetStream().Stream(context.Background(), eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Consumer(context.Background(), "webhook-"+sub.ID); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the consumer is still there: %v", err)
	}
	// A later event reaches a live subscription and not the deleted one.
	subscribe(t, m, canary.URL, secret, 0)
	two := record(t, store, "two")
	if got := canary.next(t).id(t); got != two.id {
		t.Fatalf("canary got %s", got)
	}
	select {
	case d := <-gone.got:
		t.Errorf("deleted subscription still delivered %s", d.id(t))
	default:
	}
	if err := m.Delete(context.Background(), sub.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("second delete: %v, want not found", err)
	}
}

// Subscriptions live in the bucket: another instance sees them and
// delivers them (the durable consumer shares the work).
func TestAnotherInstanceSeesSubscriptions(t *testing.T) {
	store := newStore(t)
	a := open(t, store, quick)
	b := open(t, store, quick)
	rcv := newReceiver(t, always(http.StatusOK))
	secret, _ := newSecret(t)
	sub := subscribe(t, a, rcv.URL, secret, 0)
	for i := 0; ; i++ {
		if _, err := b.Get(sub.ID); err == nil {
			break
		}
		if i == 1000 {
			t.Fatal("the other instance does not see the subscription")
		}
		waitABit()
	}
	var want []appended
	for _, title := range []string{"a", "b", "c", "d"} {
		want = append(want, record(t, store, title))
	}
	for _, w := range want {
		if got := rcv.next(t).id(t); got != w.id {
			t.Fatalf("got %s, want %s: order broken across instances", got, w.id)
		}
	}
	if err := a.Delete(context.Background(), sub.ID); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := b.Get(sub.ID); errors.Is(err, domain.ErrNotFound) {
			break
		}
		if i == 1000 {
			t.Fatal("the other instance still has the deleted subscription")
		}
		waitABit()
	}
}

func TestCreateValidates(t *testing.T) {
	store := newStore(t)
	m := open(t, store, quick)
	secret, _ := newSecret(t)
	ok := webhooks.Request{URL: "http://127.0.0.1:9/hook", Types: []string{"agreement.*"}, Secret: secret}
	with := func(f func(*webhooks.Request)) webhooks.Request {
		r := ok
		r.Types = append([]string(nil), ok.Types...)
		f(&r)
		return r
	}
	short := webhooks.SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 23))
	long := webhooks.SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 65))
	tests := []struct {
		name  string
		req   webhooks.Request
		field string
	}{
		{"ftp URL", with(func(r *webhooks.Request) { r.URL = "ftp://example.org/hook" }), "url"},
		{"file URL", with(func(r *webhooks.Request) { r.URL = "file:///etc/passwd" }), "url"},
		{"relative URL", with(func(r *webhooks.Request) { r.URL = "/hook" }), "url"},
		{"no host", with(func(r *webhooks.Request) { r.URL = "http:///hook" }), "url"},
		{"credentials in the URL", with(func(r *webhooks.Request) { r.URL = "http://u:p@127.0.0.1/hook" }), "url"},
		{"URL over 2048", with(func(r *webhooks.Request) { r.URL = "http://127.0.0.1/" + strings.Repeat("a", 2048) }), "url"},
		{"cloud metadata 169.254.169.254", with(func(r *webhooks.Request) { r.URL = "http://169.254.169.254/latest/meta-data/" }), "url"},
		{"link-local 169.254.1.1", with(func(r *webhooks.Request) { r.URL = "https://169.254.1.1:8443/" }), "url"},
		{"IPv6 link-local", with(func(r *webhooks.Request) { r.URL = "http://[fe80::1]/hook" }), "url"},
		{"IPv4-mapped metadata", with(func(r *webhooks.Request) { r.URL = "http://[::ffff:169.254.169.254]/" }), "url"},
		{"metadata in decimal", with(func(r *webhooks.Request) { r.URL = "http://2852039166/" }), "url"},
		{"metadata in hex", with(func(r *webhooks.Request) { r.URL = "http://0xa9fea9fe/" }), "url"},
		{"metadata in octal", with(func(r *webhooks.Request) { r.URL = "http://0251.0376.0251.0376/" }), "url"},
		{"IPv6 link-local with a zone", with(func(r *webhooks.Request) { r.URL = "http://[fe80::1%25eth0]/hook" }), "url"},
		{"metadata through NAT64 64:ff9b::/96", with(func(r *webhooks.Request) { r.URL = "http://[64:ff9b::a9fe:a9fe]/" }), "url"},
		{"metadata through NAT64 local use 64:ff9b:1::/48", with(func(r *webhooks.Request) { r.URL = "http://[64:ff9b:1::a9fe:a9fe]/" }), "url"},
		{"IPv4-compatible metadata", with(func(r *webhooks.Request) { r.URL = "http://[::a9fe:a9fe]/" }), "url"},
		{"metadata through 6to4", with(func(r *webhooks.Request) { r.URL = "http://[2002:a9fe:a9fe::1]/" }), "url"},
		{"metadata through Teredo", with(func(r *webhooks.Request) { r.URL = "http://[2001:0:4136:e378:8000:63bf:5601:5601]/" }), "url"},
		{"Alibaba Cloud metadata 100.100.100.200", with(func(r *webhooks.Request) { r.URL = "http://100.100.100.200/latest/meta-data/" }), "url"},
		{"Oracle Cloud metadata 192.0.0.192", with(func(r *webhooks.Request) { r.URL = "http://192.0.0.192/opc/v2/instance/" }), "url"},
		{"Google Cloud metadata over IPv6", with(func(r *webhooks.Request) { r.URL = "http://[fd20:ce::254]/computeMetadata/v1/" }), "url"},
		{"no types", with(func(r *webhooks.Request) { r.Types = nil }), "types"},
		{"21 types", with(func(r *webhooks.Request) { r.Types = make([]string, 21) }), "types"},
		{"unknown type", with(func(r *webhooks.Request) { r.Types = []string{"agreement.burned"} }), "types"},
		{"unknown prefix", with(func(r *webhooks.Request) { r.Types = []string{"treaty.*"} }), "types"},
		{"subject wildcard", with(func(r *webhooks.Request) { r.Types = []string{">"} }), "types"},
		{"type twice", with(func(r *webhooks.Request) { r.Types = []string{"agreement.signed", "agreement.signed"} }), "types"},
		{"secret without prefix", with(func(r *webhooks.Request) { r.Secret = strings.TrimPrefix(secret, "whsec_") }), "secret"},
		{"secret not base64", with(func(r *webhooks.Request) { r.Secret = "whsec_not base64!" }), "secret"},
		{"secret of 23 bytes", with(func(r *webhooks.Request) { r.Secret = short }), "secret"},
		{"secret of 65 bytes", with(func(r *webhooks.Request) { r.Secret = long }), "secret"},
		{"from_sequence beyond the stream", with(func(r *webhooks.Request) { r.FromSequence = 99 }), "from_sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Create(context.Background(), "crm-sync", tt.req)
			var invalid *domain.ValidationError
			if !errors.As(err, &invalid) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			if len(invalid.Fields) != 1 || invalid.Fields[0].Field != tt.field {
				t.Errorf("fields %+v, want %s", invalid.Fields, tt.field)
			}
			if strings.Contains(err.Error(), tt.req.Secret) {
				t.Error("the error repeats the secret")
			}
		})
	}
	if n := len(m.List("")); n != 0 {
		t.Errorf("%d subscriptions stored by refused requests", n)
	}

	// Accepted: overlapping entries, unpadded base64, 64 bytes, https.
	good := []webhooks.Request{
		with(func(r *webhooks.Request) { r.Types = []string{"agreement.*", "agreement.signed", "engagement.noted"} }),
		with(func(r *webhooks.Request) {
			r.Secret = webhooks.SecretPrefix + base64.RawStdEncoding.EncodeToString(make([]byte, 25))
		}),
		with(func(r *webhooks.Request) {
			r.Secret = webhooks.SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 64))
		}),
		with(func(r *webhooks.Request) { r.URL = "https://localhost:8443/hook"; r.FromSequence = 1 }),
	}
	for i, req := range good {
		sub, err := m.Create(context.Background(), "crm-sync", req)
		if err != nil {
			t.Errorf("request %d refused: %v", i, err)
			continue
		}
		if !sub.SecretSet || sub.Owner != "crm-sync" || domain.CheckID(sub.ID) != nil {
			t.Errorf("subscription %+v", sub)
		}
	}
}

func TestSignatureMatchesStandardWebhooksExample(t *testing.T) {
	// The example of the Standard Webhooks specification's reference
	// libraries (secret, id, timestamp and payload from their test suite).
	key, err := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := webhooks.Signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
}
