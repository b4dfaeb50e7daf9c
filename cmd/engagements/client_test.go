package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	// The generated client's one library: imported here so go.mod pins
	// its version next to the generator's (a tool dependency), and the
	// generated module below builds from the module cache.
	_ "github.com/oapi-codegen/runtime"
)

// clientProgram is the user's program in the generated client's module:
// the four calls a new user makes first, with the results printed as JSON
// for the test to check.
const clientProgram = `package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"example.com/engagementsclient/client"
)

func main() {
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(server, token string) error {
	ctx := context.Background()
	c, err := client.NewClientWithResponses(server, client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	}))
	if err != nil {
		return err
	}
	limit := client.Limit(100)
	list, err := c.ListEngagementsWithResponse(ctx, &client.ListEngagementsParams{Limit: &limit})
	if err != nil || list.JSON200 == nil {
		return fmt.Errorf("list: %v %s", err, list.Body)
	}
	first := list.JSON200.Items[0]
	got, err := c.GetEngagementWithResponse(ctx, first.Id, nil)
	if err != nil || got.JSON200 == nil {
		return fmt.Errorf("get: %v %s", err, got.Body)
	}
	var ev client.NewEvent
	var note client.NotedEvent
	note.Type = "engagement.noted"
	note.Data.Note = "from a generated client"
	if err := ev.FromNotedEvent(note); err != nil {
		return err
	}
	ev.Type = "engagement.noted"
	app, err := c.AppendEventWithResponse(ctx, first.Id, nil, ev)
	if err != nil || app.JSON201 == nil {
		return fmt.Errorf("append: %v %d %s", err, app.StatusCode(), app.Body)
	}
	hist, err := c.HistoryWithResponse(ctx, first.Id, nil)
	if err != nil || hist.JSON200 == nil {
		return fmt.Errorf("history: %v %s", err, hist.Body)
	}
	last := hist.JSON200.Events[len(hist.JSON200.Events)-1]
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"listed":           len(list.JSON200.Items),
		"got_id":           got.JSON200.Id,
		"got_title":        got.JSON200.Title,
		"appended_id":      app.JSON201.Id,
		"appended_version": app.JSON201.Version,
		"history":          len(hist.JSON200.Events),
		"last_id":          last.Id,
		"last_type":        last.Type,
		"last_note":        last.Data["note"],
	})
}
`

// TestGeneratedClient generates a Go client from api/openapi.yaml with
// oapi-codegen's default options (the tool pinned in go.mod), builds it in a
// module of its own, and has it list engagements, get one, append an event
// and read the history from a running server.
func TestGeneratedClient(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH; cannot generate a client")
	}
	root := moduleRoot(t, goBin)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The tool runs in this module as go.mod pins it (never changing go.mod);
	// the generated module may add the requirements its imports need.
	toolEnv := append(os.Environ(), "GOWORK=off")
	genEnv := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	goCmd := func(env []string, dir string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir, cmd.Env = dir, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return stdout.String()
	}

	// Defaults: no -generate, no configuration file; only the package name.
	if err := os.Mkdir(filepath.Join(dir, "client"), 0o755); err != nil {
		t.Fatal(err)
	}
	goCmd(toolEnv, root, "tool", "oapi-codegen", "-package", "client", "-o", filepath.Join(dir, "client", "client.go"),
		filepath.Join(root, "api", "openapi.yaml"))

	// The module requires this one (replaced by the checkout) so that every
	// library the generated code imports resolves to the version pinned in
	// our go.mod and verified by our go.sum: nothing new to look up.
	gomod := "module example.com/engagementsclient\n\ngo 1.26\n\n" +
		"require github.com/iom-who/engagements v0.0.0\n\n" +
		"replace github.com/iom-who/engagements => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "main.go": []byte(clientProgram)} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "engagementsclient")
	goCmd(genEnv, dir, "build", "-o", bin, ".")

	m := startMain(t, t.TempDir(), true)
	defer m.Close()
	cmd := exec.CommandContext(ctx, bin, m.URL(), testToken)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("generated client: %v\n%s", err, stderr.Bytes())
	}
	var got struct {
		Listed          int    `json:"listed"`
		GotID           string `json:"got_id"`
		GotTitle        string `json:"got_title"`
		AppendedID      string `json:"appended_id"`
		AppendedVersion int    `json:"appended_version"`
		History         int    `json:"history"`
		LastID          string `json:"last_id"`
		LastType        string `json:"last_type"`
		LastNote        string `json:"last_note"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}

	// What the client saw is what the server says.
	var l list
	getJSON(t, m.URL()+"/v1/engagements?limit=100", &l)
	if got.Listed != len(l.Items) || got.Listed != 16 || got.GotID != l.Items[0].ID || got.GotTitle != l.Items[0].Title {
		t.Errorf("list/get = %d engagements, first %s %q; server lists %d, first %s %q",
			got.Listed, got.GotID, got.GotTitle, len(l.Items), l.Items[0].ID, l.Items[0].Title)
	}
	var h history
	getJSON(t, m.URL()+"/v1/engagements/"+got.GotID+"/history", &h)
	if got.History != len(h.Events) || got.AppendedVersion != len(h.Events) {
		t.Errorf("history = %d events, appended version %d; server has %d", got.History, got.AppendedVersion, len(h.Events))
	}
	if got.LastID != got.AppendedID || got.LastType != "engagement.noted" || got.LastNote != "from a generated client" {
		t.Errorf("last history event = %s %s %q, want the appended %s engagement.noted", got.LastID, got.LastType, got.LastNote, got.AppendedID)
	}
	if n := h.Events[len(h.Events)-1].Data["note"]; n != "from a generated client" {
		t.Errorf("server's last event note = %v", n)
	}
}

// moduleRoot is the directory of this checkout's go.mod.
func moduleRoot(t *testing.T, goBin string) string {
	t.Helper()
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside a module")
	}
	return filepath.Dir(gomod)
}
