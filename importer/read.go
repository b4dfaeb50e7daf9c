package importer

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/xuri/excelize/v2"
)

// Limits on what a file may hold.
const (
	// MaxFileBytes bounds the file read (and an .xlsx's unzipped size).
	MaxFileBytes = 64 << 20
	// MaxRows bounds the rows of each sheet.
	MaxRows = 200_000
)

// Problem is one thing wrong with a file: where (sheet, row, column) and
// what. Row counts as the spreadsheet does, the header being row 1 (in a
// CSV file, the line); Row 0 and Column "" mean the whole file or sheet.
type Problem struct {
	Sheet   string `json:"sheet"`
	Row     int    `json:"row"`
	Column  string `json:"column"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Sheet)
	if p.Row > 0 {
		fmt.Fprintf(&b, " row %d", p.Row)
	}
	if p.Column != "" {
		fmt.Fprintf(&b, ", column %s", p.Column)
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	return b.String()
}

// Row is one row of a sheet: its number and its cells by column name
// (trimmed; absent when empty).
type Row struct {
	Sheet string
	Num   int
	Cells map[string]string
	// letters are the spreadsheet's letters of the columns, by name.
	letters map[string]string
}

// Column names col as a problem report shows it: its letter and name,
// "C (title)", or the name alone when the file has no such column.
func (r Row) Column(col string) string {
	if l := r.letters[col]; l != "" {
		return l + " (" + col + ")"
	}
	return col
}

// File is what was read: the rows of the two sheets, in order.
type File struct {
	Engagements []Row
	Events      []Row
}

// Read reads an .xlsx workbook or a .csv file (by its extension). Problems
// with the file's shape (a missing sheet, an unknown column, too many rows)
// are returned as problems; an error means it could not be read at all.
func Read(path string) (*File, []Problem, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if info.Size() > MaxFileBytes {
		return nil, nil, fmt.Errorf("%s is larger than %d MiB", path, MaxFileBytes>>20)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".xlsx":
		return readXLSX(path)
	case ".csv":
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		return ReadCSV(f)
	}
	return nil, nil, fmt.Errorf("%s: the file must be .xlsx or .csv", path)
}

// ReadFrom is Read for a file that comes as r (an upload), name telling
// its form by its extension. At most MaxFileBytes are read.
func ReadFrom(name string, r io.Reader) (*File, []Problem, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".xlsx":
		x, err := excelize.OpenReader(io.LimitReader(r, MaxFileBytes), xlsxOptions)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", name, err)
		}
		defer x.Close()
		return sheets(name, x)
	case ".csv":
		return ReadCSV(r)
	}
	return nil, nil, fmt.Errorf("%s: the file must be .xlsx or .csv", name)
}

// xlsxOptions bound what a workbook may unzip to.
var xlsxOptions = excelize.Options{UnzipSizeLimit: MaxFileBytes, UnzipXMLSizeLimit: MaxFileBytes}

func readXLSX(path string) (*File, []Problem, error) {
	x, err := excelize.OpenFile(path, xlsxOptions)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer x.Close()
	return sheets(path, x)
}

// sheets reads the workbook x (from path) into a File.
func sheets(path string, x *excelize.File) (*File, []Problem, error) {
	props, err := x.GetWorkbookProps()
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	date1904 := props.Date1904 != nil && *props.Date1904
	out := &File{}
	var problems []Problem
	for _, s := range []struct {
		name string
		cols []string
		to   *[]Row
	}{{SheetEngagements, EngagementColumns(), &out.Engagements}, {SheetEvents, EventColumns(), &out.Events}} {
		if !slices.Contains(x.GetSheetList(), s.name) {
			problems = append(problems, Problem{Sheet: s.name, Message: "the workbook has no sheet of this name"})
			continue
		}
		rows, err := x.GetRows(s.name, excelize.Options{RawCellValue: true})
		if err != nil {
			return nil, nil, fmt.Errorf("read sheet %s: %w", s.name, err)
		}
		var ps []Problem
		*s.to, ps = sheetRows(s.name, s.cols, rows, nil, date1904)
		problems = append(problems, ps...)
	}
	return out, problems, nil
}

// ReadCSV reads the CSV form of the template: one file whose header holds
// the column "sheet" and the columns of both sheets; each row's "sheet" is
// engagements or events, and its other cells are read as that sheet's.
func ReadCSV(r io.Reader) (*File, []Problem, error) {
	cr := csv.NewReader(io.LimitReader(r, MaxFileBytes))
	cr.FieldsPerRecord = -1
	var records [][]string
	var lines []int
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, []Problem{{Sheet: "csv", Row: pe.Line, Message: pe.Err.Error()}}, nil
			}
			return nil, nil, err
		}
		line, _ := cr.FieldPos(0)
		records = append(records, rec)
		lines = append(lines, line)
		if len(records) > 2*MaxRows+1 {
			return nil, []Problem{{Sheet: "csv", Message: fmt.Sprintf("more than %d rows", 2*MaxRows)}}, nil
		}
	}
	if len(records) == 0 {
		return nil, []Problem{{Sheet: "csv", Message: "the file is empty; its first line names the columns"}}, nil
	}
	header := records[0]
	for i := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff")))
	}
	at := slices.Index(header, ColSheet)
	if at < 0 {
		return nil, []Problem{{Sheet: "csv", Row: lines[0], Message: "no column \"sheet\": it says which sheet (engagements or events) each row belongs to"}}, nil
	}
	// Each sheet reads its own columns of the header; the other sheet's
	// columns must be empty in its rows.
	out := &File{}
	var problems []Problem
	engCols, evCols := EngagementColumns(), EventColumns()
	for i, name := range header {
		if i != at && name != "" && !slices.Contains(engCols, name) && !slices.Contains(evCols, name) {
			problems = append(problems, Problem{Sheet: "csv", Row: lines[0], Column: letter(i) + " (" + name + ")",
				Message: "unknown column; see the template's help sheet"})
		}
	}
	by := map[string][][]string{}
	byLines := map[string][]int{}
	for i, rec := range records[1:] {
		sheet := ""
		if at < len(rec) {
			sheet = strings.ToLower(strings.TrimSpace(rec[at]))
		}
		if sheet != SheetEngagements && sheet != SheetEvents {
			if !blank(rec) {
				problems = append(problems, Problem{Sheet: "csv", Row: lines[i+1], Column: letter(at) + " (sheet)",
					Message: "must be engagements or events"})
			}
			continue
		}
		by[sheet] = append(by[sheet], rec)
		byLines[sheet] = append(byLines[sheet], lines[i+1])
	}
	for _, s := range []struct {
		name string
		cols []string
		to   *[]Row
	}{{SheetEngagements, engCols, &out.Engagements}, {SheetEvents, evCols, &out.Events}} {
		rows := append([][]string{header}, by[s.name]...)
		nums := append([]int{lines[0]}, byLines[s.name]...)
		var ps []Problem
		*s.to, ps = sheetRows(s.name, s.cols, rows, nums, false)
		problems = append(problems, ps...)
	}
	return out, problems, nil
}

// sheetRows reads a sheet's rows (the first its header) into Rows: nums
// are their numbers (nil: 1, 2, …), cols the sheet's columns. A header
// naming a column of neither sheet is a problem (in a CSV file, ReadCSV
// reports those); a cell in a column of the other sheet is one too.
func sheetRows(sheet string, cols []string, rows [][]string, nums []int, date1904 bool) ([]Row, []Problem) {
	num := func(i int) int {
		if nums != nil {
			return nums[i]
		}
		return i + 1
	}
	if len(rows) == 0 {
		return nil, []Problem{{Sheet: sheet, Message: "the sheet is empty; its first row names the columns"}}
	}
	if len(rows)-1 > MaxRows {
		return nil, []Problem{{Sheet: sheet, Message: fmt.Sprintf("more than %d rows", MaxRows)}}
	}
	var problems []Problem
	header := make([]string, len(rows[0]))
	letters := make(map[string]string)
	seen := make(map[string]bool)
	for i, h := range rows[0] {
		name := strings.ToLower(strings.TrimSpace(h))
		switch {
		case name == "":
		case slices.Contains(cols, name):
			if seen[name] {
				problems = append(problems, Problem{Sheet: sheet, Row: num(0), Column: letter(i) + " (" + name + ")",
					Message: "the column appears twice"})
				continue
			}
			seen[name] = true
			header[i] = name
			letters[name] = letter(i)
		case nums == nil || name == ColSheet:
			if nums == nil {
				problems = append(problems, Problem{Sheet: sheet, Row: num(0), Column: letter(i) + " (" + name + ")",
					Message: "unknown column; see the template's help sheet"})
			}
		default:
			header[i] = "\x00" + name // the other sheet's column, in a CSV file
		}
	}
	var out []Row
	for i, rec := range rows[1:] {
		if blank(rec) {
			continue
		}
		r := Row{Sheet: sheet, Num: num(i + 1), Cells: make(map[string]string), letters: letters}
		for j, v := range rec {
			if j >= len(header) || header[j] == "" {
				if v = strings.TrimSpace(v); v != "" && j >= len(header) {
					problems = append(problems, Problem{Sheet: sheet, Row: r.Num, Column: letter(j),
						Message: "a value in a column without a name"})
				}
				continue
			}
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			if name, other := strings.CutPrefix(header[j], "\x00"); other {
				problems = append(problems, Problem{Sheet: sheet, Row: r.Num, Column: letter(j) + " (" + name + ")",
					Message: "this column is not one of the " + sheet + " sheet's; leave it empty in its rows"})
				continue
			}
			if isDate(header[j]) {
				v = excelDate(v, date1904)
			}
			r.Cells[header[j]] = v
		}
		out = append(out, r)
	}
	return out, problems
}

// excelDate turns a date cell that a spreadsheet stored as a serial number
// (days since 1900, or 1904) into YYYY-MM-DD, or RFC 3339 when it has a
// time of day; anything else is left as written.
//
// Four digits from domain.MinYear to MaxYear are a year (a date as precise
// as the record: "1999"), not the serial number of a day in 1905 or 1906.
func excelDate(v string, date1904 bool) string {
	if y, err := strconv.Atoi(v); err == nil && len(v) == 4 && y >= domain.MinYear && y <= domain.MaxYear {
		return v
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n <= 0 || n > 200_000 || math.IsNaN(n) {
		return v
	}
	t, err := excelize.ExcelDateToTime(n, date1904)
	if err != nil {
		return v
	}
	t = t.Round(time.Second)
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 {
		return t.Format(domain.DateLayout)
	}
	return t.Format(time.RFC3339)
}

func blank(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// letter is the spreadsheet letter of the i-th column (from 0).
func letter(i int) string {
	l, err := excelize.ColumnNumberToName(i + 1)
	if err != nil {
		return strconv.Itoa(i + 1)
	}
	return l
}
