package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// auditFixture is a stopped serve's data directory and what it holds.
type auditFixture struct {
	dir         string
	events      int
	engagements int
	agreement   string // id of the agreement, signed and renewed
}

// newAuditFixture starts the Main that serve runs, records three
// engagements (six events) through its command path, and stops it.
func newAuditFixture(t *testing.T) auditFixture {
	t.Helper()
	f := auditFixture{dir: t.TempDir(), engagements: 3}
	m := startMain(t, f.dir, false)
	defer func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	exec := func(id string, typ domain.EventType, occurred, data string) string {
		t.Helper()
		on, err := time.Parse(domain.DateLayout, occurred)
		if err != nil {
			t.Fatal(err)
		}
		r, err := m.Service.Execute(context.Background(), app.Command{EngagementID: id, Type: typ, OccurredAt: on,
			Data: json.RawMessage(data), Actor: "auditor-test"})
		if err != nil {
			t.Fatalf("%s on %s: %v", typ, id, err)
		}
		f.events++
		return r.EngagementID
	}
	f.agreement = exec("", domain.EngagementRecorded, "2017-01-01", `{"kind":"agreement","title":"MOU","parties":["IOM","WHO"]}`)
	exec(f.agreement, domain.AgreementSigned, "2018-03-01", `{"signed_on":"2018-03-01"}`)
	policy := exec("", domain.EngagementRecorded, "2019-05-01",
		`{"kind":"policy","title":"WHA72.14","parties":["WHO"],"instrument":"resolution"}`)
	exec(policy, domain.PolicyAdopted, "2019-05-28", `{"adopted_by":"WHA"}`)
	exec("", domain.EngagementRecorded, "2020-01-01", `{"kind":"meeting","title":"Executive Board","parties":["WHO"]}`)
	exec(f.agreement, domain.AgreementRenewed, "2021-06-01", `{"renewed_on":"2021-06-01"}`)
	return f
}

// forge publishes a well-formed agreement.renewed CloudEvent without a hash
// header straight to the stream in dir, as a client with NATS access could,
// and returns its sequence.
func forge(t *testing.T, dir, id string) uint64 {
	t.Helper()
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: dir, NATSListen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer store.Close()
	nc, err := nats.Connect(store.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := eventstore.Encode(domain.Event{ID: newUUID(t), Type: domain.AgreementRenewed, EngagementID: id,
		Kind: domain.KindAgreement, Version: 4, OccurredAt: time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC),
		RecordedAt: time.Now().UTC(), Actor: "mallory", Data: json.RawMessage(`{"renewed_on":"2022-01-01"}`)})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: eventstore.IntakeSubject("engagements.agreement." + id + ".renewed"), Data: payload})
	if err != nil {
		t.Fatalf("publish the forged renewal: %v", err)
	}
	return ack.Sequence
}

func newUUID(t *testing.T) string {
	t.Helper()
	return uuid.Must(uuid.NewV7()).String()
}

// runCLI runs engagements with args as main does and returns the exit code,
// stdout and stderr.
func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

// verifyCLI runs verify and decodes the JSON report it prints.
func verifyCLI(t *testing.T, wantCode int, args ...string) domain.Report {
	t.Helper()
	code, out, errOut := runCLI(append([]string{"verify"}, args...)...)
	if code != wantCode {
		t.Fatalf("verify %v: exit %d, want %d; stderr:\n%s", args, code, wantCode, errOut)
	}
	var rep domain.Report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("verify %v: stdout is not a JSON report: %v\n%s", args, err, out)
	}
	return rep
}

