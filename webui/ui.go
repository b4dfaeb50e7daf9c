package webui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"sync"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/importer"
	"github.com/iom-who/engagements/projections"
	"github.com/iom-who/engagements/ratelimit"
	"github.com/iom-who/engagements/sessions"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Projection is what the pages read from the read models.
type Projection interface {
	// Get returns a copy of the engagement, as it is or as it was within w;
	// List a page of engagements (within f.Window when set, with each one's
	// last change); History the engagement's events (within w when set).
	Get(ctx context.Context, id string, w domain.Window) (*domain.Engagement, error)
	List(ctx context.Context, f projections.Filter) (items []projections.Listed, more bool, err error)
	Count() int
	History(ctx context.Context, id string, w domain.Window) ([]domain.Event, error)
	// HistoryPage reads one page of the engagement's history from the
	// stream, Events some of its events by id.
	HistoryPage(ctx context.Context, id string, q projections.HistoryQuery) (projections.HistoryPage, error)
	Events(ctx context.Context, id string, ids ...string) ([]domain.Event, error)
	// Recent and Log feed the live updates: Recent from memory, Log from
	// the stream when asked further back.
	Recent(after uint64, limit int) ([]projections.Change, bool)
	// Marks are an engagement's events on the time axis, from memory.
	Marks(id string, w domain.Window) []projections.Mark
	Log(ctx context.Context, f projections.LogFilter) ([]domain.Event, error)
	// Upcoming is a page of the dated items due within q's window.
	Upcoming(q projections.UpcomingQuery) (items []projections.Upcoming, next string, err error)
	// Applied is the last stream sequence the projection has handled;
	// WaitFor blocks until it reaches seq or ctx ends.
	Applied() uint64
	WaitFor(ctx context.Context, seq uint64) error
}

// Tokens authenticates the token a session was signed in with.
type Tokens interface {
	Authenticate(token string) (domain.TokenInfo, bool)
	// AuthenticateDigest is Authenticate for the token of this digest
	// (tokens.Digest), which is what a session keeps.
	AuthenticateDigest(digest string) (domain.TokenInfo, bool)
}

// UI is the web interface, an http.Handler for the paths /, /login, /logout,
// /engagements/… and /assets/…. Its zero value is not usable; call New.
type UI struct {
	svc    *app.Service
	proj   Projection
	tokens Tokens
	log    *slog.Logger
	now    func() time.Time

	mux     *http.ServeMux
	pages   map[string]*template.Template
	assets  fs.FS
	version string // digest of the assets, for cache busting
	// sessions keeps the sessions (WithSessions), within sessionLimits.
	sessions      SessionStore
	sessionLimits sessions.Limits
	// pageLimits holds a token bucket per session, loginLimits one per
	// client address for /login (see Option).
	pageLimits, loginLimits *ratelimit.Keyed

	// auditing, when set, serves the auditor's pages (WithAuditing);
	// verifying is this instance's latest verification.
	auditing Auditing
	// checkpoints, when set, serves the checkpoint page and downloads.
	checkpoints Checkpoints
	verifying   verifyRun
	// background holds the verifications running.
	background sync.WaitGroup

	// calendars, when set, serves the calendar-feed page (WithCalendars);
	// publicURL is the base of the feed URLs it shows.
	calendars Calendars
	publicURL string

	// importLimit bounds a file for the import page; held keeps the
	// previewed files until they are confirmed.
	importLimit int64
	held        heldFiles

	// directory, when set, signs people in with their directory
	// (WithDirectory), asking it again every recheck; directoryBase is the
	// public URL the provider sends the browser back to after signing out.
	directory     Directory
	recheck       time.Duration
	directoryBase string

	// ctx ends live-update streams and verifications when Close is called.
	ctx    context.Context
	cancel context.CancelFunc
}

