package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/iom-who/engagements/importer"
	"github.com/peterbourgon/ff/v3"
)

//go:generate go test -run TestExampleImportFiles -update .

const importUsage = `Usage: engagements import [flags] FILE.xlsx|FILE.csv

Checks every row of FILE (the template in examples/import) with the
service's rules and records it through POST /v1/batches. --dry-run only
checks and reports every problem as sheet, row and column; nothing is stored.
Each row's key becomes its idempotency key: importing the file again records
nothing twice (within a day, with the same token).

Flags:
`

// importCmd: engagements import [--dry-run] [--url URL --token TOKEN] FILE.
func importCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, importUsage)
		fs.PrintDefaults()
	}
	dry := fs.Bool("dry-run", false, "check every row and report its problems; store nothing")
	url := fs.String("url", "http://127.0.0.1:8080", "the service's URL")
	token := fs.String("token", "", "a coordinator's or an admin's API token (better in ENGAGEMENTS_TOKEN)")
	tmpl := fs.String("template", "", "write the empty template to this .xlsx or .csv file and exit")
	// Flags may come after the file too: parse what follows it again.
	var files []string
	for rest := args; ; {
		if err := ff.Parse(fs, rest, ff.WithEnvVarPrefix("ENGAGEMENTS")); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintf(stderr, "engagements import: %v\n", err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *tmpl != "" {
		if len(files) > 0 {
			fmt.Fprintf(stderr, "engagements import: --template takes no file to import\n")
			return 2
		}
		if err := writeTemplate(*tmpl, nil, nil); err != nil {
			fmt.Fprintf(stderr, "engagements import: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote the template to %s\n", *tmpl)
		return 0
	}
	if len(files) != 1 {
		fs.Usage()
		return 2
	}
	path := files[0]
	f, problems, err := importer.Read(path)
	if err != nil {
		fmt.Fprintf(stderr, "engagements import: %v\n", err)
		return 2
	}
	var plan *importer.Plan
	if f != nil {
		plan = importer.Check(f, time.Now())
		problems = append(problems, plan.Problems...)
	}
	importer.SortProblems(problems)
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	if len(problems) > 0 {
		unchecked := ""
		if plan != nil && plan.Unchecked > 0 {
			unchecked = fmt.Sprintf(" (and %d events not checked, after a problem of their engagement)", plan.Unchecked)
		}
		fmt.Fprintf(stdout, "%s: %d %s%s. Nothing was stored.\n", path, len(problems), plural(len(problems), "problem"), unchecked)
		return 1
	}
	if *dry {
		fmt.Fprintf(stdout, "%s: no problems: %d engagements and %d events would be recorded. Nothing was stored (dry run).\n",
			path, len(plan.Engagements), plan.Events())
		return 0
	}
	if *token == "" {
		fmt.Fprintf(stderr, "engagements import: a token is needed (--token or ENGAGEMENTS_TOKEN): a coordinator's or an admin's\n")
		return 2
	}
	ctx, cancel := signalContext()
	defer cancel()
	total := uint64(len(plan.Engagements) + plan.Events())
	pb := bar(stderr, total, "importing")
	progress := func(n int) {
		if pb != nil {
			_ = pb.Add(n)
		}
	}
	start := time.Now()
	s, err := importer.Import(ctx, &importer.Client{URL: *url, Token: *token}, plan, progress)
	if pb != nil {
		_ = pb.Finish()
	}
	for _, p := range s.Problems {
		fmt.Fprintln(stdout, p)
	}
	fmt.Fprintf(stdout, "engagements: %d recorded, %d already there; events: %d recorded, %d already there; %d refused, %d not tried (%.1fs)\n",
		s.Recorded, s.Existing, s.EventsRecorded, s.EventsExisting, s.Refused, s.NotTried, time.Since(start).Seconds())
	if err != nil {
		fmt.Fprintf(stderr, "engagements import: stopped: %v (what was recorded stays; run the file again for the rest)\n", err)
		return 1
	}
	if s.Refused > 0 || s.NotTried > 0 {
		return 1
	}
	return 0
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// writeTemplate writes the template (.xlsx or .csv by path's extension)
// with engagements and events as its rows.
func writeTemplate(path string, engagements, events []importer.Record) error {
	var b bytes.Buffer
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".xlsx":
		err = importer.WriteXLSX(&b, engagements, events)
	case ".csv":
		err = importer.WriteCSV(&b, engagements, events)
	default:
		return fmt.Errorf("%s: the template is .xlsx or .csv", path)
	}
	if err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
