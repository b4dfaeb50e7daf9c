package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
	"github.com/iom-who/engagements/proofs"
	"github.com/peterbourgon/ff/v3"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// storeFlags are the flags of the commands that read a stream: verify,
// export and rebuild.
type storeFlags struct {
	natsURL, natsToken, data string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.natsURL, "nats-url", "", "NATS server/cluster holding the stream (e.g. a running serve's --nats-listen)")
	fs.StringVar(&f.natsToken, "nats-token", "", "token to present to --nats-url: serve's --nats-admin-token (better in ENGAGEMENTS_NATS_TOKEN than on the command line)")
	fs.StringVar(&f.data, "data", "", "data directory of a stopped serve's embedded NATS server")
}

// open opens the stream as it is, without changing its configuration.
func (f *storeFlags) open(ctx context.Context, stderr io.Writer) (*eventstore.Store, error) {
	if (f.natsURL == "") == (f.data == "") {
		return nil, errors.New("give exactly one of --nats-url URL or --data DIR")
	}
	if f.data != "" {
		if _, err := os.Stat(f.data); err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
	}
	natsURL := f.natsURL
	if f.natsToken != "" {
		if natsURL == "" {
			return nil, errors.New("--nats-token is for --nats-url; a stopped serve's --data needs none")
		}
		var err error
		if natsURL, err = withToken(natsURL, f.natsToken); err != nil {
			return nil, err
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return eventstore.Open(ctx, eventstore.Config{DataDir: f.data, NATSURL: natsURL, ReadOnly: true, Logger: log})
}

// withToken puts token into each of the comma-separated NATS URLs, where
// nats.go reads a user without a password as the token to present.
func withToken(urls, token string) (string, error) {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") {
			p = "nats://" + p
		}
		u, err := url.Parse(p)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("--nats-url: %q is not a NATS URL", parts[i])
		}
		if u.User != nil {
			return "", errors.New("--nats-url already carries credentials; give them there or in --nats-token, not both")
		}
		u.User = url.User(token)
		parts[i] = u.String()
	}
	return strings.Join(parts, ","), nil
}

// parseFlags parses a subcommand's flags with ENGAGEMENTS_* variables.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (ok bool, code int) {
	fs.SetOutput(stderr)
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("ENGAGEMENTS")); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, 0
		}
		fmt.Fprintf(stderr, "engagements %s: %v\n", fs.Name(), err)
		return false, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "engagements %s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return false, 2
	}
	return true, 0
}

// withStore opens the stream for the command called name (cancelled by
// SIGINT/SIGTERM), runs it and closes the store; failing to open is a usage
// error (exit 2).
func (f *storeFlags) withStore(name string, stderr io.Writer, run func(ctx context.Context, store *eventstore.Store) int) int {
	ctx, cancel := signalContext()
	defer cancel()
	store, err := f.open(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "engagements %s: %v\n", name, err)
		return 2
	}
	defer store.Close()
	return run(ctx, store)
}

// bar is a progress bar on stderr when stderr is a terminal, else nothing.
func bar(stderr io.Writer, total uint64, what string) *progressbar.ProgressBar {
	if f, ok := stderr.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(what), progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }))
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// keyFlag collects --key values: each a file holding a public key, or the
// key itself (PEM, base64 or hex of its 32 bytes, a key of GET /v1/keys).
type keyFlag []ed25519.PublicKey

func (k *keyFlag) String() string { return fmt.Sprintf("%d key(s)", len(*k)) }

func (k *keyFlag) Set(v string) error {
	text := []byte(v)
	if b, err := os.ReadFile(v); err == nil {
		text = b
	}
	pub, err := proofs.ParsePublicKey(text)
	if err != nil {
		return err
	}
	*k = append(*k, pub)
	return nil
}

