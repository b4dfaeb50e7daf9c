package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
	"github.com/iom-who/engagements/ratelimit"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Pinger reports whether the event store answers.
type Pinger interface {
	LastSequence(ctx context.Context) (uint64, error)
}

// Projection is what the server reads from the read models.
type Projection interface {
	// Read calls fn with the engagement's current state under the
	// projection's read lock and reports whether it exists.
	Read(id string, fn func(e *domain.Engagement, lastSeq uint64)) bool
	// Get returns a copy of the engagement, as it is or as it was within w;
	// List a page of engagements (within f.Window when set); History the
	// engagement's events (within w when set).
	Get(ctx context.Context, id string, w domain.Window) (*domain.Engagement, error)
	List(ctx context.Context, f projections.Filter) (items []projections.Listed, more bool, err error)
	History(ctx context.Context, id string, w domain.Window) ([]domain.Event, error)
	// HistoryPage is one page of the engagement's history.
	HistoryPage(ctx context.Context, id string, q projections.HistoryQuery) (projections.HistoryPage, error)
	Log(ctx context.Context, f projections.LogFilter) ([]domain.Event, error)
	// Upcoming is a page of the dated items due within q's window.
	Upcoming(q projections.UpcomingQuery) (items []projections.Upcoming, next string, err error)
	// Applied is the last stream sequence the projection has handled;
	// WaitFor blocks until it reaches seq or ctx ends.
	Applied() uint64
	WaitFor(ctx context.Context, seq uint64) error
	Stats() projections.Stats
	// Dated lists the open dated items of the engagements f selects.
	Dated(f projections.DatedFilter) (items []projections.DatedItem, more bool)
}

// Stream is what the server reads from the event store itself: readiness
// and lag, export, the live event stream and verification.
type Stream interface {
	Pinger
	// VerifyUntil walks the stream up to a sequence (0: all) and checks
	// every event and link.
	VerifyUntil(ctx context.Context, until uint64, progress func(done, total uint64)) (domain.Report, error)
	Walker
}

// Server is the HTTP API.
type Server struct {
	echo   *echo.Echo
	svc    *app.Service
	proj   Projection
	stream Stream
	log    *slog.Logger
	now    func() time.Time
	// startSeq is the stream's last sequence when the process started; /v1
	// answers only once the projection has reached it, so a restart never
	// serves a 404 for an engagement that exists.
	startSeq atomic.Uint64
	// tokens, when set, turns on authentication; limits rate-limits tokens.
	tokens TokenStore
	limits *ratelimit.Keyed
	// subs, when set, serves /v1/subscriptions (webhooks).
	subs Subscriptions
	// streams counts open event streams, slowStreams those dropped for
	// falling behind; closing ends them all at shutdown.
	streams     atomic.Int64
	slowStreams atomic.Uint64
	closing     chan struct{}
	closeOnce   sync.Once

	metrics      *metrics
	metricsToken string

	// ui, when set, serves the web pages (WithUI).
	ui http.Handler

	// calendars, when set, serves calendar feeds (WithCalendars), each
	// fetch limited per client address by feedLimits.
	calendars  Calendars
	feedLimits *ratelimit.Keyed
	// publicURL is the base of the URLs handed out ("": the request's).
	publicURL string
	// proofs, when set, serves checkpoints, keys and proofs (WithProofs).
	proofs Proofs
	// sessions, when set, lets an admin end web sessions (WithSessions).
	sessions SessionEnder
}

// uiPaths are the paths WithUI hands to the web interface; everything else
// stays the API's.
var uiPaths = []string{"/", "/login", "/login/oidc", "/login/oidc/callback", "/logout", "/engagements/*", "/assets/*", "/log", "/verify",
	"/export.ndjson", "/export.csv", "/portfolio.csv", "/timeline", "/feeds", "/feeds/*", "/checkpoints", "/export.bundle", "/import", "/import/*"}

// WithUI mounts a web interface (package webui) on uiPaths. It is an
// http.Handler so that api does not import the package that imports it.
func WithUI(h http.Handler) Option { return func(s *Server) { s.ui = h } }

