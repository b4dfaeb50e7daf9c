package importer

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/iom-who/engagements/domain"
	"github.com/xuri/excelize/v2"
)

// Record is one row to write: its cells by column name.
type Record map[string]string

// Help is the help sheet: for each column of each sheet, what it holds.
func Help() [][]string {
	rows := [][]string{{"sheet", "column", "required", "what it holds"}}
	spec, _ := domain.SpecOf(domain.EngagementRecorded)
	rows = append(rows,
		[]string{SheetEngagements, ColKey, "yes", "A key of your own for the row, unique in the sheet (e.g. mou-1999). The events sheet names the engagement by it, and it makes a second import record nothing twice: keep it when you fix a row."})
	for _, f := range spec.Fields {
		rows = append(rows, []string{SheetEngagements, f.Name, required(f), describe(f)})
	}
	rows = append(rows,
		[]string{SheetEngagements, ColOccurredAt, "no", "When it began in the world: YYYY-MM-DD or an RFC 3339 time, decades back if need be, not in the future; empty means the day of the import."},
		[]string{SheetEvents, ColEngagement, "yes", "The key of the engagements row the event belongs to. An engagement's events are recorded in the order of their rows."},
		[]string{SheetEvents, ColKey, "no", "A key of your own for the event, unique among its engagement's events. Without it the event's position among them is its key: give keys if you may insert rows between runs."},
		[]string{SheetEvents, ColType, "yes", "The event type: " + strings.Join(importableTypes(), ", ") + "."},
		[]string{SheetEvents, ColOccurredAt, "no", "When it happened in the world (back-dated): YYYY-MM-DD or an RFC 3339 time, not in the future; empty means the day of the import."},
	)
	for _, col := range EventColumns()[4:] {
		var types []string
		var f *domain.Field
		name := col
		if col == ColTarget {
			name = "target_id"
		}
		for _, s := range domain.Specs() {
			if fl, ok := s.Field(name); ok && importable(s.Type) {
				types = append(types, string(s.Type))
				if f == nil {
					f = fl
				}
			}
		}
		what := describe(*f)
		if col == ColTarget {
			what = "The engagement linked to: the key of an engagements row, or the id of an engagement already in the tracker."
		}
		rows = append(rows, []string{SheetEvents, col, "for " + strings.Join(types, ", "), what})
	}
	return rows
}

func importableTypes() []string {
	var out []string
	for _, s := range domain.Specs() {
		if importable(s.Type) {
			out = append(out, string(s.Type))
		}
	}
	return out
}

func required(f domain.Field) string {
	switch {
	case f.Required && f.OnlyFor != "":
		return "for " + string(f.OnlyFor)
	case f.Required:
		return "yes"
	case f.OnlyFor != "":
		return "no (" + string(f.OnlyFor) + " only)"
	}
	return "no"
}

func describe(f domain.Field) string {
	what := f.Label
	if f.Hint != "" {
		what += " (" + f.Hint + ")"
	}
	switch f.Input {
	case domain.InputDate:
		what += ": YYYY-MM-DD"
	case domain.InputList:
		what += ": entries separated by commas"
	case domain.InputSelect:
		what += ": one of " + strings.Join(f.Options, ", ")
	}
	if f.Max > 0 && f.Input != domain.InputSelect {
		what += fmt.Sprintf(" (at most %d characters", f.Max)
		if f.Input == domain.InputList {
			what += " each"
		}
		what += ")"
	}
	return what + "."
}

// WriteXLSX writes the template as a workbook, with engagements and events
// as its rows (none for the empty template), and the help sheet.
func WriteXLSX(w io.Writer, engagements, events []Record) error {
	x := excelize.NewFile()
	defer x.Close()
	if err := x.SetSheetName("Sheet1", SheetEngagements); err != nil {
		return err
	}
	bold, err := x.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	for _, s := range []struct {
		name string
		rows [][]string
	}{
		{SheetEngagements, table(EngagementColumns(), engagements)},
		{SheetEvents, table(EventColumns(), events)},
		{SheetHelp, Help()},
	} {
		if s.name != SheetEngagements {
			if _, err := x.NewSheet(s.name); err != nil {
				return err
			}
		}
		for i, row := range s.rows {
			cells := make([]any, len(row))
			for j, v := range row {
				cells[j] = v
			}
			cell, _ := excelize.CoordinatesToCellName(1, i+1)
			if err := x.SetSheetRow(s.name, cell, &cells); err != nil {
				return err
			}
		}
		last, _ := excelize.ColumnNumberToName(len(s.rows[0]))
		if err := x.SetColWidth(s.name, "A", last, 18); err != nil {
			return err
		}
		if s.name == SheetHelp {
			if err := x.SetColWidth(s.name, "D", "D", 100); err != nil {
				return err
			}
		}
		if err := x.SetRowStyle(s.name, 1, 1, bold); err != nil {
			return err
		}
		if err := x.SetPanes(s.name, &excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
			return err
		}
	}
	x.SetActiveSheet(0)
	_, err = x.WriteTo(w)
	return err
}

// WriteCSV writes the template's CSV form: the column sheet, then every
// column of both sheets once, then the rows of engagements and of events.
func WriteCSV(w io.Writer, engagements, events []Record) error {
	header := []string{ColSheet}
	for _, c := range append(EngagementColumns(), EventColumns()...) {
		if !slices.Contains(header, c) {
			header = append(header, c)
		}
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, s := range []struct {
		name string
		recs []Record
	}{{SheetEngagements, engagements}, {SheetEvents, events}} {
		for _, r := range s.recs {
			row := make([]string, len(header))
			row[0] = s.name
			for i, c := range header[1:] {
				row[i+1] = r[c]
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// table is a sheet's rows: the header cols, then each record's cells.
func table(cols []string, recs []Record) [][]string {
	rows := [][]string{cols}
	for _, r := range recs {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = r[c]
		}
		rows = append(rows, row)
	}
	return rows
}
