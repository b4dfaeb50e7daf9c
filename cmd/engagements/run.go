package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/app/stack"
	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
	"github.com/iom-who/engagements/proofs"
	"github.com/iom-who/engagements/reminders"
	"github.com/iom-who/engagements/sessions"
	"github.com/iom-who/engagements/tokens"
	"github.com/iom-who/engagements/webhooks"
	"github.com/iom-who/engagements/webui"
)

// Config is everything serve needs.
type Config struct {
	HTTP       string
	DataDir    string
	NATSURL    string
	NATSListen string
	// NATSSubscriberToken and NATSAdminToken guard NATSListen.
	NATSSubscriberToken string
	NATSAdminToken      string
	// PublicURL is the base of new events' dataschema (eventstore.Config)
	// and of calendar feed URLs.
	PublicURL string
	Sync      eventstore.Sync
	Replicas  int
	Demo      bool
	// RateLimit is the requests per second of each API token and each web
	// session (0: no limit), with RateBurst.
	RateLimit float64
	RateBurst int
	// MetricsToken, when set, guards /metrics.
	MetricsToken string
	// MaxDocumentSize is the largest document an upload may store, in
	// bytes (0: app.DefaultMaxDocumentSize).
	MaxDocumentSize int64
	Logger          *slog.Logger
	// Webhooks tunes webhook delivery; the zero value is the production one.
	Webhooks webhooks.Config
	// SigningKey is the Ed25519 key file checkpoints are signed with
	// (PEM PKCS #8); empty means SigningKeyFile in DataDir, created on first
	// start.
	SigningKey string
	// CheckpointEveryEvents and CheckpointEvery say when a checkpoint is
	// signed (0: not on that ground).
	CheckpointEveryEvents uint64
	CheckpointEvery       time.Duration
	// SaveEvents and SaveEvery say when the projections are saved to
	// CheckpointFile besides at shutdown: once SaveEvents events were
	// applied since the last save, and SaveEvery after it when any were
	// (--projection-save-events, --projection-save-every; zero: the
	// defaults).
	SaveEvents uint64
	SaveEvery  time.Duration
	// Reminders tunes the reminders (--reminders); the zero value is the
	// production one. NoReminders (--reminders off) records none: no
	// schedules are made and nothing follows the stream for them.
	Reminders   reminders.Config
	NoReminders bool
	// OIDC signs people in to the web UI with their directory (--oidc-*).
	OIDC OIDCConfig
	// DebugListen, when set, is the loopback address Go's profiles are
	// served on (--debug-listen).
	DebugListen string
}