// New builds the API on top of the command path, the projection it reads
// and the stream it exports, follows and verifies.
func New(svc *app.Service, proj Projection, stream Stream, log *slog.Logger, opts ...Option) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{echo: echo.New(), svc: svc, proj: proj, stream: stream, log: log, now: time.Now,
		closing: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	s.metrics = s.newMetrics()
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("panic in handler", "path", c.Path(), "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.RequestID())
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod: true, LogURIPath: true, LogStatus: true, LogLatency: true, LogRequestID: true, LogError: true,
		HandleError: true,
		LogValuesFunc: func(_ echo.Context, v middleware.RequestLoggerValues) error {
			// A feed's path holds its secret: never logged.
			log.Info("request", "method", v.Method, "path", calendars.RedactPath(v.URIPath), "status", v.Status,
				"latency", v.Latency, "request_id", v.RequestID)
			return nil
		},
	}))
	e.Use(limitBody)
	e.Use(s.observe)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/openapi.yaml", s.openAPI)
	e.GET("/metrics", s.serveMetrics)
	// The data schemas an event's dataschema names: public, like the
	// OpenAPI document.
	e.GET("/schemas/:type/:version", s.dataSchema)
	// Middleware is added per route: as group middleware echo would answer
	// a wrong method with 404 instead of 405.
	write := []echo.MiddlewareFunc{s.allow(domain.RoleCoordinator), s.caughtUp}
	read := []echo.MiddlewareFunc{s.allow(domain.RoleCoordinator, domain.RoleAuditor), s.caughtUp}
	audit := []echo.MiddlewareFunc{s.allow(domain.RoleAuditor), s.caughtUp}
	v1 := e.Group("/v1")
	v1.GET("/schemas/:type/:version", s.dataSchema)
	v1.POST("/engagements", s.createEngagement, write...)
	v1.GET("/engagements", s.listEngagements, read...)
	v1.GET("/engagements/:id", s.getEngagement, read...)
	v1.POST("/engagements/:id/events", s.appendEvent, write...)
	v1.POST(strings.TrimPrefix(batchesPath, "/v1"), s.batch, write...)
	v1.GET("/engagements/:id/history", s.history, read...)
	v1.GET("/upcoming", s.upcoming, read...)
	v1.POST(strings.TrimPrefix(documentsRoute, "/v1"), s.uploadDocument, write...)
	v1.GET("/engagements/:id/documents", s.listDocuments, read...)
	v1.GET("/engagements/:id/documents/:document_id", s.downloadDocument, read...)
	v1.GET("/events", s.events, audit...)
	v1.GET("/events/export", s.export, s.allow(domain.RoleAuditor))
	v1.GET("/events/stream", s.streamEvents, s.allow(domain.RoleSubscriber, domain.RoleAuditor))
	v1.GET("/verify", s.verify, s.allow(domain.RoleAuditor))
	people := []echo.MiddlewareFunc{s.allow(domain.RoleAdmin), s.caughtUp}
	v1.GET("/people", s.findPerson, people...)
	v1.GET("/people/:id", s.getPerson, people...)
	v1.POST("/people/:id/erase", s.erasePerson, people...)
	if s.tokens != nil {
		admin := s.allow(domain.RoleAdmin)
		v1.POST("/tokens", s.createToken, admin)
		v1.GET("/tokens", s.listTokens, admin)
		v1.DELETE("/tokens/:name", s.revokeToken, admin)
	}
	if s.sessions != nil {
		v1.DELETE("/sessions", s.endSessions, s.allow(domain.RoleAdmin))
	}
	if s.proofs != nil {
		v1.GET("/keys", s.keys, s.allow(domain.RoleCoordinator, domain.RoleAuditor, domain.RoleSubscriber))
		v1.GET("/checkpoints", s.listCheckpoints, s.allow(domain.RoleCoordinator, domain.RoleAuditor))
		v1.POST("/checkpoints", s.createCheckpoint, s.allow(domain.RoleAuditor))
		v1.GET("/engagements/:id/proof", s.proof, read...)
	}
	if s.subs != nil {
		sub := s.allow(domain.RoleSubscriber)
		v1.POST("/subscriptions", s.createSubscription, sub)
		v1.GET("/subscriptions", s.listSubscriptions, sub)
		v1.GET("/subscriptions/:id", s.getSubscription, sub)
		v1.DELETE("/subscriptions/:id", s.deleteSubscription, sub)
		v1.GET("/subscriptions/:id/failures", s.subscriptionFailures, sub)
		v1.POST("/subscriptions/:id/failures/:sequence/redeliver", s.redeliverFailure, sub)
		v1.POST("/subscriptions/:id/pause", s.pauseSubscription, sub)
		v1.POST("/subscriptions/:id/resume", s.resumeSubscription, sub)
	}
	if s.calendars != nil {
		v1.POST("/calendars", s.createCalendar, read...)
		v1.GET("/calendars", s.listCalendars, read...)
		v1.DELETE("/calendars/:id", s.revokeCalendar, read...)
		// The secret in the path is the credential: no Authorization.
		e.GET("/calendars/:file", s.serveCalendar, s.caughtUp)
		e.HEAD("/calendars/:file", s.serveCalendar, s.caughtUp)
	}
	if s.ui != nil {
		// Pages read the projection too: after a restart they wait for it
		// like /v1 does, rather than show an engagement as missing.
		for _, p := range uiPaths {
			e.Any(p, echo.WrapHandler(s.ui), s.caughtUp)
		}
	}
	return s
}

// CatchUpTo makes /v1 wait (briefly, then 503) until the projection has
// applied seq, normally the stream's last sequence at start-up.
func (s *Server) CatchUpTo(seq uint64) { s.startSeq.Store(seq) }

