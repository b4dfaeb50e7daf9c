package eventstore

import (
	"context"
	"testing"
	"time"
)

// The watcher raises the file store's limit with a config reload of the
// embedded server's own options; the reload must take them as they are and
// change only the limit.
func TestRaiseLimitByReload(t *testing.T) {
	s, err := Open(t.Context(), Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.opts.JetStreamMaxStore <= 0 {
		t.Fatalf("JetStreamMaxStore = %d; want the store to set it", s.opts.JetStreamMaxStore)
	}
	o := s.opts.Clone()
	o.JetStreamMaxStore += 1 << 20
	start := time.Now()
	if err := s.ns.ReloadOptions(o); err != nil {
		t.Fatalf("ReloadOptions: %v", err)
	}
	if got := s.ns.JetStreamConfig().MaxStore; got != o.JetStreamMaxStore {
		t.Errorf("MaxStore after the reload = %d, want %d", got, o.JetStreamMaxStore)
	}
	// The in-process connection stays up (it would reconnect after 2 s).
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after the reload: %v (%v after it began)", err, time.Since(start))
	}
}

// With tokens JetStream sizes the store itself: a reload would re-authorize
// the in-process connection, which custom authentication does not survive.
func TestTokensLeaveTheLimitToJetStream(t *testing.T) {
	s, err := Open(t.Context(), Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1",
		SubscriberToken: "subscriber-token-0123456789", AdminToken: "admin-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.opts.JetStreamMaxStore != 0 {
		t.Errorf("JetStreamMaxStore = %d with tokens; want 0 (JetStream's own)", s.opts.JetStreamMaxStore)
	}
	if s.raiseLimit() {
		t.Error("raiseLimit raised a limit JetStream set itself")
	}
}