// verify: engagements verify --nats-url URL | --data DIR, or offline
// --proof FILE | --bundle FILE with --key PUBKEY.
func verify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var sf storeFlags
	sf.register(fs)
	until := fs.Uint64("until", 0, "verify only up to this stream sequence (compare a head noted earlier)")
	proof := fs.String("proof", "", "offline: check this proof file (GET /v1/engagements/{id}/proof); needs --key, no server")
	bundle := fs.String("bundle", "", "offline: check this bundle (engagements export --bundle); needs --key, no server")
	var keys keyFlag
	fs.Var(&keys, "key", "offline: a trusted public key, as a file or the key itself (PEM, base64 or hex); repeat it for rotated keys")
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *proof != "" || *bundle != "" {
		if *proof != "" && *bundle != "" || sf.natsURL != "" || sf.data != "" || *until != 0 {
			fmt.Fprintln(stderr, "engagements verify: give one of --proof or --bundle, with --key and no store flags")
			return 2
		}
		if len(keys) == 0 {
			fmt.Fprintln(stderr, "engagements verify: --proof and --bundle need --key PUBKEY (the service's public key, sent to you apart)")
			return 2
		}
		if *proof != "" {
			return verifyProofFile(*proof, keys, stdout, stderr)
		}
		return verifyBundleFile(*bundle, keys, stdout, stderr)
	}
	if len(keys) > 0 {
		fmt.Fprintln(stderr, "engagements verify: --key is for --proof and --bundle")
		return 2
	}
	return sf.withStore("verify", stderr, func(ctx context.Context, store *eventstore.Store) int {
		return runVerify(ctx, store, *until, stdout, stderr)
	})
}

// verifyProofFile checks a proof file offline.
func verifyProofFile(path string, keys []ed25519.PublicKey, stdout, stderr io.Writer) int {
	data, err := readLimited(path, proofs.MaxProofBytes)
	if err != nil {
		fmt.Fprintf(stderr, "engagements verify: %v\n", err)
		return 2
	}
	res, err := proofs.VerifyProof(data, keys)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(res)
	if err != nil {
		fmt.Fprintf(stderr, "verify: the proof FAILS: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "verify: ok, engagement %s, %d events, in checkpoint %d signed by key %s at %s\n",
		res.EngagementID, res.Events, res.Sequence, res.KeyID, res.SignedAt)
	return 0
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// verifyBundleFile checks a bundle offline.
func verifyBundleFile(path string, keys []ed25519.PublicKey, stdout, stderr io.Writer) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "engagements verify: %v\n", err)
		return 2
	}
	defer f.Close()
	rep, err := proofs.VerifyBundle(f, keys)
	if err != nil {
		fmt.Fprintf(stderr, "engagements verify: %v\n", err)
		return 1
	}
	return printReport(rep, stdout, stderr)
}

func runVerify(ctx context.Context, store *eventstore.Store, until uint64, stdout, stderr io.Writer) int {
	recs, err := ledgerRecords(ctx, store)
	if err != nil {
		fmt.Fprintf(stderr, "engagements verify: %v\n", err)
		return 2
	}
	var pb *progressbar.ProgressBar
	last := uint64(0)
	rep, err := proofs.Audit(ctx, store, recs, until, func(done, total uint64) {
		if pb == nil {
			if pb = bar(stderr, total, "verifying"); pb == nil {
				fmt.Fprintf(stderr, "verifying: %d of %d\n", done, total)
				return
			}
		}
		_ = pb.Add64(int64(done - last))
		last = done
	})
	if err != nil {
		fmt.Fprintf(stderr, "engagements verify: %v\n", err)
		return 2
	}
	return printReport(rep, stdout, stderr)
}

// printReport writes the report as JSON and a line of summary; 1 when it
// found problems.
func printReport(rep domain.Report, stdout, stderr io.Writer) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
	if !rep.OK {
		fmt.Fprintf(stderr, "verify: %d problem(s) in %d events\n", len(rep.Problems), rep.Events)
		return 1
	}
	fmt.Fprintf(stderr, "verify: ok, %d events, %d engagements, head %s\n", rep.Events, rep.Engagements, rep.Head)
	if c := rep.Checkpoints; c != nil {
		fmt.Fprintf(stderr, "verify: %d signed checkpoint(s) valid, the latest at sequence %d\n", c.Valid, c.LatestSequence)
	}
	return 0
}

// export: engagements export [--format ndjson|csv] [--from] [--to] [--kind] [--type] [--out FILE].
func export(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	var sf storeFlags
	sf.register(fs)
	vals := map[string]*string{}
	for _, f := range []struct{ name, def, usage string }{
		{"format", "ndjson", "ndjson or csv"},
		{"from", "", "first stream sequence, or earliest occurred_at (RFC 3339 or YYYY-MM-DD)"},
		{"to", "", "last stream sequence, or latest occurred_at (a date includes that day)"},
		{"kind", "", "only this kind"},
		{"type", "", "only this event type, or <prefix>.*"},
	} {
		vals[f.name] = fs.String(f.name, f.def, f.usage)
	}
	out := fs.String("out", "-", "file to write, - for stdout")
	bundle := fs.Bool("bundle", false, "write a bundle instead (every message as stored, the signed checkpoints and the public keys; check it with verify --bundle); the selection flags do not apply")
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *bundle {
		for name, v := range vals {
			if *v != "" && !(name == "format" && *v == "ndjson") {
				fmt.Fprintf(stderr, "engagements export: --bundle holds the whole stream; --%s does not apply\n", name)
				return 2
			}
		}
		return sf.withStore("export", stderr, func(ctx context.Context, store *eventstore.Store) int {
			return runExportBundle(ctx, store, *out, stdout, stderr)
		})
	}
	o, err := api.ParseExportOptions(func(name string) string { return *vals[name] })
	if err != nil {
		fmt.Fprintf(stderr, "engagements export: %v\n", err)
		return 2
	}
	return sf.withStore("export", stderr, func(ctx context.Context, store *eventstore.Store) int {
		return runExport(ctx, store, o, *out, stdout, stderr)
	})
}