// Main opens the store, the token store and webhook delivery, loads the
// projection checkpoint, and has stack.Start wire the rest (projector,
// command path, API and pages). Tests start the same Main.
type Main struct {
	Config Config

	Store     *eventstore.Store
	Tokens    *tokens.Store
	Projector *projections.Projector
	Service   *app.Service
	Webhooks  *webhooks.Manager
	Calendars *calendars.Store
	Proofs    *proofs.Service
	// Sessions are the web sessions, in KV.
	Sessions *sessions.Store
	// AdminToken is set when this start created the first admin token.
	AdminToken string

	parts    *stack.Parts
	api      *api.Server
	http     *http.Server
	listener net.Listener
	debug    *debugServer
	saved    uint64 // sequence of the last checkpoint
	// startSeq is 1 + the stream's last sequence when serving began (0:
	// not known yet): no periodic checkpoint is saved before the projector
	// has caught up to it.
	startSeq atomic.Uint64
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Run opens the store, starts projecting, loads demo data if asked and the
// store is empty, and starts serving HTTP. It returns once serving.
func (m *Main) Run(ctx context.Context) error {
	log := m.Config.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		m.Config.Logger = log
	}
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// Loading the checkpoint takes about as long as the store's recovery of
	// a long stream: do both at once. LoadCheckpoint checks it against the
	// stream, which it is handed once open, before it is used.
	loaded := make(chan checkpointLoad, 1)
	stream := make(chan projections.EventReader, 1)
	var delivered sync.Once
	deliver := func(r projections.EventReader) {
		delivered.Do(func() {
			if r != nil {
				stream <- r
			}
			close(stream)
		})
	}
	proj := projections.New(log.With("component", "projector"))
	go func() {
		start := time.Now()
		seq, err := proj.LoadCheckpoint(ctx, m.CheckpointFile(), stream)
		loaded <- checkpointLoad{seq, err, time.Since(start)}
	}()
	defer func() {
		if m.Projector == nil {
			<-loaded // Run failed before the checkpoint was used: wait for the loader
		}
	}()
	defer deliver(nil) // a failed start leaves the loader nothing to check against
	if err := m.openStore(ctx); err != nil {
		return err
	}
	deliver(m.Store)
	if err := m.openAdapters(ctx); err != nil {
		return err
	}
	m.Projector = m.useCheckpoint(proj, <-loaded)
	if err := m.openProofs(ctx); err != nil {
		return err
	}
	dirOpts, err := m.openDirectory(ctx)
	if err != nil {
		return err
	}
	rc := &m.Config.Reminders
	rc.Replicas = max(rc.Replicas, m.Config.Replicas)
	if m.Config.NoReminders {
		rc = nil
	}
	m.parts, err = stack.Start(stack.Config{
		Store: m.Store, Projector: m.Projector, Tokens: m.Tokens, Webhooks: m.Webhooks, UI: true, Logger: log,
		MaxDocumentSize: m.Config.MaxDocumentSize,
		Calendars:       m.Calendars, PublicURL: m.Config.PublicURL, Sessions: m.Sessions,
		Proofs: m.Proofs, Reminders: rc,
		API: []api.Option{api.WithRateLimit(m.Config.RateLimit, m.Config.RateBurst),
			api.WithMetricsToken(m.Config.MetricsToken)},
		// Each web session gets the rate each API token gets.
		UIOptions: append([]webui.Option{webui.WithRateLimit(m.Config.RateLimit, m.Config.RateBurst)}, dirOpts...),
	})
	if err != nil {
		return err
	}
	m.Service = m.parts.Service
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if m.Config.DebugListen != "" {
		if m.debug, err = startDebug(m.Config.DebugListen, log); err != nil {
			return err
		}
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.checkpointEvery(runCtx, saveCheck)
	}()
	if m.Config.Demo {
		if err := m.loadDemo(ctx); err != nil {
			return err
		}
	}
	return m.serveHTTP(ctx)
}

// openStore opens the event store.
func (m *Main) openStore(ctx context.Context) error {
	log := m.Config.Logger
	opening := time.Now()
	store, err := eventstore.Open(ctx, eventstore.Config{
		DataDir: m.Config.DataDir, NATSURL: m.Config.NATSURL, NATSListen: m.Config.NATSListen,
		Sync: m.Config.Sync, Replicas: m.Config.Replicas, Logger: log,
		SubscriberToken: m.Config.NATSSubscriberToken, AdminToken: m.Config.NATSAdminToken,
		TokenAuth: m.Config.NATSListen != "", PublicURL: m.Config.PublicURL,
	})
	if err != nil {
		return err
	}
	m.Store = store
	log.Info("event store opened", "took", time.Since(opening))
	if u := store.ClientURL(); u != "" {
		log.Info("embedded NATS server listening for subscribers", "url", u)
	}
	return nil
}

// openAdapters opens what lives beside the stream on the store's
// connection: the token store (with the first admin token), calendar feeds,
// the web sessions and webhook delivery.
func (m *Main) openAdapters(ctx context.Context) error {
	log := m.Config.Logger
	var err error
	if m.Tokens, err = tokens.Open(ctx, m.Store, tokens.Config{Replicas: m.Config.Replicas, Logger: log}); err != nil {
		return err
	}
	// NATS takes the API's subscriber tokens, each its own identity; a
	// revoked one is closed out at once.
	m.Store.AuthenticateSubscribers(func(token string) (string, bool) {
		info, ok := m.Tokens.Authenticate(token)
		return info.Name, ok && info.Role == domain.RoleSubscriber
	})
	m.Tokens.OnRevoke(func(name string) { m.Store.DisconnectSubscriber(name) })
	if err := m.bootstrapAdmin(ctx); err != nil {
		return err
	}
	if m.Calendars, err = calendars.Open(ctx, m.Store.JetStream(), calendars.Config{Replicas: m.Config.Replicas}); err != nil {
		return err
	}
	if m.Sessions, err = sessions.Open(ctx, m.Store.JetStream(), sessions.Config{Replicas: m.Config.Replicas, Logger: log}); err != nil {
		return err
	}
	whCfg := m.Config.Webhooks
	whCfg.Replicas = max(whCfg.Replicas, m.Config.Replicas)
	if whCfg.Logger == nil {
		whCfg.Logger = log.With("component", "webhooks")
	}
	m.Webhooks, err = webhooks.Open(ctx, m.Store, whCfg)
	return err
}

