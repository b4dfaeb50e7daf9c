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
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/app"
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
	// Calendars, when set, serves calendar feeds (/v1/calendars and
	// /calendars/{secret}.ics, and the pages' feed section).
	Calendars *calendars.Store
	// PublicURL is the base of the URLs handed out, such as feed URLs
	// ("": each request's own scheme and host).
	PublicURL string
	// Sessions keeps the web sessions; the web pages need it.
	Sessions *sessions.Store
	// UI mounts the web pages in the API; it needs Tokens and Sessions.
	UI bool
	// API holds further options of the HTTP API (rate limits, metrics token).
	API []api.Option
	// UIOptions holds options of the web pages (rate limits, session caps).
	UIOptions []webui.Option
	// Proofs, when set, signs checkpoints (Start runs it until Close) and
	// serves them, the keys and proofs; verify checks the checkpoints too.
	Proofs *proofs.Service
	// Reminders, when set, schedules and records the reminders of the
	// engagements' deadlines (package reminders).
	Reminders *reminders.Config
	// Logger receives every part's logs; nil discards them.
	Logger *slog.Logger
	// MaxDocumentSize is the largest document uploads may store, in bytes;
	// 0 means app.DefaultMaxDocumentSize.
	MaxDocumentSize int64
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
	signer  sync.WaitGroup // the checkpoint signer's run
	stopped sync.Once
	err     error // the projector's
}

// Start's answers to a Config it cannot wire.
var (
	errNoStore         = errors.New("stack: no event store")
	errUINeedsTokens   = errors.New("stack: the web interface needs a token store")
	errUINeedsSessions = errors.New("stack: the web interface needs a session store")
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
	if cfg.UI && cfg.Sessions == nil {
		return nil, errUINeedsSessions
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
	p.Service.UseDocuments(cfg.Store, cfg.MaxDocumentSize)
	p.Service.UseKeyring(cfg.Store.Keyring(), cfg.Store)

	var opts []api.Option
	if cfg.Tokens != nil {
		opts = append(opts, api.WithTokens(cfg.Tokens))
	}
	if cfg.Webhooks != nil {
		opts = append(opts, api.WithSubscriptions(cfg.Webhooks))
	}
	if cfg.Calendars != nil {
		opts = append(opts, api.WithCalendars(cfg.Calendars, api.DefaultFeedRate, api.DefaultFeedBurst))
	}
	if cfg.PublicURL != "" {
		opts = append(opts, api.WithPublicURL(cfg.PublicURL))
	}
	if cfg.Proofs != nil {
		opts = append(opts, api.WithProofs(cfg.Proofs))
	}
	if cfg.Sessions != nil {
		opts = append(opts, api.WithSessions(cfg.Sessions))
	}
	opts = append(opts, cfg.API...)
	if cfg.UI {
		uiOpts := []webui.Option{webui.WithAuditing(auditing{cfg.Store, cfg.Proofs}), webui.WithSessions(cfg.Sessions)}
		if cfg.Proofs != nil {
			uiOpts = append(uiOpts, webui.WithCheckpoints(checkpoints{cfg.Proofs}))
		}
		if cfg.Calendars != nil {
			uiOpts = append(uiOpts, webui.WithCalendars(cfg.Calendars, cfg.PublicURL))
		}
		uiOpts = append(uiOpts, cfg.UIOptions...)
		p.UI = webui.New(p.Service, p.Projector, cfg.Tokens, log.With("component", "webui"), uiOpts...)
		opts = append(opts, api.WithUI(p.UI))
	}
	p.API = api.New(p.Service, p.Projector, cfg.Store, log, opts...)

	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan error, 1)
	if cfg.Proofs != nil {
		p.Projector.Observe(cfg.Proofs.Offer)
	}
	go func() { p.done <- p.Projector.Run(ctx, cfg.Store) }()
	if cfg.Proofs != nil {
		p.signer.Go(func() { cfg.Proofs.Run(ctx) })
	}
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
// does not close the store, the tokens, the sessions or the webhooks, which
// the caller opened.
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
		p.signer.Wait()
	})
	return p.err
}

// auditing is what the auditor's web pages need of the store: verify, the
// API's export, and where a date starts in the stream.
type auditing struct {
	store  *eventstore.Store
	proofs *proofs.Service // nil: verify checks the chains only
}

func (a auditing) Verify(ctx context.Context, progress func(done, total uint64)) (domain.Report, error) {
	if a.proofs != nil {
		return a.proofs.Verify(ctx, 0, progress)
	}
	return a.store.Verify(ctx, progress)
}

func (a auditing) Export(ctx context.Context, w io.Writer, format string) error {
	_, err := api.Export(ctx, w, a.store, api.ExportOptions{Format: format}, nil)
	return err
}

func (a auditing) SequenceSince(ctx context.Context, t time.Time) (uint64, error) {
	return a.store.SequenceSince(ctx, t)
}

// checkpoints is what the checkpoint pages need of the proofs service.
type checkpoints struct{ svc *proofs.Service }

func (c checkpoints) List(ctx context.Context) ([]webui.Checkpoint, error) {
	cps, listed, _, err := c.svc.Stored(ctx)
	if err != nil {
		return nil, err
	}
	var keys []ed25519.PublicKey
	for _, k := range listed {
		if pub, err := k.Public(); err == nil {
			keys = append(keys, pub)
		}
	}
	out := make([]webui.Checkpoint, len(cps))
	for i, cp := range cps {
		out[i] = view(i+1, cp)
		if err := cp.Verify(keys); err != nil {
			out[i].Problem = err.Error()
		}
	}
	return out, nil
}

func view(number int, cp proofs.Checkpoint) webui.Checkpoint {
	return webui.Checkpoint{Number: number, Sequence: cp.Sequence, Root: cp.Root, KeyID: cp.KeyID, CreatedAt: cp.CreatedAt}
}

func (c checkpoints) Keys() []webui.SigningKey {
	var out []webui.SigningKey
	for _, k := range c.svc.Keys() {
		sk := webui.SigningKey{KeyID: k.KeyID, CreatedAt: k.CreatedAt, Current: k.KeyID == c.svc.KeyID()}
		if pub, err := k.Public(); err == nil {
			sk.PEM = proofs.PublicPEM(pub)
		}
		out = append(out, sk)
	}
	return out
}

func (c checkpoints) Create(ctx context.Context) (webui.Checkpoint, bool, error) {
	cp, created, err := c.svc.Create(ctx)
	return view(len(c.svc.Checkpoints()), cp), created, err
}

func (c checkpoints) Proof(ctx context.Context, id string) ([]byte, error) {
	f, err := c.svc.Proof(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(f)
	return append(b, '\n'), err
}

func (c checkpoints) Bundle(ctx context.Context, w io.Writer) error {
	_, err := c.svc.Bundle(ctx, w)
	return err
}
