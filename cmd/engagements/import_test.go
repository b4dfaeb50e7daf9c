package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/importer"
)

var update = flag.Bool("update", false, "rewrite examples/import (the template and the IOM–WHO example) from the code")

// exampleDir is where the template and the example are shipped.
const exampleDir = "../../examples/import"

// exampleRecords are the demo data (the seed's IOM–WHO engagements) as rows
// of the import template. The demo gives the WHO regional committee
// meetings the day of loading as their date, for want of one in the seed:
// in a file that stays the same, their scheduling and attendance (which
// need a date) are left out, and their note says the seed gives no date.
func exampleRecords() (engagements, events []importer.Record) {
	const today = "\x00today"
	cell := func(v any) string {
		switch v := v.(type) {
		case []string:
			return strings.Join(v, ", ")
		case string:
			return v
		}
		panic(fmt.Sprintf("demo value %v", v))
	}
	for _, e := range demoData(today) {
		r := importer.Record{importer.ColKey: e.key}
		for k, v := range e.data {
			r[k] = cell(v)
		}
		if e.on != today {
			r[importer.ColOccurredAt] = e.on
		}
		engagements = append(engagements, r)
		undated := false
	next:
		for _, ev := range e.events {
			r := importer.Record{importer.ColEngagement: e.key, importer.ColType: string(ev.typ), importer.ColOccurredAt: ev.on}
			for k, v := range ev.data {
				if v == today {
					undated = true
				}
				r[k] = cell(v)
			}
			if undated && ev.typ != domain.EngagementNoted {
				continue next
			}
			if ev.link != "" {
				r[importer.ColTarget] = ev.link
			}
			events = append(events, r)
		}
	}
	return engagements, events
}

// exampleFiles are the files shipped in examples/import and how each is
// made.
func exampleFiles() map[string]func(string) error {
	engagements, events := exampleRecords()
	example := func(path string) error { return writeTemplate(path, engagements, events) }
	return map[string]func(string) error{
		"template.xlsx": func(path string) error { return writeTemplate(path, nil, nil) },
		"template.csv":  func(path string) error { return writeTemplate(path, nil, nil) },
		"iom-who.xlsx":  example,
		"iom-who.csv":   example,
	}
}