// Defaults of the limits New applies unless told otherwise.
const (
	// DefaultRateLimit and DefaultRateBurst limit each session's requests,
	// as serve's --rate-limit and --rate-burst limit each API token.
	DefaultRateLimit = 100
	DefaultRateBurst = 200
	// DefaultLoginRate and DefaultLoginBurst limit GET and POST /login per
	// client address (an IPv4 address or an IPv6 /64).
	DefaultLoginRate  = 2
	DefaultLoginBurst = 20
	// DefaultSessionsPerIdentity caps one token name's open sessions;
	// DefaultMaxSessions caps them all, to bound the sessions bucket (and
	// each instance's index of it).
	DefaultSessionsPerIdentity = 10
	DefaultMaxSessions         = 10_000
)

// config is what the Options set.
type config struct {
	rate, loginRate                  float64
	burst, loginBurst                int
	sessionsPerIdentity, maxSessions int
	sessions                         SessionStore
	auditing                         Auditing
	calendars                        Calendars
	publicURL                        string
	checkpoints                      Checkpoints
	importLimit                      int64
	directory                        Directory
	recheck                          time.Duration
	directoryBase                    string
}

// Option changes a limit of the web interface.
type Option func(*config)

// WithRateLimit limits each session to perSecond requests with the given
// burst (defaults DefaultRateLimit, DefaultRateBurst); perSecond 0 turns
// the limit off. Above it pages answer 429 with Retry-After.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(c *config) { c.rate, c.burst = perSecond, burst }
}

// WithLoginRateLimit limits GET and POST /login per client address
// (defaults DefaultLoginRate, DefaultLoginBurst); perSecond 0 turns the
// limit off.
func WithLoginRateLimit(perSecond float64, burst int) Option {
	return func(c *config) { c.loginRate, c.loginBurst = perSecond, burst }
}

// WithSessionLimits caps the open sessions of one identity (token name) and
// of everyone (defaults DefaultSessionsPerIdentity, DefaultMaxSessions).
// Signing in once more beyond perIdentity ends that identity's least
// recently used session; beyond total, one of the identity holding the
// most sessions.
func WithSessionLimits(perIdentity, total int) Option {
	return func(c *config) { c.sessionsPerIdentity, c.maxSessions = perIdentity, total }
}

// WithSessions keeps the sessions in store, normally the sessions bucket
// (sessions.Open), which every instance shares. Without it no one can sign
// in: the sign-in form answers 503.
func WithSessions(store SessionStore) Option {
	return func(c *config) { c.sessions = store }
}