// rebuildCLI runs rebuild and reads the "name value" lines it prints.
func rebuildCLI(t *testing.T, args ...string) map[string]float64 {
	t.Helper()
	code, out, errOut := runCLI(append([]string{"rebuild"}, args...)...)
	if code != 0 {
		t.Fatalf("rebuild %v: exit %d; stderr:\n%s", args, code, errOut)
	}
	got := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, value, ok := strings.Cut(line, " ")
		n, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil {
			t.Fatalf("rebuild: line %q is not \"name number\"; stdout:\n%s", line, out)
		}
		got[name] = n
	}
	for _, name := range []string{"events", "engagements", "seconds", "events/s"} {
		if _, ok := got[name]; !ok {
			t.Errorf("rebuild prints no %q line; stdout:\n%s", name, out)
		}
	}
	return got
}

func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, b)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], api.CSVHeader) {
		t.Fatalf("CSV header %v, want %v", rows[:min(1, len(rows))], api.CSVHeader)
	}
	return rows[1:]
}

func TestAuditCommandsOnStoppedStore(t *testing.T) {
	f := newAuditFixture(t)

	rep := verifyCLI(t, 0, "--data", f.dir)
	if !rep.OK || len(rep.Problems) != 0 || rep.Events != uint64(f.events) || rep.Engagements != f.engagements ||
		rep.LastSequence != uint64(f.events) || !hexHash.MatchString(rep.Head) {
		t.Errorf("verify report %+v, want ok with %d events, %d engagements and a head", rep, f.events, f.engagements)
	}
	if again := verifyCLI(t, 0, "--data", f.dir); again.Head != rep.Head {
		t.Errorf("head %s on the second verify, %s on the first", again.Head, rep.Head)
	}

	exports := []struct {
		name string
		args []string
		rows int
	}{
		{"everything", nil, f.events},
		{"agreement events", []string{"--type", "agreement.*"}, 2},
		{"policies", []string{"--kind", "policy"}, 2},
		{"sequences 2 to 4", []string{"--from", "2", "--to", "4"}, 3},
		{"2019 and later", []string{"--from", "2019-01-01"}, 4},
	}
	for _, tt := range exports {
		t.Run("export csv "+tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "events.csv")
			args := append([]string{"export", "--data", f.dir, "--format", "csv", "--out", out}, tt.args...)
			code, stdout, stderr := runCLI(args...)
			if code != 0 {
				t.Fatalf("%v: exit %d; stderr:\n%s", args, code, stderr)
			}
			if stdout != "" {
				t.Errorf("export --out wrote to stdout too: %q", stdout)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			rows := readCSV(t, b)
			if len(rows) != tt.rows {
				t.Errorf("%d rows, want %d:\n%s", len(rows), tt.rows, b)
			}
			for _, row := range rows {
				if !json.Valid([]byte(row[len(row)-1])) {
					t.Errorf("data column is not JSON: %q", row[len(row)-1])
				}
			}
			if want := "exported " + strconv.Itoa(tt.rows) + " events"; !strings.Contains(stderr, want) {
				t.Errorf("stderr %q lacks %q", stderr, want)
			}
		})
	}

	t.Run("export ndjson to stdout", func(t *testing.T) {
		code, stdout, stderr := runCLI("export", "--data", f.dir)
		if code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(lines) != f.events {
			t.Fatalf("%d lines, want %d:\n%s", len(lines), f.events, stdout)
		}
		for i, l := range lines {
			var e domain.Event
			if err := json.Unmarshal([]byte(l), &e); err != nil || e.Sequence != uint64(i+1) || e.Hash == "" {
				t.Errorf("line %d: %v: %s", i+1, err, l)
			}
		}
	})

	got := rebuildCLI(t, "--data", f.dir)
	if got["events"] != float64(f.events) || got["engagements"] != float64(f.engagements) || got["rejected"] != 0 ||
		got["undecodable"] != 0 {
		t.Errorf("rebuild printed %v, want %d events, %d engagements, none rejected or undecodable", got, f.events, f.engagements)
	}
	if got["seconds"] < 0 || got["events/s"] < 0 {
		t.Errorf("rebuild printed a negative time or rate: %v", got)
	}

	// A message published around the API fails the verification.
	forged := forge(t, f.dir, f.agreement)
	rep = verifyCLI(t, 1, "--data", f.dir)
	if rep.OK || len(rep.Problems) != 1 || rep.Problems[0].Sequence != forged || rep.Problems[0].EngagementID != f.agreement {
		t.Errorf("verify after the forgery: ok %v, problems %+v; want one at sequence %d", rep.OK, rep.Problems, forged)
	}
	if rep.Events != uint64(f.events)+1 {
		t.Errorf("verify read %d messages, want %d", rep.Events, f.events+1)
	}
	got = rebuildCLI(t, "--data", f.dir)
	if got["events"] != float64(f.events) || got["undecodable"] != 1 {
		t.Errorf("rebuild after the forgery printed %v, want %d events and 1 undecodable", got, f.events)
	}
	out := filepath.Join(t.TempDir(), "events.csv")
	if code, _, stderr := runCLI("export", "--data", f.dir, "--format", "csv", "--out", out); code != 0 {
		t.Fatalf("export after the forgery: exit %d; stderr:\n%s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if rows := readCSV(t, b); len(rows) != f.events {
		t.Errorf("export after the forgery has %d rows, want the %d valid events", len(rows), f.events)
	}
}

