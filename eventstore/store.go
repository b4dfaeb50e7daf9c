package eventstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the name of the stream that holds every engagement event.
const StreamName = "ENGAGEMENTS"

// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values. It only
// has to cover appends of one key in flight at the same time: before a keyed
// append the command path catches its projection up with the stream (waiting
// at most 10 s), and the projection remembers keys for a day
// (projections.IdempotencyMemory). So a twin the projection could not have
// seen was stored after the catch-up began, less than the catch-up's bound
// before this append reaches the stream. A longer window costs the server a
// read of every message in it at each start (it rebuilds its duplicate
// table) and memory for every key.
const DuplicateWindow = 30 * time.Second

// Sync says when the embedded server makes an append durable.
type Sync string

const (
	// SyncAlways fsyncs every append before JetStream acknowledges it.
	SyncAlways Sync = "always"
	// SyncInterval fsyncs on the server's interval: faster, but the last
	// seconds of acknowledged appends may be lost on power loss.
	SyncInterval Sync = "interval"
)

// ParseSync checks a --sync value.
func ParseSync(s string) (Sync, error) {
	switch Sync(s) {
	case SyncAlways, SyncInterval:
		return Sync(s), nil
	}
	return "", fmt.Errorf("sync must be %q or %q, not %q", SyncAlways, SyncInterval, s)
}

// Config says where the events live. The zero value (with DataDir set) runs
// an embedded server that syncs always and has no client port.
type Config struct {
	// DataDir is the embedded server's JetStream store directory.
	DataDir string
	// NATSURL, when set, connects to an external server or cluster instead
	// of starting the embedded one (comma-separated URLs).
	NATSURL string
	// NATSListen, when set, makes the embedded server listen for clients on
	// this host:port (port 0 or -1 picks a free one).
	NATSListen string
	// Sync is the embedded server's sync policy; empty means SyncAlways.
	Sync Sync
	// Replicas is the stream's replica count; zero means 1.
	Replicas int
	// Logger receives the store's and the embedded server's logs.
	Logger *slog.Logger
	// SubscriberToken and AdminToken guard the embedded server's client port
	// (NATSListen): the subscriber token may only read the stream and manage
	// its own consumers; the admin token may do everything. With neither set
	// the port is open (serve refuses that; tests use it).
	SubscriberToken string
	AdminToken      string
	// TokenAuth makes every client of the embedded server present a token
	// even when neither token above is set: the API's subscriber tokens,
	// once Store.AuthenticateSubscribers is called (serve sets it with
	// NATSListen).
	TokenAuth bool
	// ReadOnly opens an existing stream as it is, for audits: its
	// configuration is not created or updated.
	ReadOnly bool
	// DuplicateWindow overrides the stream's DuplicateWindow (tests).
	DuplicateWindow time.Duration
	// PublicURL, when set, is the base URL the service is reached at
	// (http or https, no trailing slash): new events' dataschema is
	// PublicURL + /schemas/<type>/v<N>. Empty: the URN
	// urn:engagements:schema:<type>:v<N>.
	PublicURL string
}

// errNoTransform says the NATS server ignored the stream's subject
// transform or republish (it predates nats-server 2.10).
var errNoTransform = errors.New("the NATS server does not apply stream subject transforms and republish (nats-server 2.10 or later is needed)")

// Store appends and reads engagement events.
type Store struct {
	// onReconnect are run (each in its own goroutine) after the connection
	// to an external NATS comes back.
	hooksMu     sync.Mutex
	onReconnect []func()

	ns *server.Server
	nc *nats.Conn
	// readNC is a second in-process connection to the embedded server for
	// Events' direct gets (nil with an external server): the server
	// answers a connection's direct gets one after another on its read
	// loop, loading each message block not yet in its cache (an 8 MB file
	// for a large stream), so a page within a window that reads a few
	// hundred events scattered over a cold stream is split over both
	// connections and their loads run on both cores.
	readNC *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger
	// committer gathers appends into atomic batches under SyncAlways; nil
	// means each append is published on its own.
	committer *committer
	// guard holds a refusal of writes (refusal.go); watcher, with the
	// embedded server only, heals it (watch.go).
	guard   *guard
	watcher *watcher
	cfg     Config
	opts    *server.Options // the embedded server's, as started
	// schemas are the dataschemas new events are stored with.
	schemas dataSchemas
	// auth is the embedded server's token check; nil when its port is open.
	auth *natsAuth
	// docs is the document bucket (DocumentBucket); nil when a read-only
	// store has none.
	docs jetstream.ObjectStore
	// staging is the tmpfs directory the embedded server stages the group
	// commit's batches in (staging.go); "" when they are staged on disk.
	staging string
	// keys opens and seals personal fields (keyring.go).
	keys *Keyring
}