// New builds the web interface on the command path, the projection and the
// token store (which must not be nil: every page needs a signed-in token).
func New(svc *app.Service, proj Projection, tokens Tokens, log *slog.Logger, opts ...Option) *UI {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := config{rate: DefaultRateLimit, burst: DefaultRateBurst, loginRate: DefaultLoginRate,
		loginBurst: DefaultLoginBurst, sessionsPerIdentity: DefaultSessionsPerIdentity, maxSessions: DefaultMaxSessions,
		importLimit: DefaultImportLimit}
	for _, o := range opts {
		o(&c)
	}
	u := &UI{svc: svc, proj: proj, tokens: tokens, log: log, now: time.Now,
		sessions:      c.sessions,
		sessionLimits: sessions.Limits{PerIdentity: max(c.sessionsPerIdentity, 1), Total: max(c.maxSessions, 1)},
		pageLimits:    ratelimit.New(c.rate, c.burst, c.maxSessions),
		loginLimits:   ratelimit.New(c.loginRate, c.loginBurst, 0), auditing: c.auditing,
		calendars: c.calendars, publicURL: c.publicURL, checkpoints: c.checkpoints,
		importLimit: min(max(c.importLimit, 1), importer.MaxFileBytes),
		directory:   c.directory, recheck: c.recheck, directoryBase: c.directoryBase}
	u.held.budget = heldImports * u.importLimit
	if u.recheck <= 0 {
		u.recheck = DefaultRecheck
	}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	u.pages = parsePages()
	u.assets, u.version = loadAssets()

	m := http.NewServeMux()
	m.HandleFunc("GET /login", u.loginPage)
	m.HandleFunc("POST /login", u.login)
	m.HandleFunc("POST /logout", u.signedIn(readers, u.logout))
	if u.directory != nil {
		m.HandleFunc("GET /login/oidc", u.beginDirectory)
		m.HandleFunc("GET /login/oidc/callback", u.finishDirectory)
	}
	m.HandleFunc("GET /{$}", u.signedIn(readers, u.portfolio))
	m.HandleFunc("GET /engagements/new", u.signedIn(writers, u.newPage))
	m.HandleFunc("GET /log", u.signedIn(readers, u.eventLog))
	m.HandleFunc("GET /portfolio.csv", u.signedIn(readers, u.portfolioCSV))
	m.HandleFunc("GET /timeline", u.signedIn(readers, u.timelinePage))
	if u.auditing != nil {
		m.HandleFunc("GET /verify", u.signedIn(auditors, u.verifyPage))
		m.HandleFunc("POST /verify", u.signedIn(auditors, u.runVerify))
		m.HandleFunc("GET /export.ndjson", u.signedIn(auditors, u.export("ndjson")))
		m.HandleFunc("GET /export.csv", u.signedIn(auditors, u.export("csv")))
	}
	if u.calendars != nil {
		m.HandleFunc("GET /feeds", u.signedIn(readers, u.feedsPage))
		m.HandleFunc("POST /feeds", u.signedIn(readers, u.createFeed))
		m.HandleFunc("POST /feeds/{id}/revoke", u.signedIn(readers, u.revokeFeed))
	}
	if u.checkpoints != nil {
		m.HandleFunc("GET /checkpoints", u.signedIn(auditors, u.checkpointsPage))
		m.HandleFunc("POST /checkpoints", u.signedIn(auditors, u.createCheckpoint))
		m.HandleFunc("GET /export.bundle", u.signedIn(auditors, u.downloadBundle))
		m.HandleFunc("GET /engagements/{id}/proof.json", u.signedIn(auditors, u.downloadProof))
	}
	m.HandleFunc("POST /engagements/new", u.signedIn(writers, u.create))
	m.HandleFunc("GET /import", u.signedIn(writers, u.importPage))
	m.HandleFunc("POST /import", u.uploading(writers, u.previewImport))
	m.HandleFunc("POST /import/confirm", u.signedIn(writers, u.confirmImport))
	m.HandleFunc("GET /engagements/live", u.signedIn(readers, u.live))
	m.HandleFunc("GET /engagements/{id}", u.signedIn(readers, u.engagement))
	m.HandleFunc("POST /engagements/{id}/events", u.signedIn(writers, u.appendEvent))
	m.HandleFunc("POST /engagements/{id}/documents", u.uploading(writers, u.upload))
	m.HandleFunc("GET /engagements/{id}/documents/{document_id}", u.signedIn(readers, u.download))
	m.HandleFunc("GET /assets/{file...}", u.asset)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, nil, http.StatusNotFound, "Page not found", "There is no page at this address.")
	})
	u.mux = m
	return u
}

// ServeHTTP serves the pages with security headers that suit them: no
// framing, only this origin's scripts and styles, nothing cached.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	u.mux.ServeHTTP(w, r)
}

// Close ends every open live-update stream, so a graceful shutdown does not
// wait for browsers that keep them open, and waits for a verification
// started from the pages to stop. Pages keep working.
func (u *UI) Close() {
	u.cancel()
	u.background.Wait()
}