// TestExampleImportFiles holds the shipped template and example to the
// code that makes them (go generate ./cmd/engagements, or this test with
// -update, rewrites them): byte for byte, so they are reproducible.
func TestExampleImportFiles(t *testing.T) {
	dir := t.TempDir()
	for name, mk := range exampleFiles() {
		path := filepath.Join(dir, name)
		if err := mk(path); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		again := filepath.Join(dir, "again-"+name)
		if err := mk(again); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(again); !bytes.Equal(b, got) {
			t.Errorf("%s: two runs make different files", name)
		}
		shipped := filepath.Join(exampleDir, name)
		if *update {
			if err := os.WriteFile(shipped, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if want, err := os.ReadFile(shipped); err != nil || !bytes.Equal(want, got) {
			t.Errorf("%s is not what the code makes (%v): run go generate ./cmd/engagements", shipped, err)
		}
	}
}

var summaryLine = regexp.MustCompile(`engagements: (\d+) recorded, (\d+) already there; events: (\d+) recorded, (\d+) already there; (\d+) refused, (\d+) not tried`)

// importCLI runs engagements import against m and returns the numbers of
// its summary line: recorded, already there, events recorded, events
// already there, refused, not tried.
func importCLI(t *testing.T, m *Main, wantCode int, args ...string) ([6]int, string) {
	t.Helper()
	code, out, errOut := runCLI(append([]string{"import", "--url", m.URL(), "--token", testToken}, args...)...)
	if code != wantCode {
		t.Fatalf("import %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, wantCode, out, errOut)
	}
	var n [6]int
	if s := summaryLine.FindStringSubmatch(out); s != nil {
		for i := range n {
			fmt.Sscan(s[i+1], &n[i])
		}
	}
	return n, out
}

// streamLast is the stream's last sequence, as /readyz reports it.
func streamLast(t *testing.T, m *Main) uint64 {
	t.Helper()
	var r struct{ Stream uint64 }
	if code := getJSON(t, m.URL()+"/readyz", &r); code != http.StatusOK {
		t.Fatalf("readyz: %d", code)
	}
	return r.Stream
}

// TestImportExample imports the shipped IOM–WHO example into an empty
// store: every engagement and event is recorded, with its back-dated
// times and its links; importing it again (the workbook, then the same
// rows as CSV) records nothing new.
func TestImportExample(t *testing.T) {
	m := startMain(t, t.TempDir(), false)
	t.Cleanup(func() { _ = m.Close() })
	engagements, events := exampleRecords()
	xlsx := filepath.Join(exampleDir, "iom-who.xlsx")

	code, out, _ := runCLI("import", "--dry-run", xlsx)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d engagements and %d events would be recorded", len(engagements), len(events))) {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	if got := streamLast(t, m); got != 0 {
		t.Fatalf("the dry run stored %d messages", got)
	}

	n, out := importCLI(t, m, 0, xlsx)
	if n != [6]int{len(engagements), 0, len(events), 0, 0, 0} {
		t.Fatalf("first import: %v\n%s", n, out)
	}
	last := streamLast(t, m)
	if last != uint64(len(engagements)+len(events)) {
		t.Errorf("the stream holds %d messages, want %d", last, len(engagements)+len(events))
	}
	var list struct {
		Items []struct {
			ID, Kind, Title, Status string
			StartedAt               string `json:"started_at"`
			Links                   []struct {
				TargetID string `json:"target_id"`
				Relation string
			}
		}
	}
	getJSON(t, m.URL()+"/v1/engagements?limit=100", &list)
	if len(list.Items) != len(engagements) {
		t.Fatalf("%d engagements listed, want %d", len(list.Items), len(engagements))
	}
	var mou string
	for _, e := range list.Items {
		if strings.Contains(e.Title, "Memorandum") {
			mou = e.ID
			if e.Status != "active" || !strings.HasPrefix(e.StartedAt, "1999-01-01") {
				t.Errorf("the MOU: %+v", e)
			}
		}
	}
	var h struct {
		Events []struct {
			Type       string
			OccurredAt string `json:"occurred_at"`
			Precision  string `json:"time_precision"`
		}
	}
	getJSON(t, m.URL()+"/v1/engagements/"+mou+"/history", &h)
	// Signed in 1999, renewed in January 2019: as precise as the seed.
	if len(h.Events) != 4 || h.Events[1].Precision != domain.PrecisionYear || h.Events[2].Type != "agreement.renewed" ||
		!strings.HasPrefix(h.Events[2].OccurredAt, "2019-01-01") || h.Events[2].Precision != domain.PrecisionMonth {
		t.Errorf("the MOU's history: %+v", h.Events)
	}

	// The GCM and the GCR each reference the Framework, by its row's key.
	var framework string
	referencing := 0
	for _, e := range list.Items {
		if strings.HasPrefix(e.Title, "Framework of priorities") {
			framework = e.ID
		}
	}
	for _, e := range list.Items {
		for _, l := range e.Links {
			if l.TargetID == framework && l.Relation == "references" {
				referencing++
			}
		}
	}
	if framework == "" || referencing != 2 {
		t.Errorf("%d engagements reference the Framework (%q), want 2", referencing, framework)
	}

	n, out = importCLI(t, m, 0, xlsx)
	if n != [6]int{0, len(engagements), 0, len(events), 0, 0} {
		t.Errorf("second import: %v\n%s", n, out)
	}
	n, out = importCLI(t, m, 0, filepath.Join(exampleDir, "iom-who.csv"))
	if n != [6]int{0, len(engagements), 0, len(events), 0, 0} {
		t.Errorf("the same rows as CSV: %v\n%s", n, out)
	}
	if got := streamLast(t, m); got != last {
		t.Errorf("importing again stored %d messages", got-last)
	}
}

// TestImportFileWithTwoMistakes dry-runs an office's file with two
// mistakes: both are reported with their row and column, and nothing is
// stored, by the dry run or by a real run; fixed, it imports, and a second
// run records nothing new.
func TestImportFileWithTwoMistakes(t *testing.T) {
	m := startMain(t, t.TempDir(), false)
	t.Cleanup(func() { _ = m.Close() })
	engagements, events := exampleRecords()
	engagements[0] = clone(engagements[0])
	delete(engagements[0], "title") // the MOU's title left out: engagements row 2, column C
	// A meeting's start on a day that is none: events row i+2 (in the CSV
	// file, line i+2 after the engagements), column starts_on.
	at := slices.IndexFunc(events, func(r importer.Record) bool { return r["starts_on"] != "" })
	events[at] = clone(events[at])
	start := events[at]["starts_on"]
	events[at]["starts_on"] = "2018-02-30"
	dir := t.TempDir()
	for _, name := range []string{"office.xlsx", "office.csv"} {
		path := filepath.Join(dir, name)
		if err := writeTemplate(path, engagements, events); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"--dry-run", path}, {path}} {
			_, out := importCLI(t, m, 1, args...)
			want := []string{
				`engagements row 2, column C \(title\): is required`,
				fmt.Sprintf(`events row %d, column [A-Z]+ \(starts_on\): must be a date as YYYY-MM-DD`, at+2)}
			if name == "office.csv" {
				want = []string{
					`engagements row 2, column D \(title\): is required`,
					fmt.Sprintf(`events row %d, column [A-Z]+ \(starts_on\): must be a date as YYYY-MM-DD`, len(engagements)+at+2)}
			}
			for _, w := range want {
				if !regexp.MustCompile(`(?m)^` + w + `$`).MatchString(out) {
					t.Errorf("%s %v: no %q in\n%s", name, args, w, out)
				}
			}
			if !strings.Contains(out, ": 2 problems") || !strings.Contains(out, "Nothing was stored") {
				t.Errorf("%s %v: the summary does not say 2 problems, nothing stored:\n%s", name, args, out)
			}
			if got := streamLast(t, m); got != 0 {
				t.Fatalf("%s %v: %d messages stored", name, args, got)
			}
		}
	}
	// Fixed, it imports; again, nothing new.
	engagements[0]["title"] = "IOM–WHO Memorandum of Understanding"
	events[at]["starts_on"] = start
	path := filepath.Join(dir, "office.xlsx")
	if err := writeTemplate(path, engagements, events); err != nil {
		t.Fatal(err)
	}
	if n, out := importCLI(t, m, 0, path); n != [6]int{len(engagements), 0, len(events), 0, 0, 0} {
		t.Fatalf("fixed: %v\n%s", n, out)
	}
	last := streamLast(t, m)
	if n, out := importCLI(t, m, 0, path); n != [6]int{0, len(engagements), 0, len(events), 0, 0} {
		t.Errorf("again: %v\n%s", n, out)
	}
	if got := streamLast(t, m); got != last {
		t.Errorf("the second run stored %d messages", got-last)
	}
}

