package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/iom-who/engagements/domain"
)

// TestMain doubles as the engagements binary: with ENGAGEMENTS_TEST_EXEC=1
// the test executable runs main's logic, so process-level tests (kill -9,
// SIGTERM) need no separate build.
func TestMain(m *testing.M) {
	if os.Getenv("ENGAGEMENTS_TEST_EXEC") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// testToken is the bearer token the request helpers send: the admin token
// that the first start wrote to the data directory.
var testToken string

// readToken loads dir/admin.token into testToken.
func readToken(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(dir + "/admin.token")
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	testToken = strings.TrimSpace(string(b))
}

// startMain starts the same Main that serve runs, on a random port.
func startMain(t *testing.T, dir string, demo bool) *Main {
	t.Helper()
	m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: dir, Demo: demo, Sync: "always", Replicas: 1}}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	readToken(t, dir)
	return m
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("decode %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func postJSON(t *testing.T, url, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

type list struct {
	Items []struct {
		ID, Kind, Title, Status string
		Links                   []struct {
			TargetID string `json:"target_id"`
		}
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

type history struct {
	Events []struct {
		ID         string         `json:"id"`
		Type       string         `json:"type"`
		OccurredAt time.Time      `json:"occurred_at"`
		Precision  string         `json:"time_precision"`
		Actor      string         `json:"actor"`
		Data       map[string]any `json:"data"`
	} `json:"events"`
}

func TestDemoDataLoadedOnceWithRealDates(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, true)
	var l list
	if code := getJSON(t, m.URL()+"/v1/engagements?limit=100", &l); code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	if len(l.Items) != 16 {
		t.Fatalf("demo engagements = %d, want 16", len(l.Items))
	}
	byTitle := map[string]string{}
	kinds := map[string]int{}
	for _, it := range l.Items {
		byTitle[it.Title] = it.ID
		kinds[it.Kind]++
	}
	if want := map[string]int{"agreement": 1, "policy": 6, "initiative": 5, "meeting": 4}; fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}
	mou := byTitle["IOM–WHO Memorandum of Understanding"]
	var h history
	getJSON(t, m.URL()+"/v1/engagements/"+mou+"/history", &h)
	var types []string
	for _, e := range h.Events {
		on := e.OccurredAt.Format("2006-01-02")
		switch e.Precision {
		case domain.PrecisionYear:
			on = e.OccurredAt.Format("2006")
		case domain.PrecisionMonth:
			on = e.OccurredAt.Format("2006-01")
		case domain.PrecisionNone:
			on = "not recorded"
		}
		if e.Precision != "" && e.Precision != domain.PrecisionNone && e.OccurredAt.Day() != 1 {
			t.Errorf("%s of %s precision on %s, not the first instant", e.Type, e.Precision, e.OccurredAt)
		}
		types = append(types, e.Type+"@"+on)
		if e.Actor != "demo" {
			t.Errorf("actor = %q, want demo", e.Actor)
		}
	}
	// The MOU since 1999, renewed in January 2019, as precisely as the seed
	// says; its example focal point has no date; its example action item
	// was assigned on the day the demo was loaded.
	want := "engagement.recorded@1999 agreement.signed@1999 agreement.renewed@2019-01 engagement.focal_point_assigned@not recorded " +
		"engagement.action_assigned@" + time.Now().UTC().Format(domain.DateLayout)
	if got := strings.Join(types, " "); got != want {
		t.Errorf("MOU history:\n got %s\nwant %s", got, want)
	}
	// The Framework is referenced by both compacts.
	framework := byTitle["Framework of priorities and guiding principles to promote the health of refugees and migrants"]
	refs := 0
	for _, it := range l.Items {
		for _, ln := range it.Links {
			if ln.TargetID == framework {
				refs++
			}
		}
	}
	if refs != 2 {
		t.Errorf("links to the Framework = %d, want 2 (GCM and GCR)", refs)
	}
	last, err := m.Store.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	m = startMain(t, dir, true)
	defer m.Close()
	again, err := m.Store.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if again != last {
		t.Errorf("second start with --demo: stream went from %d to %d messages; demo must load once", last, again)
	}
	if err := m.Projector.WaitFor(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	l = list{}
	getJSON(t, m.URL()+"/v1/engagements?limit=100", &l)
	if len(l.Items) != 16 {
		t.Errorf("after restart: %d engagements, want 16", len(l.Items))
	}
}

// process runs the test binary as `engagements serve` in its own process.
type process struct {
	cmd *exec.Cmd
	url string
}

func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--http", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "ENGAGEMENTS_TEST_EXEC=1")
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("no serving line from the process: %v", err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "engagements: serving on ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}
	for i, a := range args {
		if a == "--data" && i+1 < len(args) {
			readToken(t, args[i+1])
		}
	}
	return &process{cmd: cmd, url: url}
}

func TestAcknowledgedWritesSurviveKill9AndSIGTERMExitsZero(t *testing.T) {
	dir := t.TempDir()
	p := startProcess(t, "--data", dir)
	code, created := postJSON(t, p.url+"/v1/engagements",
		`{"kind":"agreement","title":"Crash-safe MOU","parties":["IOM","UNHCR"],"occurred_at":"2020-02-01"}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, created)
	}
	id := created["id"].(string)
	if code, body := postJSON(t, p.url+"/v1/engagements/"+id+"/events",
		`{"type":"agreement.signed","data":{"signed_on":"2020-02-03"}}`, "If-Match", `"1"`); code != http.StatusCreated {
		t.Fatalf("sign: %d %v", code, body)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	p = startProcess(t, "--data", dir)
	var e struct {
		Status  string
		Version int
	}
	if code := getJSON(t, p.url+"/v1/engagements/"+id, &e); code != http.StatusOK {
		t.Fatalf("after kill -9: GET = %d", code)
	}
	if e.Status != "active" || e.Version != 2 {
		t.Errorf("after kill -9: status %q version %d, want active 2", e.Status, e.Version)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("SIGTERM: exit %v, want 0", err)
	}
}

func TestServeFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want int
	}{
		{"no command", nil, nil, 2},
		{"unknown command", []string{"frobnicate"}, nil, 2},
		{"help", []string{"serve", "-h"}, nil, 0},
		{"bad sync flag", []string{"serve", "--sync", "sometimes"}, nil, 2},
		{"bad sync from environment", []string{"serve"}, []string{"ENGAGEMENTS_SYNC=sometimes"}, 2},
		{"bad replicas", []string{"serve", "--replicas", "0"}, nil, 2},
		{"unknown flag", []string{"serve", "--nope"}, nil, 2},
		{"bad log level", []string{"serve", "--log-level", "loud"}, nil, 2},
		{"bad log format", []string{"serve", "--log-format", "xml"}, nil, 2},
		{"reminders not days", []string{"serve", "--reminders", "90,soon"}, nil, 2},
		{"reminders not positive", []string{"serve", "--reminders", "30,0"}, nil, 2},
		{"reminders not whole", []string{"serve", "--reminders", "7.5"}, nil, 2},
		{"reminders empty", []string{"serve", "--reminders", ""}, nil, 2},
		{"reminders from environment", []string{"serve"}, []string{"ENGAGEMENTS_REMINDERS=-7"}, 2},
		{"reminder day too short", []string{"serve"}, []string{"ENGAGEMENTS_REMINDER_DAY=10ms"}, 2},
		{"memory limit not a size", []string{"serve", "--memory-limit", "lots"}, nil, 2},
		{"memory limit too small", []string{"serve", "--memory-limit", "1MiB"}, nil, 2},
		{"memory limit from environment", []string{"serve"}, []string{"ENGAGEMENTS_MEMORY_LIMIT=-1"}, 2},
		{"reminder sweep rate not a number", []string{"serve"}, []string{"ENGAGEMENTS_REMINDER_SWEEP_RATE=fast"}, 2},
		{"reminder sweep rate zero", []string{"serve"}, []string{"ENGAGEMENTS_REMINDER_SWEEP_RATE=0"}, 2},
		{"projection save after no events", []string{"serve", "--projection-save-events", "0"}, nil, 2},
		{"projection save too often", []string{"serve", "--projection-save-every", "10ms"}, nil, 2},
		{"projection save not a duration", []string{"serve"}, []string{"ENGAGEMENTS_PROJECTION_SAVE_EVERY=soon"}, 2},
		{"debug listener not on loopback", []string{"serve", "--debug-listen", "0.0.0.0:6060"}, nil, 2},
		{"debug listener on a public name", []string{"serve", "--debug-listen", "example.org:6060"}, nil, 2},
		{"debug listener without a port", []string{"serve", "--debug-listen", "127.0.0.1"}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kv := range tt.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			var stderr strings.Builder
			if got := run(tt.args, io.Discard, &stderr); got != tt.want {
				t.Errorf("exit = %d, want %d; stderr:\n%s", got, tt.want, stderr.String())
			}
		})
	}
}
