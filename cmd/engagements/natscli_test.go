package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsCLI is the nats CLI to run: $NATS_CLI, the repository's bin/nats
// (`make nats-cli` installs it from the Go module proxy; `make test` does),
// or one on PATH; "" when there is none.
func natsCLI() string {
	if p := os.Getenv("NATS_CLI"); p != "" {
		return p
	}
	if p, err := filepath.Abs("../../bin/nats"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	return ""
}

// readmeBlock is the first sh code block of the README after the line that
// contains marker, one command a line.
func readmeBlock(t *testing.T, marker string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, marker)
	if i < 0 {
		t.Fatalf("README has no %q", marker)
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	if start < 0 {
		t.Fatalf("no sh block after %q", marker)
	}
	s = s[start+len("```sh\n"):]
	s = s[:strings.Index(s, "```")]
	return strings.Split(strings.TrimSpace(s), "\n")
}

// TestREADMENatsCLI runs the README's nats CLI commands for subscribers
// literally, with the real nats CLI, against a running service and an API
// subscriber token: each does what its comment says (the live subscription
// keeps running, the publish is refused), the durable consumer fetches and
// acks every renewal, and the CLI commands a subscriber is refused (listing
// consumers, reading the projector's, an ordered consumer) fail.
func TestREADMENatsCLI(t *testing.T) {
	cli := natsCLI()
	if cli == "" {
		t.Skip("no nats CLI: `make nats-cli` installs it into bin/ (make test does), or set NATS_CLI")
	}
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("no jq (the README's commands use it): apt-get install jq")
	}
	const adminNATS = "nats-admin-token-0123456789"
	dir := t.TempDir()
	m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: dir, Sync: "always", Replicas: 1,
		NATSListen: "127.0.0.1:-1", NATSAdminToken: adminNATS}}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	readToken(t, dir)
	ctx := context.Background()
	if n, err := loadDemo(ctx, m.Service); err != nil || n == 0 {
		t.Fatalf("demo: %d engagements, %v", n, err)
	}
	code, body := postJSON(t, m.URL()+"/v1/tokens", `{"name":"crm","role":"subscriber"}`)
	if code != http.StatusCreated {
		t.Fatalf("token: %d %v", code, body)
	}
	token := body["token"].(string)

	// The README's block, each line checked on its own, in one shell so
	// that variables carry over.
	var script strings.Builder
	script.WriteString("set -u\nPATH=" + filepath.Dir(cli) + ":$PATH\n")
	script.WriteString("SUBSCRIBER_TOKEN=" + token + "\n")
	lines := readmeBlock(t, "With the `nats` CLI")
	for i, line := range lines {
		line = strings.ReplaceAll(line, "nats://127.0.0.1:4222", m.Store.ClientURL())
		cmd, comment, _ := strings.Cut(line, "#")
		cmd = strings.TrimSpace(cmd)
		switch {
		case strings.HasPrefix(cmd, "S="):
			fmt.Fprintf(&script, "%s\n", cmd)
		case strings.Contains(comment, "refused"):
			fmt.Fprintf(&script, "out=$(%s 2>&1) && { echo 'line %d was not refused'; exit 1; }\n", cmd, i+1)
			fmt.Fprintf(&script, "case \"$out\" in *'Permissions Violation'*) ;; *) echo \"line %d: $out\"; exit 1;; esac\n", i+1)
		case strings.Contains(cmd, " sub "):
			// A live subscription runs until stopped: still running after 2 s
			// (timeout's 124) is success.
			fmt.Fprintf(&script, "timeout 2 %s; [ $? -eq 124 ] || { echo 'line %d failed'; exit 1; }\n", cmd, i+1)
		default:
			fmt.Fprintf(&script, "%s || { echo 'line %d failed'; exit 1; }\n", cmd, i+1)
		}
	}
	// What a subscriber may not do with the CLI, refused by the server.
	for _, refused := range []string{
		"nats $S consumer ls ENGAGEMENTS --timeout 2s",
		"nats $S consumer info ENGAGEMENTS projector --timeout 2s",
		"timeout 5 nats $S sub --stream ENGAGEMENTS 'engagements.>' --timeout 2s",
		"nats $S kv ls --timeout 2s",
	} {
		fmt.Fprintf(&script, "%s >/dev/null 2>&1 && { echo 'not refused: %s'; exit 1; }\n", refused, strings.ReplaceAll(refused, "'", ""))
	}
	script.WriteString("exit 0\n")
	cmd := exec.Command("bash", "-c", script.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("README commands: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `"type":"agreement.renewed"`) {
		t.Errorf("consumer next printed no renewal:\n%s", out.String())
	}

	// The durable consumer the README created has every renewal acked.
	nc, err := nats.Connect(m.Store.ClientURL(), nats.Token(adminNATS))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, "ENGAGEMENTS", "sub-crm-1")
	if err != nil {
		t.Fatalf("the README's consumer: %v", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 0 || info.NumAckPending != 0 || info.AckFloor.Stream == 0 {
		t.Errorf("sub-crm-1: pending %d, ack pending %d, ack floor %d: want every renewal fetched and acked",
			info.NumPending, info.NumAckPending, info.AckFloor.Stream)
	}
}
