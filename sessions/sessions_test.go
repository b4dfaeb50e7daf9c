package sessions_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/sessions"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// open starts an embedded nats-server on a temp dir and opens n session
// stores on it, as n instances would.
func open(t *testing.T, n int) (jetstream.KeyValue, []*sessions.Store) {
	t.Helper()
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var out []*sessions.Store
	for range n {
		s, err := sessions.Open(ctx, store.JetStream(), sessions.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		out = append(out, s)
	}
	kv, err := store.JetStream().KeyValue(ctx, sessions.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv, out
}

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func TestBucketConfig(t *testing.T) {
	kv, _ := open(t, 1)
	st, err := kv.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != sessions.Life || st.History() != 1 {
		t.Errorf("TTL %v, history %d; want %v, 1", st.TTL(), st.History(), sessions.Life)
	}
}

func TestGetRefuses(t *testing.T) {
	kv, ss := open(t, 1)
	s := ss[0]
	ctx := context.Background()
	live, err := s.Start(ctx, "maria", "digest", sessions.Limits{PerIdentity: 10, Total: 100}, t0)
	if err != nil {
		t.Fatal(err)
	}
	idler, err := s.Start(ctx, "bob", "digest", sessions.Limits{PerIdentity: 10, Total: 100}, t0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Start(ctx, "ana", "digest", sessions.Limits{PerIdentity: 10, Total: 100}, t0)
	if err != nil {
		t.Fatal(err)
	}
	// other's entry stored under live's key: sealed under another id.
	e, err := kv.Get(ctx, sessions.Key(other.ID))
	if err != nil {
		t.Fatal(err)
	}
	moved, err := s.Start(ctx, "carl", "digest", sessions.Limits{PerIdentity: 10, Total: 100}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, sessions.Key(moved.ID), e.Value()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		id   string
		at   time.Time
	}{
		{"an unknown id", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", t0},
		{"an id of the wrong length", live.ID[:42], t0},
		{"an id that is not base64url", live.ID[:42] + "!", t0},
		{"an empty id", "", t0},
		{"an entry sealed under another id", moved.ID, t0},
		{"past its life (uses kept it from idling)", live.ID, t0.Add(sessions.Life + time.Second)},
		{"idle too long", idler.ID, t0.Add(sessions.Idle + time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "past its life (uses kept it from idling)" {
				for at := t0; at.Before(t0.Add(sessions.Life)); at = at.Add(sessions.Idle - time.Minute) {
					if _, err := s.Get(ctx, live.ID, at); err != nil {
						t.Fatalf("at %v: %v", at, err)
					}
				}
			}
			if _, err := s.Get(ctx, tc.id, tc.at); !errors.Is(err, sessions.ErrNotFound) {
				t.Errorf("Get: %v, want ErrNotFound", err)
			}
		})
	}
	for _, id := range []string{live.ID, idler.ID} {
		if _, err := kv.Get(ctx, sessions.Key(id)); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("an expired session is still in the bucket: %v", err)
		}
	}
}

// Reading a session writes its last use back at most once a minute.
func TestGetTouchesAtMostOnceAMinute(t *testing.T) {
	kv, ss := open(t, 1)
	ctx := context.Background()
	sess, err := ss[0].Start(ctx, "maria", "digest", sessions.Limits{PerIdentity: 1, Total: 1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	rev := func() uint64 {
		e, err := kv.Get(ctx, sessions.Key(sess.ID))
		if err != nil {
			t.Fatal(err)
		}
		return e.Revision()
	}
	first := rev()
	for _, d := range []time.Duration{time.Second, 30 * time.Second, 59 * time.Second} {
		if _, err := ss[0].Get(ctx, sess.ID, t0.Add(d)); err != nil {
			t.Fatal(err)
		}
	}
	if got := rev(); got != first {
		t.Errorf("revision %d after reads within a minute, want %d (no write)", got, first)
	}
	got, err := ss[0].Get(ctx, sess.ID, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if rev() == first || !got.LastUsed.Equal(t0.Add(time.Minute)) {
		t.Errorf("a minute on: revision %d, last used %v; want a write", rev(), got.LastUsed)
	}
	if got.CSRF != sess.CSRF || got.Token != "digest" || got.Identity != "maria" {
		t.Errorf("read back %+v, want what was opened", got)
	}
}

// Change reads again when another instance wrote meanwhile, so neither
// write is lost.
func TestChangeKeepsBothWrites(t *testing.T) {
	_, ss := open(t, 2)
	ctx := context.Background()
	sess, err := ss[0].Start(ctx, "maria", "digest", sessions.Limits{PerIdentity: 1, Total: 1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ss[0].Change(ctx, sess.ID, func(x *sessions.Session) bool {
		if x.Flash == "" {
			// B writes between A's read and A's write.
			if _, err := ss[1].Change(ctx, sess.ID, func(y *sessions.Session) bool {
				y.Flash = "from B"
				return true
			}); err != nil {
				t.Fatal(err)
			}
		}
		x.CSRF = "from A"
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ss[1].Get(ctx, sess.ID, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Flash != "from B" || got.CSRF != "from A" {
		t.Errorf("flash %q, csrf %q; want B's flash and A's csrf", got.Flash, got.CSRF)
	}
	if err := ss[0].End(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ss[1].Change(ctx, sess.ID, func(*sessions.Session) bool { return true }); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Change of an ended session: %v, want ErrNotFound", err)
	}
}

// The caps hold across instances: B counts the sessions A opened.
func TestLimitsAcrossInstances(t *testing.T) {
	kv, ss := open(t, 2)
	a, b := ss[0], ss[1]
	ctx := context.Background()
	lim := sessions.Limits{PerIdentity: 3, Total: 5}
	var maria []*sessions.Session
	for i := range 3 {
		s, err := a.Start(ctx, "maria", "digest", lim, t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		maria = append(maria, s)
	}
	// B's watch is to see A's three.
	for i := 0; b.Len() < 3; i++ {
		if i == 500 {
			t.Fatalf("B sees %d sessions, want 3", b.Len())
		}
		time.Sleep(5 * time.Millisecond) // polled, bounded
	}
	// maria's first session was used last: her second goes.
	if _, err := b.Get(ctx, maria[0].ID, t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Start(ctx, "maria", "digest", lim, t0.Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true} {
		_, err := a.Get(ctx, maria[i].ID, t0.Add(30*time.Second))
		if (err == nil) != want {
			t.Errorf("maria's session %d: live %v, want %v", i, err == nil, want)
		}
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	if n != 3 {
		t.Errorf("%d sessions in the bucket, want maria's 3", n)
	}
}

// BenchmarkGet is what a page request costs its session: one read of the
// bucket (no write within TouchEvery).
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	s, err := sessions.Open(ctx, store.JetStream(), sessions.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	sess, err := s.Start(ctx, "maria", "digest", sessions.Limits{PerIdentity: 1, Total: 1}, now)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Get(ctx, sess.ID, now); err != nil {
			b.Fatal(err)
		}
	}
}