// SigningKeyFile is where the checkpoint signing key is created when
// --signing-key is not given.
func (m *Main) SigningKeyFile() string {
	if m.Config.SigningKey != "" {
		return m.Config.SigningKey
	}
	return filepath.Join(m.Config.DataDir, "signing.key")
}

// openProofs loads (or on first start creates, mode 0600) the signing key
// and opens the checkpoint ledger beside the stream.
func (m *Main) openProofs(ctx context.Context) error {
	key, created, err := proofs.LoadOrCreateKey(m.SigningKeyFile(), m.Config.SigningKey == "")
	if err != nil {
		return err
	}
	if created {
		m.Config.Logger.Info("checkpoint signing key created", "file", m.SigningKeyFile())
	}
	ledger, err := proofs.OpenLedger(ctx, m.Store.JetStream(), m.Config.Replicas, false)
	if err != nil {
		return err
	}
	m.Proofs, err = proofs.Open(ctx, m.Store, ledger, proofs.Config{Key: key,
		EveryEvents: m.Config.CheckpointEveryEvents, Every: m.Config.CheckpointEvery,
		Logger: m.Config.Logger.With("component", "checkpoints"), Verdicts: m.Projector})
	return err
}

// loadDemo records the seed's engagements into an empty store.
func (m *Main) loadDemo(ctx context.Context) error {
	last, err := m.Store.LastSequence(ctx)
	if err != nil {
		return err
	}
	if last != 0 {
		m.Config.Logger.Info("store is not empty; demo data not loaded", "last_sequence", last)
		return nil
	}
	n, err := loadDemo(ctx, m.Service)
	if err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	m.Config.Logger.Info("demo data loaded", "engagements", n)
	return nil
}

// serveHTTP listens on the HTTP address and serves the API and pages once the
// projection holds what the stream holds now.
func (m *Main) serveHTTP(ctx context.Context) error {
	log := m.Config.Logger
	var err error
	m.listener, err = net.Listen("tcp", m.Config.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.HTTP, err)
	}
	handler := m.parts.API
	last, err := m.Store.LastSequence(ctx)
	if err != nil {
		return err
	}
	handler.CatchUpTo(last)
	m.startSeq.Store(last + 1)
	m.api = handler
	m.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Read past the API's own limit, so that it answers a large header
		// with a problem rather than net/http with plain text.
		MaxHeaderBytes: api.ReadHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	m.http.RegisterOnShutdown(m.parts.UI.Close) // the pages' live streams never end by themselves
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.http.Serve(m.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	return nil
}

// When the projections are saved besides at shutdown. A save encodes every
// engagement (about a second of one core and ~600 MB allocated for 100k
// engagements: BenchmarkCheckpoint), so it is paid for by the events it
// spares a restart after a crash, not by the clock: once
// DefaultSaveEvents events were applied since the last (a crash then
// replays at most about that many, ~1.5 s at the rebuild's rate), or
// DefaultSaveEvery after the last when any were. A save every 30 s, as
// before, cost a 1M-event deployment at 200 appends/s about 5 % of a core
// and most of the GET p99 (make bench). An erasure is saved at the next
// look (saveCheck): the file saved before holds what it erased.
const (
	DefaultSaveEvents uint64 = 100_000
	DefaultSaveEvery         = 10 * time.Minute
	// saveCheck is how often the rule is looked at.
	saveCheck = 5 * time.Second
)

// CheckpointFile is where the projections are saved, so a restart applies
// only the events stored since.
func (m *Main) CheckpointFile() string {
	return filepath.Join(m.Config.DataDir, "projections.checkpoint")
}

// checkpointLoad is the outcome of loading the checkpoint file.
type checkpointLoad struct {
	seq  uint64
	err  error
	took time.Duration
}

// useCheckpoint returns proj when the checkpoint loaded into it (it
// belongs to the stream: LoadCheckpoint checked); otherwise an empty
// projector that rebuilds from the stream.
func (m *Main) useCheckpoint(proj *projections.Projector, r checkpointLoad) *projections.Projector {
	log := m.Config.Logger
	if r.err != nil {
		if !errors.Is(r.err, os.ErrNotExist) {
			log.Warn("projection checkpoint not used; rebuilding from the stream", "err", r.err)
		}
		return projections.New(log.With("component", "projector"))
	}
	m.saved = r.seq
	log.Info("projection checkpoint loaded", "sequence", r.seq, "engagements", proj.Count(), "took", r.took)
	return proj
}

