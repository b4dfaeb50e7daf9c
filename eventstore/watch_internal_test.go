package eventstore

import (
	"testing"
)

// The watcher raises the file store's limit with a config reload of the
// embedded server's own options; the reload must take them as they are in
// production (tokens, a client port) and change only the limit.
func TestRaiseLimitByReload(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no client port", Config{}},
		{"client port with tokens", Config{NATSListen: "127.0.0.1:-1",
			SubscriberToken: "subscriber-token-0123456789", AdminToken: "admin-token-0123456789"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir = t.TempDir()
			s, err := Open(t.Context(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.opts.JetStreamMaxStore <= 0 {
				t.Fatalf("JetStreamMaxStore = %d; want the store to set it", s.opts.JetStreamMaxStore)
			}
			o := s.opts.Clone()
			o.JetStreamMaxStore += 1 << 20
			if err := s.ns.ReloadOptions(o); err != nil {
				t.Fatalf("ReloadOptions: %v", err)
			}
			if got := s.ns.JetStreamConfig().MaxStore; got != o.JetStreamMaxStore {
				t.Errorf("MaxStore after the reload = %d, want %d", got, o.JetStreamMaxStore)
			}
			if err := s.Ping(t.Context()); err != nil {
				t.Errorf("Ping after the reload: %v", err)
			}
		})
	}
}
