package sessions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/sessions"
)

// A sign-in's state is taken once, on whichever instance: a replayed state
// finds nothing, and of two takes at once exactly one wins.
func TestAttemptTakenOnce(t *testing.T) {
	_, ss := open(t, 2)
	ctx := context.Background()
	state := strings.Repeat("s", 43)
	if err := ss[0].Hold(ctx, state, []byte(`{"nonce":"n"}`)); err != nil {
		t.Fatal(err)
	}
	got, err := ss[1].Take(ctx, state)
	if err != nil || !bytes.Equal(got, []byte(`{"nonce":"n"}`)) {
		t.Fatalf("take on the other instance: %q, %v", got, err)
	}
	for i, s := range ss {
		if _, err := s.Take(ctx, state); !errors.Is(err, sessions.ErrAttemptUsed) {
			t.Errorf("replayed state on instance %d: %v, want ErrAttemptUsed", i, err)
		}
	}
	for _, bad := range []string{"", "short", strings.Repeat("t", 43)} {
		if _, err := ss[0].Take(ctx, bad); !errors.Is(err, sessions.ErrAttemptUsed) {
			t.Errorf("state %q never held: %v, want ErrAttemptUsed", bad, err)
		}
	}

	// Ten takes at once, five per instance: one wins.
	state = strings.Repeat("r", 43)
	if err := ss[0].Hold(ctx, state, []byte("x")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 10 {
		wg.Go(func() {
			if _, err := ss[i%2].Take(ctx, state); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, sessions.ErrAttemptUsed) {
				t.Errorf("take: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d of 10 concurrent takes won, want 1", wins)
	}
}

// A directory session keeps the person sealed, and EndIdentity ends every
// session of that person on every instance.
func TestPersonSessions(t *testing.T) {
	kv, ss := open(t, 2)
	ctx := context.Background()
	p := sessions.Person{Issuer: "https://login.example", Subject: "u-1", Role: domain.RoleCoordinator,
		IDToken: "id.token.here", RefreshToken: "refresh-secret", Checked: t0, Expiry: t0.Add(time.Hour)}
	lim := sessions.Limits{PerIdentity: 10, Total: 100}
	a, err := ss[0].StartPerson(ctx, "amina@who.example", p, lim, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ss[1].StartPerson(ctx, "amina@who.example", p, lim, t0)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ss[0].Start(ctx, "machine", "digest", lim, t0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ss[1].Get(ctx, a.ID, t0)
	if err != nil || got.Person == nil || *got.Person != p || got.Token != "" {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	e, err := kv.Get(ctx, sessions.Key(a.ID))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(e.Value(), []byte("refresh-secret")) || bytes.Contains(e.Value(), []byte("u-1")) {
		t.Errorf("the bucket holds the person in the clear: %s", e.Value())
	}
	var clear map[string]any
	_ = json.Unmarshal(e.Value(), &clear)
	if clear["identity"] != "amina@who.example" {
		t.Errorf("identity %v in the clear, want the actor", clear["identity"])
	}
	// The other instance's watch must have seen both sessions.
	deadline := time.Now().Add(5 * time.Second)
	for ss[1].Len() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	n, err := ss[1].EndIdentity(ctx, "amina@who.example")
	if err != nil || n != 2 {
		t.Fatalf("EndIdentity: %d, %v; want 2", n, err)
	}
	for _, id := range []string{a.ID, b.ID} {
		if _, err := ss[0].Get(ctx, id, t0); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("session after EndIdentity: %v", err)
		}
	}
	if _, err := ss[0].Get(ctx, tok.ID, t0); err != nil {
		t.Errorf("another identity's session: %v", err)
	}
}
