package main

import (
	"context"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

// TestRevocationReachesAnInstanceRightAfterAnOutage: after NATS comes back,
// a token revoked on one instance stops working on the other at once, not
// when the token watch would have noticed its missed heartbeats.
func TestRevocationReachesAnInstanceRightAfterAnOutage(t *testing.T) {
	ns := startOpsNATS(t)
	a := startOpsMain(t, ns.url())
	b := startOpsMain(t, ns.url())
	token, _, err := a.Tokens.Create(context.Background(), "temp", domain.RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "instance b learns the new token", func() bool { _, ok := b.Tokens.Authenticate(token); return ok })

	ns.stop()
	waitUntil(t, 30*time.Second, "both instances notice the outage", func() bool { return !a.Store.Connected() && !b.Store.Connected() })
	ns.start()
	waitUntil(t, 30*time.Second, "both instances reconnect", func() bool { return a.Store.Connected() && b.Store.Connected() })

	// Revoke as soon as the revocation can be stored.
	waitUntil(t, 30*time.Second, "the revocation is stored", func() bool {
		return a.Tokens.Revoke(context.Background(), "temp") == nil
	})
	// Bounded well below the tens of seconds a watch takes to notice missed
	// heartbeats by itself; this is a limit on waiting, not a figure asserted.
	deadline := time.Now().Add(8 * time.Second)
	for {
		if _, ok := b.Tokens.Authenticate(token); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("instance b still accepts a token revoked on instance a after the reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