func (s *Server) caughtUp(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		min, err := minSequence(c)
		if err != nil {
			return err
		}
		start := s.startSeq.Load()
		if seq := max(start, min); seq > 0 {
			ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
			err := s.proj.WaitFor(ctx, seq)
			cancel()
			if err != nil {
				p := problem(http.StatusServiceUnavailable, "not-ready", "Not ready",
					fmt.Sprintf("the read models have not reached sequence %d yet", seq))
				p.retryAfter = "1"
				return p
			}
			if start > 0 {
				s.startSeq.Store(0)
			}
		}
		return next(c)
	}
}

// minSequence reads ?min_sequence= or the Min-Sequence header: a client that
// wrote through another instance passes the sequence from its 201 to read
// its own write here (cross-instance read-your-writes).
func minSequence(c echo.Context) (uint64, error) {
	v := c.QueryParam("min_sequence")
	if v == "" {
		v = c.Request().Header.Get("Min-Sequence")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, badRequest("min_sequence must be a stream sequence",
			domain.FieldError{Field: "min_sequence", Message: "must be a whole number"})
	}
	return n, nil
}

// MaxHeaderBytes is the most a request's line and header fields may take:
// above it the API answers 431 with a problem. It is net/http's default
// limit, as before.
const MaxHeaderBytes = http.DefaultMaxHeaderBytes

// ReadHeaderBytes is what the http.Server serving the API should read of a
// request's header (its MaxHeaderBytes): more than MaxHeaderBytes, so that
// a header over our limit reaches the API and gets a problem. Above
// ReadHeaderBytes net/http answers by itself, with a plain-text 431.
const ReadHeaderBytes = 4 * MaxHeaderBytes

// headersTooLarge is the 431 problem for a request whose line and header
// fields are larger than MaxHeaderBytes, counted as on the wire, or nil.
// limitBody calls it: echo wraps each middleware per request, which would
// cost an allocation per request for a middleware of its own.
func headersTooLarge(r *http.Request) error {
	if headerBytes(r) <= MaxHeaderBytes {
		return nil
	}
	return echo.NewHTTPError(http.StatusRequestHeaderFieldsTooLarge,
		fmt.Sprintf("the request line and header fields are larger than %d bytes", MaxHeaderBytes))
}

// headerBytes is the size of r's request line and header fields as sent:
// "METHOD URI PROTO\r\n", "Name: value\r\n" per field line (Host among
// them) and the blank line.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	if r.Host != "" {
		n += len("Host: \r\n") + len(r.Host)
	}
	for k, vv := range r.Header {
		for _, v := range vv {
			n += len(k) + len(v) + 4
		}
	}
	return n + 2
}

// limitBody caps request bodies at MaxBody (MaxBatchBody for a batch); a
// larger body is a 413 whether or not it announced its length. Headers over
// MaxHeaderBytes are a 431 first. Document uploads (the API's and the
// pages') set their own limit.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if err := headersTooLarge(r); err != nil {
			return err
		}
		if uploads(c) {
			return next(c)
		}
		limit := int64(MaxBody)
		if c.Path() == batchesPath {
			limit = MaxBatchBody
		}
		if r.ContentLength > limit {
			return bodyTooLarge(limit)
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
		return next(c)
	}
}

// uploads reports whether c is an upload whose handler limits the body
// itself: a document (the API's route, or the web page's form, POST
// /engagements/{id}/documents) or a spreadsheet for the import page (POST
// /import, webui's import limit).
func uploads(c echo.Context) bool {
	r := c.Request()
	if r.Method != http.MethodPost {
		return false
	}
	return c.Path() == documentsRoute || r.URL.Path == "/import" ||
		strings.HasPrefix(r.URL.Path, "/engagements/") && strings.HasSuffix(r.URL.Path, "/documents") &&
			strings.Count(r.URL.Path, "/") == 3
}

// ServeHTTP makes the server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// WriteRefuser reports whether the event store refuses writes (a full disk,
// a failed write) and why; eventstore.Store has it.
type WriteRefuser interface{ WritesRefused() error }

// readyz is 200 only when NATS answers, the store takes writes and the
// projection has caught up with everything the stream held when the check
// began. A load balancer then sends no writes to an instance whose store
// refuses them; reads come back with the store.
func (s *Server) readyz(c echo.Context) error {
	if w, ok := s.stream.(WriteRefuser); ok {
		if err := w.WritesRefused(); err != nil {
			p := problem(http.StatusServiceUnavailable, "not-ready", "Not ready", "writes refused: "+err.Error())
			p.retryAfter = "1"
			return p
		}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	last, err := s.stream.LastSequence(ctx)
	if err != nil {
		return err
	}
	if err := s.proj.WaitFor(ctx, last); err != nil {
		p := problem(http.StatusServiceUnavailable, "not-ready", "Not ready", "projections are still catching up")
		p.retryAfter = "1"
		return p
	}
	st := s.proj.Stats()
	return c.JSON(http.StatusOK, map[string]any{"status": "ready", "applied": st.Applied, "stream": last,
		"rejected": st.Rejected, "undecodable": st.Undecodable,
		"event_streams": s.streams.Load(), "event_streams_dropped_slow": s.slowStreams.Load()})
}
