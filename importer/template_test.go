package importer_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/importer"
	"github.com/xuri/excelize/v2"
)

// example is a small file: two engagements and their events, a link by key.
var (
	exampleEngagements = []importer.Record{
		{"key": "mou", "kind": "agreement", "title": "IOM–WHO MOU", "parties": "IOM, WHO", "tags": "mou; health", "occurred_at": "1999-01-01"},
		{"key": "gcm", "kind": "policy", "title": "GCM", "parties": "IOM,WHO", "instrument": "compact", "occurred_at": "2018-12-01"},
	}
	exampleEvents = []importer.Record{
		{"engagement": "mou", "type": "agreement.signed", "occurred_at": "1999-01-01", "signed_on": "1999-01-01"},
		{"engagement": "mou", "type": "agreement.renewed", "occurred_at": "2019-01-01", "renewed_on": "2019-01-01"},
		{"engagement": "gcm", "key": "link", "type": "engagement.linked", "occurred_at": "2018-12-01", "target": "mou", "relation": "references"},
	}
)

// write writes the example as name (.xlsx or .csv) in a temp dir.
func write(t *testing.T, name string, engagements, events []importer.Record) string {
	t.Helper()
	var b bytes.Buffer
	var err error
	if strings.HasSuffix(name, ".csv") {
		err = importer.WriteCSV(&b, engagements, events)
	} else {
		err = importer.WriteXLSX(&b, engagements, events)
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadBothForms reads the same rows from a workbook and a CSV file and
// finds them ready to import, with the same keys.
func TestReadBothForms(t *testing.T) {
	var keys [2][]string
	for i, name := range []string{"f.xlsx", "f.csv"} {
		f, problems, err := importer.Read(write(t, name, exampleEngagements, exampleEvents))
		if err != nil || len(problems) > 0 {
			t.Fatalf("%s: %v %v", name, err, problems)
		}
		p := importer.Check(f, time.Now())
		if len(p.Problems) > 0 || len(p.Engagements) != 2 || p.Events() != 3 {
			t.Fatalf("%s: %+v", name, p)
		}
		mou := p.Engagements[0]
		if got := mou.Body["parties"]; len(got.([]string)) != 2 || mou.Body["tags"].([]string)[1] != "health" {
			t.Errorf("%s: lists read as %v, %v", name, got, mou.Body["tags"])
		}
		if ev := p.Engagements[1].Events[0]; ev.Target != "mou" || !ev.TargetKey || ev.Row.Num != 4 && name == "f.xlsx" {
			t.Errorf("%s: the link is %+v", name, ev)
		}
		for _, e := range p.Engagements {
			keys[i] = append(keys[i], e.IdempotencyKey)
			for _, ev := range e.Events {
				keys[i] = append(keys[i], ev.IdempotencyKey)
			}
		}
	}
	if strings.Join(keys[0], " ") != strings.Join(keys[1], " ") {
		t.Errorf("the two forms give other keys: %v, %v", keys[0], keys[1])
	}
}

// TestCheckReportsEveryProblem puts one mistake in each row: every one is
// reported with its sheet, row and column, and the rows after a bad event
// of the same engagement are counted as not checked.
func TestCheckReportsEveryProblem(t *testing.T) {
	future := time.Now().AddDate(1, 0, 0).Format("2006-01-02")
	engagements := []importer.Record{
		{"key": "mou", "kind": "agreement", "title": "MOU", "parties": "IOM, WHO"},                 // 2: fine
		{"key": "notitle", "kind": "agreement", "parties": "IOM"},                                  // 3: no title
		{"key": "mou", "kind": "agreement", "title": "again", "parties": "IOM"},                    // 4: key twice
		{"key": "treaty", "kind": "treaty", "title": "x", "parties": "IOM"},                        // 5: unknown kind
		{"key": "later", "kind": "meeting", "title": "x", "parties": "IOM", "occurred_at": future}, // 6: future
		{"key": "pol", "kind": "policy", "title": "x", "parties": "IOM"},                           // 7: no instrument
		{"kind": "agreement", "title": "x", "parties": "IOM"},                                      // 8: no key
		{"key": "ok2", "kind": "agreement", "title": "fine", "parties": "IOM"},                     // 9: fine
	}
	events := []importer.Record{
		{"engagement": "mou", "type": "agreement.signed", "signed_on": "1999-13-01"},   // 2: bad date
		{"engagement": "mou", "type": "agreement.renewed", "renewed_on": "2019-01-01"}, // 3: not checked
		{"engagement": "ghost", "type": "engagement.noted", "note": "x"},               // 4: no such key
		{"engagement": "ok2", "type": "agreement.renewed", "renewed_on": "2019-01-01"}, // 5: a draft is not renewed
		{"engagement": "ok2", "type": "engagement.noted", "note": "after"},             // 6: not checked
		{"engagement": "notitle", "type": "engagement.noted", "note": "x"},             // 7: not checked (engagement refused)
	}
	events2 := []importer.Record{
		{"engagement": "ok2", "type": "agreement.torn_up"},                                               // 2: unknown type
		{"engagement": "mou", "type": "engagement.noted", "note": "x", "renewed_on": "2019-01-01"},       // 3: field of another type
		{"engagement": "mou", "type": "engagement.linked", "target": "nobody", "relation": "references"}, // 4: unknown target
		{"engagement": "mou", "key": "k", "type": "engagement.noted", "note": "x"},                       // 5: fine
		{"engagement": "mou", "key": "k", "type": "engagement.noted", "note": "y"},                       // 6: key twice
	}
	for _, name := range []string{"f.xlsx", "f.csv"} {
		t.Run(name, func(t *testing.T) {
			f, problems, err := importer.Read(write(t, name, engagements, events))
			if err != nil || len(problems) > 0 {
				t.Fatal(err, problems)
			}
			p := importer.Check(f, time.Now())
			want := []string{
				"engagements row 3, column C (title)",
				"engagements row 4, column A (key)",
				"engagements row 5, column B (kind)",
				"engagements row 6, column J (occurred_at)",
				"engagements row 7, column G (instrument)",
				"engagements row 8, column A (key)",
				"events row 2, column",
				"events row 4, column A (engagement)",
				"events row 5, column C (type)",
			}
			if name == "f.csv" {
				// One file: the rows are lines, the columns those of the
				// one header.
				want = []string{
					"engagements row 3, column D (title)", "engagements row 4, column B (key)",
					"engagements row 5, column C (kind)", "engagements row 6, column K (occurred_at)",
					"engagements row 7, column H (instrument)", "engagements row 8, column B (key)",
					"events row 10, column", "events row 12, column L (engagement)", "events row 13, column M (type)",
				}
			}
			checkProblems(t, p.Problems, want)
			if p.Unchecked != 3 {
				t.Errorf("%d events not checked, want 3", p.Unchecked)
			}
		})
	}
	f, _, err := importer.Read(write(t, "g.xlsx", []importer.Record{engagements[0], engagements[7]}, events2))
	if err != nil {
		t.Fatal(err)
	}
	checkProblems(t, importer.Check(f, time.Now()).Problems, []string{
		"events row 2, column C (type)", "events row 3, column", "events row 4, column", "events row 6, column B (key)",
	})
}

func checkProblems(t *testing.T, got []importer.Problem, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d problems, want %d:", len(got), len(want))
	}
	for i, p := range got {
		t.Logf("%s", p)
		if i < len(want) && !strings.HasPrefix(p.String(), want[i]) {
			t.Errorf("problem %d is %q, want %q…", i, p, want[i])
		}
	}
}

// TestSpreadsheetCells reads a workbook as an office's spreadsheet program
// would have saved it: headers in another case and order, dates as date
// cells (serial numbers), a time of day, blank rows, a BOM-less CSV twin.
func TestSpreadsheetCells(t *testing.T) {
	x := excelize.NewFile()
	defer x.Close()
	if err := x.SetSheetName("Sheet1", importer.SheetEngagements); err != nil {
		t.Fatal(err)
	}
	if _, err := x.NewSheet(importer.SheetEvents); err != nil {
		t.Fatal(err)
	}
	date, err := x.NewStyle(&excelize.Style{NumFmt: 14}) // m/d/yyyy
	if err != nil {
		t.Fatal(err)
	}
	set := func(sheet, cell string, v any) {
		t.Helper()
		if err := x.SetCellValue(sheet, cell, v); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range []string{"Title", "KEY", "Kind", "Parties", "Occurred_At"} {
		cell, _ := excelize.CoordinatesToCellName(i+1, 1)
		set(importer.SheetEngagements, cell, h)
	}
	set(importer.SheetEngagements, "A3", "MOU")
	set(importer.SheetEngagements, "B3", "mou")
	set(importer.SheetEngagements, "C3", "agreement")
	set(importer.SheetEngagements, "D3", "IOM; WHO")
	set(importer.SheetEngagements, "E3", time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC))
	if err := x.SetCellStyle(importer.SheetEngagements, "E3", "E3", date); err != nil {
		t.Fatal(err)
	}
	for i, h := range []string{"engagement", "type", "signed_on", "occurred_at"} {
		cell, _ := excelize.CoordinatesToCellName(i+1, 1)
		set(importer.SheetEvents, cell, h)
	}
	set(importer.SheetEvents, "A2", "mou")
	set(importer.SheetEvents, "B2", "agreement.signed")
	set(importer.SheetEvents, "C2", time.Date(1999, 3, 2, 0, 0, 0, 0, time.UTC))
	set(importer.SheetEvents, "D2", time.Date(1999, 3, 2, 10, 30, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "office.xlsx")
	if err := x.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	f, problems, err := importer.Read(path)
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	if len(f.Engagements) != 1 || f.Engagements[0].Num != 3 {
		t.Fatalf("engagements %+v", f.Engagements)
	}
	if got := f.Engagements[0].Cells["occurred_at"]; got != "1999-01-01" {
		t.Errorf("a date cell reads %q", got)
	}
	ev := f.Events[0].Cells
	if ev["signed_on"] != "1999-03-02" || ev["occurred_at"] != "1999-03-02T10:30:00Z" {
		t.Errorf("the event's dates read %q, %q", ev["signed_on"], ev["occurred_at"])
	}
	p := importer.Check(f, time.Now())
	if len(p.Problems) > 0 || p.Engagements[0].Row.Column("title") != "A (title)" {
		t.Errorf("%v %q", p.Problems, p.Engagements[0].Row.Column("title"))
	}
	// A sheet missing, an unknown column.
	x2 := excelize.NewFile()
	defer x2.Close()
	if err := x2.SetSheetName("Sheet1", importer.SheetEngagements); err != nil {
		t.Fatal(err)
	}
	if err := x2.SetCellValue(importer.SheetEngagements, "A1", "colour"); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "bad.xlsx")
	if err := x2.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	_, problems, err = importer.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	checkProblems(t, problems, []string{"engagements row 1, column A (colour): unknown column", "events: the workbook has no sheet"})
}