func runExport(ctx context.Context, store *eventstore.Store, o api.ExportOptions, out string, stdout, stderr io.Writer) int {
	w, finish := stdout, func() error { return nil }
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			fmt.Fprintf(stderr, "engagements export: %v\n", err)
			return 2
		}
		w, finish = f, f.Close
	}
	last, err := store.LastSequence(ctx)
	if err != nil {
		_ = finish()
		fmt.Fprintf(stderr, "engagements export: %v\n", err)
		return 1
	}
	pb := bar(stderr, last, "exporting")
	n, err := api.Export(ctx, w, store, o, func(seq uint64) {
		if pb != nil && seq%1024 == 0 {
			_ = pb.Set64(int64(seq))
		}
	})
	if pb != nil {
		_ = pb.Finish()
	}
	if cerr := finish(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "engagements export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "exported %d events\n", n)
	return 0
}

func runExportBundle(ctx context.Context, store *eventstore.Store, out string, stdout, stderr io.Writer) int {
	recs, err := ledgerRecords(ctx, store)
	if err != nil {
		fmt.Fprintf(stderr, "engagements export: %v\n", err)
		return 1
	}
	w, finish := stdout, func() error { return nil }
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			fmt.Fprintf(stderr, "engagements export: %v\n", err)
			return 2
		}
		w, finish = f, f.Close
	}
	n, err := proofs.WriteBundle(ctx, w, store, recs)
	if cerr := finish(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "engagements export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "exported a bundle of %d events and %d ledger records\n", n, len(recs))
	return 0
}

// rebuild: engagements rebuild --nats-url URL | --data DIR.
func rebuild(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	var sf storeFlags
	sf.register(fs)
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	return sf.withStore("rebuild", stderr, func(ctx context.Context, store *eventstore.Store) int {
		return runRebuild(ctx, store, stdout, stderr)
	})
}

func runRebuild(ctx context.Context, store *eventstore.Store, stdout, stderr io.Writer) int {
	last, err := store.LastSequence(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "engagements rebuild: %v\n", err)
		return 1
	}
	pb := bar(stderr, last, "rebuilding")
	st, elapsed, err := Rebuild(ctx, store, func(seq uint64) {
		if pb != nil && seq%1024 == 0 {
			_ = pb.Set64(int64(seq))
		}
	})
	if pb != nil {
		_ = pb.Set64(int64(st.Applied))
		_ = pb.Finish()
	}
	if err != nil {
		fmt.Fprintf(stderr, "engagements rebuild: %v\n", err)
		return 1
	}
	rate := float64(st.Events) / max(elapsed.Seconds(), 1e-9)
	fmt.Fprintf(stdout, "events %d\nengagements %d\nrejected %d\nundecodable %d\nseconds %.3f\nevents/s %.0f\n",
		st.Events, st.Engagements, st.Rejected, st.Undecodable, elapsed.Seconds(), rate)
	return 0
}

// RebuildStats are what a rebuild folded.
type RebuildStats struct {
	projections.Stats
	Engagements int
}

// Rebuild replays the whole stream into fresh projections.
func Rebuild(ctx context.Context, store *eventstore.Store, progress func(seq uint64)) (RebuildStats, time.Duration, error) {
	p := projections.New(nil)
	start := time.Now()
	err := p.Fold(ctx, store, progress)
	elapsed := time.Since(start)
	return RebuildStats{Stats: p.Stats(), Engagements: p.Count()}, elapsed, err
}

// ledgerRecords reads every record (keys, checkpoints) of store's ledger,
// opened read-only: what verify checks and a bundle carries.
func ledgerRecords(ctx context.Context, store *eventstore.Store) ([]proofs.Record, error) {
	ledger, err := proofs.OpenLedger(ctx, store.JetStream(), 0, true)
	if err != nil {
		return nil, err
	}
	return ledger.Records(ctx)
}