func clone(r importer.Record) importer.Record {
	out := make(importer.Record, len(r))
	for k, v := range r {
		out[k] = v
	}
	return out
}

// TestImportUsage holds the command's usage errors.
func TestImportUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{nil, 2, "Usage: engagements import"},
		{[]string{"a.xlsx", "b.xlsx"}, 2, "Usage"},
		{[]string{"nothing-here.xlsx"}, 2, "no such file"},
		{[]string{"notes.txt"}, 2, "no such file"},
		{[]string{"--bogus", "a.xlsx"}, 2, "flag provided but not defined"},
	} {
		code, _, errOut := runCLI(append([]string{"import"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.err) {
			t.Errorf("import %v: exit %d, stderr %q; want %d, %q", tc.args, code, errOut, tc.code, tc.err)
		}
	}
	// A real run needs a token; the template is written on request.
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "t.xlsx")
	if code, out, errOut := runCLI("import", "--template", tmpl); code != 0 || !strings.Contains(out, tmpl) {
		t.Fatalf("--template: %d %s %s", code, out, errOut)
	}
	engagements, events := exampleRecords()
	path := filepath.Join(dir, "f.csv")
	if err := writeTemplate(path, engagements[:1], events[:1]); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENGAGEMENTS_TOKEN", "")
	if code, _, errOut := runCLI("import", path); code != 2 || !strings.Contains(errOut, "a token is needed") {
		t.Errorf("no token: %d %s", code, errOut)
	}
}