// Open starts or connects to NATS and creates or updates the stream.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Sync == "" {
		cfg.Sync = SyncAlways
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	schemas, err := newDataSchemas(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	s := &Store{log: cfg.Logger, guard: newGuard(), cfg: cfg, schemas: schemas}
	var left string // a staging directory a killed process left (staging.go)
	if cfg.NATSURL == "" {
		var auth *natsAuth
		if cfg.SubscriberToken != "" || cfg.AdminToken != "" || cfg.TokenAuth {
			auth = &natsAuth{admin: cfg.AdminToken, subscriber: cfg.SubscriberToken,
				clients: make(map[string]map[uint64]struct{})}
			if auth.internal, err = randomToken(); err != nil {
				return nil, err
			}
		}
		left = leftStaging(cfg.DataDir)
		s.ns, s.opts, err = startServer(cfg, auth)
		if err != nil {
			return nil, err
		}
		s.auth = auth
		// The service's inbox is its own: no subscriber may subscribe to
		// it, so no KV entry or API reply reaches one.
		opts := []nats.Option{nats.InProcessServer(s.ns), nats.Name("engagements"),
			nats.CustomInboxPrefix(ServiceInboxPrefix)}
		if auth != nil {
			opts = append(opts, nats.Token(auth.internal))
		}
		s.nc, err = nats.Connect("", opts...)
		if err == nil {
			// Never reconnecting: once closed (the server gone), Events
			// uses s.nc alone.
			if s.readNC, err = nats.Connect("", append(opts, nats.Name("engagements-reads"), nats.NoReconnect())...); err != nil {
				s.nc.Close()
			}
		}
	} else {
		// No reconnect buffer: a publish made while disconnected fails at
		// once (the client gets a 503) instead of waiting for its timeout
		// and then being sent, and stored, after the reconnect.
		s.nc, err = nats.Connect(cfg.NATSURL, nats.Name("engagements"), nats.MaxReconnects(-1),
			nats.CustomInboxPrefix(ServiceInboxPrefix),
			nats.ReconnectBufSize(-1),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil { // nil: closed on purpose
					s.log.Warn("nats disconnected", "err", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				s.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
				s.reconnected()
			}),
			// Without a handler nats.go prints these (e.g. a watch missing
			// heartbeats during an outage) to stderr.
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				s.log.Warn("nats asynchronous error", "err", err)
			}))
	}
	if err != nil {
		s.shutdownServer()
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	s.js, err = jetstream.New(s.nc)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if cfg.ReadOnly {
		if s.stream, err = s.js.Stream(ctx, StreamName); err != nil {
			s.Close()
			return nil, fmt.Errorf("open stream %s: %w", StreamName, err)
		}
		if err := s.openDocuments(ctx); err != nil {
			s.Close()
			return nil, err
		}
		removeStaging(left)
		if err := s.openKeyring(ctx); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	s.stream, err = Provision(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        StreamName,
			Description: "Engagement events as CloudEvents 1.0 documents",
			// Appends come in on the intake subjects and are stored under the
			// contract's; only what was stored is republished there, for core
			// subscribers. An existing stream (Subjects engagements.>) is
			// migrated by this update; its messages keep their subjects.
			Subjects: []string{intakeRoot + ".>"},
			SubjectTransform: &jetstream.SubjectTransformConfig{
				Source: intakeRoot + ".>", Destination: subjectRoot + ".>",
			},
			RePublish: &jetstream.RePublish{
				Source: subjectRoot + ".>", Destination: subjectRoot + ".>",
			},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Replicas:    cfg.Replicas,
			DenyDelete:  true,
			DenyPurge:   true,
			Duplicates:  cmp.Or(cfg.DuplicateWindow, DuplicateWindow),
			AllowDirect: true,
			MaxMsgSize:  1 << 20,
			// Group commit writes atomic batches; set on an existing stream too.
			AllowAtomicPublish: true,
		})
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("create stream %s: %w", StreamName, err)
	}
	if got := s.stream.CachedInfo().Config; got.SubjectTransform == nil || got.RePublish == nil {
		// A server before 2.10 drops both: appends would be stored under
		// the intake subjects.
		s.Close()
		return nil, fmt.Errorf("create stream %s: %w", StreamName, errNoTransform)
	}
	if err := s.openDocuments(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.openKeyring(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.Sync == SyncAlways {
		// A server that predates atomic batches drops the setting; it
		// would take a batch's messages as plain publishes.
		if !s.stream.CachedInfo().Config.AllowAtomicPublish {
			s.log.Warn("the NATS server does not take atomic batches; appends are committed one by one")
		} else {
			if s.ns != nil && cfg.Replicas == 1 {
				if s.staging, err = s.stageInMemory(left); err != nil {
					s.log.Warn("group commit batches are staged on disk", "err", err)
				}
			}
			minBatch := minBatchOnDisk
			if s.staging != "" {
				minBatch = minBatchInMemory
			}
			if s.committer, err = startCommitter(s.nc, s.js, s.guard, s.log, minBatch); err != nil {
				s.Close()
				return nil, err
			}
		}
	}
	if s.staging == "" {
		removeStaging(left)
	}
	if s.auth != nil {
		if err := s.guardConsumers(); err != nil {
			s.Close()
			return nil, err
		}
	}
	if s.ns != nil {
		s.startWatcher()
	}
	return s, nil
}

// startServer starts the embedded server; it returns a copy of the options
// it started with (restartJetStream needs them).
func startServer(cfg Config, auth *natsAuth) (*server.Server, *server.Options, error) {
	for _, t := range []string{cfg.SubscriberToken, cfg.AdminToken} {
		if t != "" && len(t) < 16 {
			return nil, nil, errors.New("NATS tokens must be at least 16 characters")
		}
	}
	if cfg.SubscriberToken != "" && cfg.SubscriberToken == cfg.AdminToken {
		return nil, nil, errors.New("the NATS subscriber and admin tokens must differ")
	}
	opts := &server.Options{
		ServerName: "engagements",
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		SyncAlways: cfg.Sync == SyncAlways,
		NoSigs:     true,
		MaxPayload: 1 << 20,
	}
	if auth != nil {
		// Every connection, the in-process one included, must present a token.
		opts.CustomClientAuthentication = auth
	} else {
		// Set, rather than left to JetStream, so that the watcher may raise
		// it by a config reload once space is freed (watch.go). A reload
		// re-authorizes every client, which custom authentication does not
		// survive (measured: the in-process connection reconnected after
		// 2 s), so with tokens JetStream sizes the store itself and the
		// watcher restarts JetStream instead.
		opts.JetStreamMaxStore = initialStoreLimit(cfg.DataDir)
	}
	if cfg.NATSListen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.NATSListen)
		if err != nil {
			return nil, nil, fmt.Errorf("nats listen address %q: %w", cfg.NATSListen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, nil, fmt.Errorf("nats listen port %q: %w", port, err)
		}
		opts.Host, opts.Port = host, p
	}
	started := opts.Clone()
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("embedded nats server: %w", err)
	}
	ns.SetLoggerV2(serverLogger{cfg.Logger.With("component", "nats-server")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, nil, errors.New("embedded nats server did not become ready")
	}
	return ns, started, nil
}

