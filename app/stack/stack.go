// Package stack wires the running service on top of an open event store:
// the projector that follows the stream, the command path (app.Service), the
// HTTP API and, when asked, the web pages mounted in it.
//
// It is the one place the parts are put together: cmd/engagements' Main and
// the test harnesses of api, webui and cmd/engagements all call Start, so a
// test runs what serve runs. It lives outside package app because it imports
// api and webui, which import app; nothing but main and tests should import
// it.
package stack

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/projections"
	"github.com/iom-who/engagements/reminders"
	"github.com/iom-who/engagements/tokens"
	"github.com/iom-who/engagements/webhooks"
	"github.com/iom-who/engagements/webui"
)

// Config is what Start wires. Only Store is required.
type Config struct {
	// Store is the open event store; Start does not close it.
	Store *eventstore.Store
	// Projector, when set, is used as it is (for example loaded from a
	// checkpoint) and must not be running yet; nil starts an empty one that
	// folds the whole stream.
	Projector *projections.Projector
	// Tokens, when set, turns authentication on.
	Tokens *tokens.Store
	// Webhooks, when set, serves /v1/subscriptions.
	Webhooks *webhooks.Manager
	// UI mounts the web pages in the API; it needs Tokens.
	UI bool
	// API holds further options of the HTTP API (rate limits, metrics token).
	API []api.Option
	// UIOptions holds options of the web pages (rate limits, session caps).
	UIOptions []webui.Option
	// Reminders, when set, schedules and records the reminders of the
	// engagements' deadlines (package reminders).
	Reminders *reminders.Config
	// Logger receives every part's logs; nil discards them.
	Logger *slog.Logger
}

// Parts are the wired parts, running until Close.
type Parts struct {
	Store     *eventstore.Store
	Projector *projections.Projector
	Service   *app.Service
	// API is the HTTP handler: the API, with the pages mounted when asked.
	API *api.Server
	// UI is nil unless Config.UI.
	UI *webui.UI
	// Reminders is nil unless Config.Reminders.
	Reminders *reminders.Reminders

	cancel  context.CancelFunc
	done    chan error
	stopped sync.Once
	err     error // the projector's
}

// Start's answers to a Config it cannot wire.
var (
	errNoStore       = errors.New("stack: no event store")
	errUINeedsTokens = errors.New("stack: the web interface needs a token store")
)

// Start builds the parts cfg asks for and starts the projector following
// the store, and the reminders when asked.
func Start(cfg Config) (*Parts, error) {
	if cfg.Store == nil {
		return nil, errNoStore
	}
	if cfg.UI && cfg.Tokens == nil {
		return nil, errUINeedsTokens
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Parts{Store: cfg.Store, Projector: cfg.Projector}
	if p.Projector == nil {
		p.Projector = projections.New(log.With("component", "projector"))
	}
	p.Projector.UseReader(cfg.Store)
	p.Service = app.New(cfg.Store, p.Projector, log)

	var opts []api.Option
	if cfg.Tokens != nil {
		opts = append(opts, api.WithTokens(cfg.Tokens))
	}
	if cfg.Webhooks != nil {
		opts = append(opts, api.WithSubscriptions(cfg.Webhooks))
	}
	opts = append(opts, cfg.API...)
	if cfg.UI {
		uiOpts := append([]webui.Option{webui.WithAuditing(auditing{cfg.Store})}, cfg.UIOptions...)
		p.UI = webui.New(p.Service, p.Projector, cfg.Tokens, log.With("component", "webui"), uiOpts...)
		opts = append(opts, api.WithUI(p.UI))
	}
	p.API = api.New(p.Service, p.Projector, cfg.Store, log, opts...)

	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan error, 1)
	go func() { p.done <- p.Projector.Run(ctx, cfg.Store) }()
	if cfg.Reminders != nil {
		rc := *cfg.Reminders
		if rc.Logger == nil {
			rc.Logger = log.With("component", "reminders")
		}
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		var err error
		p.Reminders, err = reminders.Start(sctx, cfg.Store, p.Projector, p.Service, rc)
		scancel()
		if err != nil {
			_ = p.Close()
			return nil, err
		}
	}
	return p, nil
}

// Close ends the pages' live-update streams and stops the projector,
// returning what its run ended with; calling it again returns the same. It
// does not close the store, the tokens or the webhooks, which the caller
// opened.
func (p *Parts) Close() error {
	p.stopped.Do(func() {
		if p.UI != nil {
			p.UI.Close()
		}
		if p.Reminders != nil {
			p.Reminders.Close() // before the projector: it waits on it
		}
		p.cancel()
		p.err = <-p.done
	})
	return p.err
}

// auditing is what the auditor's web pages need of the store: verify, the
// API's export, and where a date starts in the stream.
type auditing struct{ store *eventstore.Store }

func (a auditing) Verify(ctx context.Context, progress func(done, total uint64)) (domain.Report, error) {
	return a.store.Verify(ctx, progress)
}

func (a auditing) Export(ctx context.Context, w io.Writer, format string) error {
	_, err := api.Export(ctx, w, a.store, api.ExportOptions{Format: format}, nil)
	return err
}

func (a auditing) SequenceSince(ctx context.Context, t time.Time) (uint64, error) {
	return a.store.SequenceSince(ctx, t)
}
