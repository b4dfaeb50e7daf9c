package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/iom-who/engagements/backup"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/peterbourgon/ff/v3"
)

// backupCmd: engagements backup --out DIR (--nats-url URL | --data DIR).
func backupCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	var sf storeFlags
	sf.register(fs)
	out := fs.String("out", "", "new directory to write the backup to (manifest.json and streams/*.ndjson)")
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "engagements backup: --out DIR is needed")
		return 2
	}
	return sf.withStore("backup", stderr, func(ctx context.Context, store *eventstore.Store) int {
		m, err := backup.Backup(ctx, store, *out)
		if err != nil {
			fmt.Fprintf(stderr, "engagements backup: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "backed up %d events (last sequence %d, %d engagements), %d documents, %d streams to %s in %.1fs\nhead %s\n",
			m.Events, m.LastSequence, m.Engagements, len(m.Documents), len(m.Streams), *out, m.Seconds, m.Head)
		return 0
	})
}

// restoreCmd: engagements restore (--nats-url URL | --data DIR) PATH.
func restoreCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	fs.Lookup("data").Usage = "data directory for the embedded NATS server to restore into (new or empty; start serve on it afterwards)"
	var paths []string
	for rest := args; ; {
		if err := ff.Parse(fs, rest, ff.WithEnvVarPrefix("ENGAGEMENTS")); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintf(stderr, "engagements restore: %v\n", err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		paths = append(paths, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(paths) != 1 {
		fmt.Fprintln(stderr, "engagements restore: give one backup directory: engagements restore [flags] PATH")
		return 2
	}
	if (sf.natsURL == "") == (sf.data == "") {
		fmt.Fprintln(stderr, "engagements restore: give exactly one of --nats-url URL or --data DIR")
		return 2
	}
	cfg := eventstore.Config{DataDir: sf.data, NATSURL: sf.natsURL, Sync: eventstore.SyncInterval,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	var err error
	if sf.natsToken != "" {
		if sf.natsURL == "" {
			fmt.Fprintln(stderr, "engagements restore: --nats-token is for --nats-url")
			return 2
		}
		if cfg.NATSURL, err = withToken(sf.natsURL, sf.natsToken); err != nil {
			fmt.Fprintf(stderr, "engagements restore: %v\n", err)
			return 2
		}
	}
	m, err := backup.ReadManifest(paths[0])
	if err != nil {
		fmt.Fprintf(stderr, "engagements restore: %v\n", err)
		return 2
	}
	if sf.data != "" {
		if err := os.MkdirAll(sf.data, 0o700); err != nil {
			fmt.Fprintf(stderr, "engagements restore: %v\n", err)
			return 2
		}
	}
	ctx, cancel := signalContext()
	defer cancel()
	// First look without changing anything: a store that is not empty is
	// refused before its configuration is touched.
	ro := cfg
	ro.ReadOnly = true
	if existing, err := eventstore.Open(ctx, ro); err == nil {
		err = backup.CheckEmpty(ctx, existing.JetStream(), m)
		existing.Close()
		if errors.Is(err, backup.ErrNotEmpty) {
			fmt.Fprintf(stderr, "engagements restore: refused: %v\n", err)
			return 1
		}
		if err != nil {
			fmt.Fprintf(stderr, "engagements restore: %v\n", err)
			return 1
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		fmt.Fprintf(stderr, "engagements restore: %v\n", err)
		return 1
	}
	store, err := eventstore.Open(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "engagements restore: %v\n", err)
		return 1
	}
	defer store.Close()
	start := time.Now()
	pb := bar(stderr, m.LastSequence, "restoring")
	res, err := backup.Restore(ctx, store, paths[0], func(stream string, n int) {
		if pb != nil && stream == eventstore.StreamName {
			_ = pb.Set64(int64(n))
		}
	})
	if pb != nil {
		_ = pb.Finish()
	}
	if errors.Is(err, backup.ErrNotEmpty) {
		fmt.Fprintf(stderr, "engagements restore: refused: %v\n", err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "engagements restore: %v\n", err)
		return 1
	}
	if !res.OK() {
		fmt.Fprintf(stderr, "engagements restore: the restored store is NOT the backup:\n")
		for _, d := range res.Differences {
			fmt.Fprintf(stderr, "  %s\n", d)
		}
		fmt.Fprintln(stderr, "engagements restore: do not serve this store: remove it and restore a good backup")
		return 1
	}
	fmt.Fprintf(stdout, "restored %d events (%d engagements) and %d documents in %.1fs; verify ok, head %s (the backup's)\n",
		res.Report.Events, res.Report.Engagements, len(m.Documents), time.Since(start).Seconds(), res.Report.Head)
	return 0
}