// checkpointEvery looks every check at whether the projections are due a
// save (SaveEvents, SaveEvery) and saves them.
func (m *Main) checkpointEvery(ctx context.Context, check time.Duration) {
	events, every := m.Config.SaveEvents, m.Config.SaveEvery
	if events == 0 {
		events = DefaultSaveEvents
	}
	if every == 0 {
		every = DefaultSaveEvery
	}
	check = min(check, every)
	// Until the projector has caught up with the stream as it was when
	// serving began, the rule is looked at more often, so that a first
	// start (or one after many events) saves as soon as it is ready and a
	// crash then does not cost the rebuild again. While it rebuilds, a
	// save would freeze the current model and have every engagement
	// folded meanwhile copied (all of them, on a stream that interleaves
	// them): hundreds of MiB for 100k engagements.
	t := time.NewTicker(min(check, 250*time.Millisecond))
	defer t.Stop()
	caughtUp := false
	last := time.Now()
	var savedErasures uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			start := m.startSeq.Load()
			applied := m.Projector.Applied()
			if start == 0 || applied+1 < start {
				continue
			}
			if !caughtUp {
				caughtUp = true
				t.Reset(check)
			}
			if applied == m.saved {
				continue
			}
			// An erasure replaces the file at the next look: the one saved
			// before holds the erased person's data in plain text.
			erased := m.Projector.Erasures()
			if applied-m.saved >= events || time.Since(last) >= every || erased != savedErasures {
				if m.checkpoint() {
					last, savedErasures = time.Now(), erased
				}
			}
		}
	}
}

// checkpoint saves the projections if they moved since the last save; false
// when the save failed (logged), so that the rule tries again at its next look.
func (m *Main) checkpoint() bool {
	if m.Projector == nil || m.Projector.Applied() == m.saved {
		return true
	}
	began := time.Now()
	seq, err := m.Projector.Checkpoint(m.CheckpointFile())
	if err != nil {
		m.Config.Logger.Warn("projection checkpoint failed", "err", err)
		return false
	}
	m.Config.Logger.Info("projection checkpoint saved", "sequence", seq, "took", time.Since(began))
	m.saved = seq
	return true
}

// AdminTokenFile is where the first admin token is written.
func (m *Main) AdminTokenFile() string { return filepath.Join(m.Config.DataDir, "admin.token") }

// bootstrapAdmin creates the first admin token when there is none, writes it
// to AdminTokenFile (mode 0600) and keeps it in AdminToken to print once.
func (m *Main) bootstrapAdmin(ctx context.Context) error {
	if m.Tokens.Len() > 0 {
		return nil
	}
	token, _, err := m.Tokens.Create(ctx, "admin", domain.RoleAdmin)
	if errors.Is(err, domain.ErrExists) {
		return nil // another instance made it first
	}
	if err != nil {
		return fmt.Errorf("first admin token: %w", err)
	}
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("first admin token: %w", err)
	}
	if err := os.WriteFile(m.AdminTokenFile(), []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("first admin token: %w", err)
	}
	m.AdminToken = token
	return nil
}

// URL is the HTTP base URL, e.g. http://127.0.0.1:8080.
func (m *Main) URL() string {
	if m.listener == nil {
		return ""
	}
	return "http://" + m.listener.Addr().String()
}

// Close stops accepting requests, lets in-flight ones finish, stops the
// projector, then drains NATS and shuts the embedded server down.
func (m *Main) Close() error {
	var errs []error
	errs = append(errs, m.debug.close())
	if m.http != nil {
		m.api.CloseStreams() // event streams never end by themselves
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		errs = append(errs, m.http.Shutdown(ctx))
		cancel()
	} else if m.listener != nil {
		errs = append(errs, m.listener.Close())
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if m.parts != nil {
		_ = m.parts.Close() // the projector's end is no failure of shutdown
	}
	m.checkpoint() // the projector has stopped: save where it got to
	if m.Webhooks != nil {
		m.Webhooks.Close() // before the store: deliveries ack over its connection
	}
	if m.Sessions != nil {
		m.Sessions.Close()
	}
	if m.Tokens != nil {
		m.Tokens.Close()
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	return errors.Join(errs...)
}
