// Command engagements is the event-sourced engagement tracker: `engagements
// serve` starts the HTTP API on top of a NATS JetStream stream (an embedded
// server by default). This is the only package that knows every other one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/reminders"
	"github.com/peterbourgon/ff/v3"
)

const usage = `engagements — event-sourced engagement tracker

Usage:
  engagements serve [flags]     start the HTTP API (embedded NATS by default)
  engagements verify [flags]    check every event's hash chain, the stream's completeness and the signed checkpoints
  engagements verify --proof FILE --key PUBKEY    check one engagement's proof offline (no server, no NATS)
  engagements verify --bundle FILE --key PUBKEY   check an exported bundle offline
  engagements export [flags]    write the event log as NDJSON or CSV, or with --bundle the whole history with its checkpoints
  engagements rebuild [flags]   replay the whole stream through the projections and time it
  engagements import [flags] FILE.xlsx|FILE.csv
                                check a spreadsheet of engagements and events (the template in
                                examples/import) and record it through the API (--dry-run: check only)
  engagements backup --out DIR [flags]
                                copy the stream, documents, token, webhook and calendar buckets
                                and checkpoints to DIR while serve runs, with the verify head
  engagements restore [flags] DIR
                                restore a backup into an empty store (--data DIR or --nats-url)
                                and verify it: the same head, every document's sha256
  engagements sessions end --identity NAME [flags]
                                end every web session of a person (or token name) on every instance
  engagements version           print the version (also --version)

verify, export, rebuild, backup and sessions read the stream with --nats-url URL (a running serve
started with --nats-listen, or a cluster) or --data DIR (a stopped serve's data);
--nats-token (or ENGAGEMENTS_NATS_TOKEN) is the token to present to --nats-url,
serve's --nats-admin-token.
Run 'engagements COMMAND -h' for the flags. Each flag can also be set with an
ENGAGEMENTS_* environment variable, e.g. ENGAGEMENTS_NATS_URL for --nats-url.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version())
		return 0
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "verify":
		return verify(args[1:], stdout, stderr)
	case "export":
		return export(args[1:], stdout, stderr)
	case "rebuild":
		return rebuild(args[1:], stdout, stderr)
	case "import":
		return importCmd(args[1:], stdout, stderr)
	case "backup":
		return backupCmd(args[1:], stdout, stderr)
	case "restore":
		return restoreCmd(args[1:], stdout, stderr)
	case "sessions":
		return sessionsCmd(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "engagements: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// version is "engagements" and the module version from the build
// information, with the VCS revision and time when built from a checkout
// (go build -buildvcs=true, the default there).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "engagements (unknown version: built without module support)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	out := "engagements " + v
	if rev != "" {
		out += fmt.Sprintf(" (%s %s%s)", rev, at, modified)
	}
	return out + ", " + bi.GoVersion
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	var sync, level string
	fs.StringVar(&cfg.HTTP, "http", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&cfg.DataDir, "data", "./data", "data directory of the embedded NATS server (JetStream file store)")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "use an external NATS server/cluster instead of the embedded one")
	fs.StringVar(&cfg.NATSListen, "nats-listen", "", "also expose the embedded NATS server for subscribers, e.g. 127.0.0.1:4222")
	fs.StringVar(&cfg.NATSSubscriberToken, "nats-subscriber-token", "", "shared subscriber token on --nats-listen (identity \"shared\": consumers sub-shared-1..20, inbox _INBOX_sub_shared); API tokens of role subscriber work there too, each its own identity")
	fs.StringVar(&cfg.NATSAdminToken, "nats-admin-token", "", "token for operators on --nats-listen: everything")
	fs.StringVar(&sync, "sync", "always", "always: fsync before an append is acknowledged; interval: faster, may lose the last seconds on power loss")
	fs.IntVar(&cfg.Replicas, "replicas", 1, "stream replicas (3 on a cluster)")
	fs.BoolVar(&cfg.Demo, "demo", false, "load the seed's engagements when the store is empty")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", 100, "requests per second per API token and per web session (0 disables)")
	fs.IntVar(&cfg.RateBurst, "rate-burst", 200, "burst of requests per API token or web session above the rate")
	fs.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	var format string
	fs.StringVar(&format, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "the URL clients reach the service at, e.g. https://tracker.example.org: events' dataschema is <this>/schemas/<type>/v<N> (unset: urn:engagements:schema:<type>:v<N>), and the base of calendar feed URLs (unset: the request's scheme and host)")
	fs.StringVar(&cfg.MetricsToken, "metrics-token", "", "when set, /metrics needs Authorization: Bearer <this token>")
	var maxDoc string
	fs.StringVar(&maxDoc, "max-document-size", "25MiB", "largest document an upload may store: bytes, or with KiB, MiB or GiB (at most 1GiB)")
	fs.StringVar(&cfg.SigningKey, "signing-key", "", "Ed25519 private key (PEM PKCS #8) that signs checkpoints (default: <data>/signing.key, created on first start)")
	fs.Uint64Var(&cfg.CheckpointEveryEvents, "checkpoint-every-events", 10000, "sign a checkpoint once this many events were stored since the last (0: not by count)")
	fs.DurationVar(&cfg.CheckpointEvery, "checkpoint-every", 10*time.Minute, "sign a checkpoint this often when there are new events (0: not by time)")
	fs.Uint64Var(&cfg.SaveEvents, "projection-save-events", DefaultSaveEvents, "save the projections to <data>/projections.checkpoint once this many events were applied since the last save (besides at shutdown; a restart after a crash replays at most about that many)")
	fs.DurationVar(&cfg.SaveEvery, "projection-save-every", DefaultSaveEvery, "and this long after the last save when any event was applied since")
	var memLimit string
	fs.StringVar(&memLimit, "memory-limit", "auto", "soft memory limit of the process (Go's garbage collector works harder near it; the embedded NATS server counts, it runs in process): auto (GOMEMLIMIT when set, else 3/4 of the cgroup's limit, else none), off, or a size such as 1GiB (at least 64MiB)")
	fs.StringVar(&cfg.DebugListen, "debug-listen", "", "serve Go's profiles (net/http/pprof, /debug/pprof/) on this loopback address, such as 127.0.0.1:6060 (unset: not served)")
	var offsets string
	fs.StringVar(&offsets, "reminders", "90,30,7", "days before an agreement's expiry and a meeting to record a reminder (comma-separated positive whole days; the notice deadline and the expiry itself are always reminded of); off: record no reminders")
	finishOIDC := oidcFlags(fs, &cfg.OIDC)
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("ENGAGEMENTS")); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "engagements serve: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "engagements serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := finishOIDC(); err != nil {
		fmt.Fprintf(stderr, "engagements serve: %v\n", err)
		return 2
	}
	var err error
	if cfg.Sync, err = eventstore.ParseSync(sync); err != nil {
		fmt.Fprintf(stderr, "engagements serve: %v\n", err)
		return 2
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	if cfg.PublicURL != "" {
		if err := domain.CheckPublicURL(cfg.PublicURL); err != nil {
			fmt.Fprintf(stderr, "engagements serve: --public-url: %v\n", err)
			return 2
		}
	}
	if cfg.MaxDocumentSize, err = parseSize(maxDoc); err != nil || cfg.MaxDocumentSize < 1 || cfg.MaxDocumentSize > domain.MaxDocumentSize {
		fmt.Fprintf(stderr, "engagements serve: --max-document-size must be 1 byte to 1GiB, such as 25MiB, not %q\n", maxDoc)
		return 2
	}
	if cfg.SaveEvents < 1 || cfg.SaveEvery < time.Second {
		fmt.Fprintf(stderr, "engagements serve: --projection-save-events must be at least 1 and --projection-save-every at least 1s\n")
		return 2
	}
	if cfg.DebugListen != "" {
		if err := checkDebugListen(cfg.DebugListen); err != nil {
			fmt.Fprintf(stderr, "engagements serve: %v\n", err)
			return 2
		}
	}
	limit, limitFrom, err := osMemoryLimit(memLimit)
	if err != nil {
		fmt.Fprintf(stderr, "engagements serve: %v\n", err)
		return 2
	}
	if cfg.RateLimit < 0 || cfg.RateBurst < 1 {
		fmt.Fprintf(stderr, "engagements serve: --rate-limit must be ≥ 0 and --rate-burst ≥ 1\n")
		return 2
	}
	if cfg.Replicas < 1 || cfg.Replicas > 5 {
		fmt.Fprintf(stderr, "engagements serve: --replicas must be 1 to 5, not %d\n", cfg.Replicas)
		return 2
	}
	if strings.TrimSpace(offsets) == "off" {
		cfg.NoReminders = true
	} else if cfg.Reminders.Offsets, err = reminders.ParseOffsets(offsets); err != nil {
		fmt.Fprintf(stderr, "engagements serve: --reminders: %v\n", err)
		return 2
	}
	// For tests and demonstrations only: the length of a reminder day.
	if d := os.Getenv("ENGAGEMENTS_REMINDER_DAY"); d != "" {
		if cfg.Reminders.Day, err = time.ParseDuration(d); err != nil || cfg.Reminders.Day < time.Second {
			fmt.Fprintf(stderr, "engagements serve: ENGAGEMENTS_REMINDER_DAY must be a duration of at least 1s, not %q\n", d)
			return 2
		}
	}
	// The pace of the reminders' first pass, in schedules a second.
	if r := os.Getenv("ENGAGEMENTS_REMINDER_SWEEP_RATE"); r != "" {
		if cfg.Reminders.SweepRate, err = strconv.Atoi(r); err != nil || cfg.Reminders.SweepRate < 1 || cfg.Reminders.SweepRate > 100_000 {
			fmt.Fprintf(stderr, "engagements serve: ENGAGEMENTS_REMINDER_SWEEP_RATE must be a whole number of schedules a second from 1 to 100000, not %q\n", r)
			return 2
		}
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		fmt.Fprintf(stderr, "engagements serve: --log-level: %v\n", err)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, hopts))
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	default:
		fmt.Fprintf(stderr, "engagements serve: --log-format must be text or json, not %q\n", format)
		return 2
	}

	if limit >= 0 {
		debug.SetMemoryLimit(limit)
	}
	cfg.Logger.Info("memory limit", "bytes", debug.SetMemoryLimit(-1), "from", limitFrom)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Config: cfg}
	if err := m.Run(ctx); err != nil {
		cfg.Logger.Error("start failed", "err", err)
		_ = m.Close()
		return 1
	}
	fmt.Fprintf(stdout, "engagements: serving on %s\n", m.URL())
	if m.AdminToken != "" {
		fmt.Fprintf(stdout, "engagements: admin token (shown once; also in %s): %s\n", m.AdminTokenFile(), m.AdminToken)
	} else if _, err := os.Stat(m.AdminTokenFile()); err == nil {
		fmt.Fprintf(stdout, "engagements: the first admin token is in %s\n", m.AdminTokenFile())
	}
	<-ctx.Done()
	cfg.Logger.Info("shutting down")
	if err := m.Close(); err != nil {
		cfg.Logger.Error("shutdown", "err", err)
		return 1
	}
	cfg.Logger.Info("stopped")
	return 0
}

// parseSize reads a size in bytes: a whole number, optionally followed by
// KiB, MiB or GiB.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = strings.TrimSpace(n), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return n * mult, nil
}