// ClientURL is the embedded server's client URL when it listens, else "".
func (s *Store) ClientURL() string {
	if s.ns == nil || s.ns.Addr() == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// OnReconnect registers f to run after the connection to NATS comes back.
func (s *Store) OnReconnect(f func()) {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	s.onReconnect = append(s.onReconnect, f)
}

func (s *Store) reconnected() {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	for _, f := range s.onReconnect {
		go f()
	}
}

// Connected reports whether the NATS connection is up.
func (s *Store) Connected() bool { return s.nc != nil && s.nc.IsConnected() }

// Ping checks that NATS and the stream answer.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.LastSequence(ctx); err != nil {
		return err
	}
	return nil
}

// LastSequence is the stream's last sequence (0 when empty).
func (s *Store) LastSequence(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", Unavailable(err))
	}
	return info.State.LastSeq, nil
}

// Close finishes the batches in flight, drains the connection (finishing
// in-flight publishes and acknowledgements) and shuts the embedded server
// down.
func (s *Store) Close() error {
	s.stopWatcher()
	if s.committer != nil {
		s.committer.stop()
	}
	var err error
	if s.nc != nil && !s.nc.IsClosed() {
		done := make(chan struct{})
		s.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
		if err = s.nc.Drain(); err == nil {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				s.nc.Close()
			}
		} else {
			s.nc.Close()
		}
	}
	if s.readNC != nil {
		s.readNC.Close() // nothing to drain: its requests are waited for by their callers
	}
	s.shutdownServer()
	s.unstage(s.staging)
	return err
}

func (s *Store) shutdownServer() {
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
}

// serverLogger sends the embedded server's log lines to slog.
type serverLogger struct{ l *slog.Logger }

func (l serverLogger) Noticef(f string, v ...any) { l.l.Debug(fmt.Sprintf(f, v...)) }
func (l serverLogger) Warnf(f string, v ...any)   { l.l.Warn(fmt.Sprintf(f, v...)) }
func (l serverLogger) Fatalf(f string, v ...any)  { l.l.Error(fmt.Sprintf(f, v...)) }
func (l serverLogger) Errorf(f string, v ...any)  { l.l.Error(fmt.Sprintf(f, v...)) }
func (l serverLogger) Debugf(f string, v ...any)  { l.l.Debug(fmt.Sprintf(f, v...)) }
func (l serverLogger) Tracef(f string, v ...any)  {}