// TestImportServiceRefusal imports a row only the service can refuse (a
// link to an id no engagement has): it is reported by its row and column,
// the later events of its engagement are not tried, and the other
// engagements are recorded.
func TestImportServiceRefusal(t *testing.T) {
	m := startMain(t, t.TempDir(), false)
	t.Cleanup(func() { _ = m.Close() })
	path := filepath.Join(t.TempDir(), "f.xlsx")
	if err := writeTemplate(path, []importer.Record{
		{"key": "a", "kind": "agreement", "title": "A", "parties": "IOM"},
		{"key": "b", "kind": "agreement", "title": "B", "parties": "IOM"},
	}, []importer.Record{
		{"engagement": "a", "type": "engagement.linked", "target": newUUID(t), "relation": "references"},
		{"engagement": "a", "type": "engagement.noted", "note": "after the link"},
		{"engagement": "b", "type": "engagement.noted", "note": "fine"},
	}); err != nil {
		t.Fatal(err)
	}
	n, out := importCLI(t, m, 1, path)
	if n != [6]int{2, 0, 1, 0, 1, 1} {
		t.Errorf("summary %v\n%s", n, out)
	}
	if !strings.Contains(out, "events row 2, column L (target): no engagement has this id") {
		t.Errorf("the refusal is not reported by row and column:\n%s", out)
	}
	if got := streamLast(t, m); got != 3 {
		t.Errorf("%d messages stored, want 3 (two engagements, one note)", got)
	}
}

// TestImportKilledAndRerun kills an import with SIGKILL while it records
// events, runs it again, and finds every row stored exactly once.
func TestImportKilledAndRerun(t *testing.T) {
	m := startMain(t, t.TempDir(), false)
	t.Cleanup(func() { _ = m.Close() })
	const engagements, perEngagement = 600, 10
	var engs, events []importer.Record
	for i := range engagements {
		key := fmt.Sprint("e", i)
		engs = append(engs, importer.Record{"key": key, "kind": "agreement", "title": "Agreement " + key,
			"parties": "IOM, WHO", "occurred_at": "2001-01-01"})
		for j := range perEngagement {
			events = append(events, importer.Record{"engagement": key, "type": "engagement.noted",
				"occurred_at": "2002-01-01", "note": fmt.Sprint("note ", j)})
		}
	}
	path := filepath.Join(t.TempDir(), "big.csv")
	if err := writeTemplate(path, engs, events); err != nil {
		t.Fatal(err)
	}
	total := uint64(engagements * (perEngagement + 1))

	cmd := exec.Command(os.Args[0], "import", "--url", m.URL(), path)
	cmd.Env = append(os.Environ(), "ENGAGEMENTS_TEST_EXEC=1", "ENGAGEMENTS_TOKEN="+testToken)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once the events have begun (every engagement is recorded
	// first), polling the stream for at most a minute.
	killed := false
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if last := streamLast(t, m); last > engagements {
			killed = last < total
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("the import was not caught recording its events (stream at %d of %d)", streamLast(t, m), total)
	}
	t.Logf("killed at %d of %d messages", streamLast(t, m), total)

	n, out := importCLI(t, m, 0, path)
	if n[0]+n[1] != engagements || n[2]+n[3] != engagements*perEngagement || n[1] != engagements || n[3] == 0 {
		t.Errorf("the rerun: %v\n%s", n, out)
	}
	if got := streamLast(t, m); got != total {
		t.Errorf("the stream holds %d messages, want %d: each row once", got, total)
	}
}
