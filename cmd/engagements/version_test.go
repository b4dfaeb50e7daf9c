package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, stdout, stderr := runCLI(args...)
		if code != 0 || !strings.HasPrefix(stdout, "engagements ") || !strings.Contains(stdout, "go1.") || stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and the version", args, code, stdout, stderr)
		}
	}
}

// verify, export and rebuild present --nats-token (or ENGAGEMENTS_NATS_TOKEN)
// to a serve whose --nats-listen needs one.
func TestAuditCommandsPresentANATSToken(t *testing.T) {
	const admin, subscriber = "ops-token-for-the-audit-test", "subscriber-token-for-the-audit-test"
	m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1", Sync: "always",
		Replicas: 1, NATSAdminToken: admin, NATSSubscriberToken: subscriber}}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	defer m.Close()
	if _, err := m.Service.Execute(context.Background(), app.Command{Type: domain.EngagementRecorded, Actor: "t",
		Data: json.RawMessage(`{"kind":"agreement","title":"MOU","parties":["IOM","WHO"]}`)}); err != nil {
		t.Fatal(err)
	}
	url := m.Store.ClientURL()

	if code, _, stderr := runCLI("verify", "--nats-url", url); code != 2 {
		t.Errorf("verify without a token: exit %d, want 2 (refused); stderr:\n%s", code, stderr)
	}
	if rep := verifyCLI(t, 0, "--nats-url", url, "--nats-token", admin); !rep.OK || rep.Events != 1 {
		t.Errorf("verify --nats-token: %+v, want ok with 1 event", rep)
	}
	if code, stdout, stderr := runCLI("export", "--nats-url", url, "--nats-token", admin); code != 0 || strings.Count(stdout, "\n") != 1 {
		t.Errorf("export --nats-token: exit %d, %q; stderr:\n%s", code, stdout, stderr)
	}
	t.Setenv("ENGAGEMENTS_NATS_TOKEN", admin)
	if got := rebuildCLI(t, "--nats-url", url); got["events"] != 1 {
		t.Errorf("rebuild with ENGAGEMENTS_NATS_TOKEN printed %v", got)
	}
	t.Setenv("ENGAGEMENTS_NATS_TOKEN", "")

	for _, tt := range []struct {
		name string
		args []string
	}{
		{"a token without --nats-url", []string{"verify", "--data", t.TempDir(), "--nats-token", admin}},
		{"a token and credentials in the URL", []string{"verify", "--nats-url", "nats://someone@127.0.0.1:1", "--nats-token", admin}},
		{"a wrong token", []string{"verify", "--nats-url", url, "--nats-token", "not-the-token-at-all"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tt.args...)
			if code != 2 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, stdout)
			}
			if strings.Contains(stderr, admin) {
				t.Errorf("stderr shows the token: %s", stderr)
			}
		})
	}
}