// verify --nats-url reads the stream of a running serve that exposes its
// embedded NATS server.
func TestVerifyRunningServe(t *testing.T) {
	const admin = "nats-admin-token-0123456789"
	m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1", Sync: "always", Replicas: 1,
		NATSAdminToken: admin}}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if _, err := m.Service.Execute(context.Background(), app.Command{Type: domain.EngagementRecorded, Actor: "t",
		Data: json.RawMessage(`{"kind":"agreement","title":"MOU","parties":["IOM","WHO"]}`)}); err != nil {
		t.Fatal(err)
	}
	url := m.Store.ClientURL()
	if url == "" {
		t.Fatal("no client URL with --nats-listen set")
	}
	rep := verifyCLI(t, 0, "--nats-url", url, "--nats-token", admin)
	if !rep.OK || rep.Events != 1 || rep.Engagements != 1 {
		t.Errorf("verify --nats-url: %+v, want ok with 1 event", rep)
	}
	if got := rebuildCLI(t, "--nats-url", url, "--nats-token", admin); got["events"] != 1 || got["engagements"] != 1 {
		t.Errorf("rebuild --nats-url printed %v", got)
	}
}

func TestAuditCommandFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"verify with neither --nats-url nor --data", []string{"verify"}, 2},
		{"verify with both --nats-url and --data", []string{"verify", "--nats-url", "nats://127.0.0.1:1", "--data", dir}, 2},
		{"verify --data that does not exist", []string{"verify", "--data", filepath.Join(dir, "nope")}, 2},
		{"verify with an unknown flag", []string{"verify", "--data", dir, "--fast"}, 2},
		{"verify with an argument", []string{"verify", "--data", dir, "extra"}, 2},
		{"verify help", []string{"verify", "-h"}, 0},
		{"export with neither", []string{"export"}, 2},
		{"export with both", []string{"export", "--nats-url", "nats://127.0.0.1:1", "--data", dir}, 2},
		{"export in an unknown format", []string{"export", "--data", dir, "--format", "xml"}, 2},
		{"export from a bad bound", []string{"export", "--data", dir, "--from", "yesterday"}, 2},
		{"export of an unknown type", []string{"export", "--data", dir, "--type", "agreement.bogus"}, 2},
		{"rebuild with neither", []string{"rebuild"}, 2},
		{"rebuild with both", []string{"rebuild", "--nats-url", "nats://127.0.0.1:1", "--data", dir}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr)
			}
			if tt.want == 2 && (stderr == "" || stdout != "") {
				t.Errorf("usage error: stdout %q, stderr %q; want only a message on stderr", stdout, stderr)
			}
		})
	}
}