// parsePages parses each page template with the shared layout and partials.
func parsePages() map[string]*template.Template {
	pages := make(map[string]*template.Template)
	for _, name := range []string{"login", "portfolio", "engagement", "new", "error", "log", "verify", "timeline", "feeds", "checkpoints", "import", "continue"} {
		t := template.New(name).Funcs(funcs)
		pages[name] = template.Must(t.ParseFS(templateFS,
			"templates/layout.html", "templates/partials.html", "templates/"+name+".html"))
	}
	return pages
}

// loadAssets returns the embedded assets and a digest of them: asset URLs
// carry it, so browsers may cache them for good and still see new ones.
func loadAssets() (fs.FS, string) {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err)
	}
	sum := sha256.New()
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		sum.Write([]byte(p))
		sum.Write(b)
		return err
	})
	if err != nil {
		panic(err)
	}
	return sub, hex.EncodeToString(sum.Sum(nil))[:12]
}

func (u *UI) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(u.assets, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
		".svg": "image/svg+xml"}
	if ct, ok := types[path.Ext(name)]; ok {
		w.Header().Set("Content-Type", ct)
	}
	if r.URL.Query().Get("v") == u.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// base is what every page's layout needs.
type base struct {
	Title   string
	Nav     string // "portfolio" or "new": the current section
	User    *user  // nil on the sign-in page
	CSRF    string
	Flash   string
	Version string // of the assets
	Audit   bool   // the auditor's pages are offered to this user
	// CalendarFeeds: the calendar-feed page is offered.
	CalendarFeeds bool
	Proofs        bool // so are the checkpoint page and the proof and bundle downloads
}

// render executes page into a buffer first, so a template error never sends
// half a page.
func (u *UI) render(w http.ResponseWriter, status int, page string, data any) {
	var buf bytes.Buffer
	if err := u.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		u.log.Error("render page", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// base fills in what every page shows for the signed-in user s (nil when
// nobody is signed in).
func (u *UI) base(s *session, title, nav string) base {
	b := base{Title: title, Nav: nav, Version: u.version}
	if s != nil {
		b.User, b.CSRF, b.Flash = &s.user, s.CSRF, u.takeFlash(s)
		b.Audit = u.auditing != nil && s.user.Role.Allowed(auditors...)
		b.CalendarFeeds = u.calendars != nil
		b.Proofs = u.checkpoints != nil && s.user.Role.Allowed(auditors...)
	}
	return b
}

type errorData struct {
	base
	Status  int
	Heading string
	Message string
}

// errorPage answers with a page that says what went wrong in plain words.
func (u *UI) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, heading, message string) {
	u.render(w, status, "error", errorData{base: u.base(s, heading, ""), Status: status, Heading: heading, Message: message})
}

// failed shows the page for an error of the command path or the projection
// that is not about the form's content.
func (u *UI) failed(w http.ResponseWriter, r *http.Request, s *session, err error) {
	switch {
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, domain.ErrInvalidID):
		u.errorPage(w, r, s, http.StatusNotFound, "Engagement not found",
			"No engagement has this address. It may have been mistyped; the portfolio lists every engagement.")
	case errors.Is(err, domain.ErrConflict):
		u.errorPage(w, r, s, http.StatusConflict, "Too many changes at once",
			"Others kept changing this engagement while yours was being saved, so nothing was saved. Please try again.")
	case errors.Is(err, domain.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "2")
		u.errorPage(w, r, s, http.StatusServiceUnavailable, "Temporarily unavailable",
			"The event store cannot be reached right now. Nothing is lost; please try again in a moment.")
	default:
		u.log.Error("web page failed", "method", r.Method, "path", r.URL.Path, "err", err)
		u.errorPage(w, r, s, http.StatusInternalServerError, "Something went wrong",
			"The request could not be completed. It has been logged; please try again.")
	}
}

// seeOther redirects after a successful POST, so reloading does not post again.
func seeOther(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// Asset is the cache-busting address of an embedded asset.
func (b base) Asset(name string) string { return fmt.Sprintf("/assets/%s?v=%s", name, b.Version) }
