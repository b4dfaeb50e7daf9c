package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
	"github.com/iom-who/engagements/ratelimit"
	"github.com/labstack/echo/v4"
)

// Calendars is what the calendar-feed routes need from the feed store
// (calendars.Store).
type Calendars interface {
	Create(ctx context.Context, owner string, r calendars.Request) (string, calendars.Feed, error)
	// List returns owner's feeds, or every one when owner is "".
	List(ctx context.Context, owner string) ([]calendars.Feed, error)
	Get(ctx context.Context, id string) (calendars.Feed, error)
	Revoke(ctx context.Context, id string) error
	// Lookup finds the feed a secret opens (ok false for none).
	Lookup(ctx context.Context, secret string) (calendars.Feed, bool, error)
}

// Defaults of the limit on fetching feeds, per client address (an IPv4
// address or an IPv6 /64), like the sign-in page's: feeds are fetched
// without a token. Calendar services fetch many users' feeds from few
// addresses, so it is more generous than the sign-in page's.
const (
	DefaultFeedRate  = 5
	DefaultFeedBurst = 50
)

// WithCalendars turns on /v1/calendars and the feeds at
// /calendars/{secret}.ics, each fetch limited per client address to
// perSecond (0: no limit) with burst.
func WithCalendars(c Calendars, perSecond float64, burst int) Option {
	return func(s *Server) {
		s.calendars = c
		s.feedLimits = ratelimit.New(perSecond, burst, 0)
	}
}

// WithPublicURL sets the base of the URLs the API hands out (calendar
// feeds and the engagement links in them), e.g. https://tracker.example.org
// without a trailing slash. Unset, the request's own scheme and host are
// used.
func WithPublicURL(u string) Option {
	return func(s *Server) { s.publicURL = strings.TrimSuffix(u, "/") }
}

// baseURL is the public URL, or the one the request came to.
func (s *Server) baseURL(r *http.Request) string {
	if s.publicURL != "" {
		return s.publicURL
	}
	return calendars.BaseURL(r)
}

// feedJSON is a feed as the API shows it; URL only when it is created.
type feedJSON struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Owner     string      `json:"owner"`
	Kind      domain.Kind `json:"kind,omitempty"`
	Party     string      `json:"party,omitempty"`
	Within    string      `json:"within,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
	URL       string      `json:"url,omitempty"`
}

func toFeedJSON(f calendars.Feed) feedJSON {
	return feedJSON{ID: f.ID, Name: f.Name, Owner: f.Owner, Kind: f.Filter.Kind, Party: f.Filter.Party,
		Within: calendars.FormatWithin(f.Filter.WithinDays), CreatedAt: f.CreatedAt}
}

// createCalendar: POST /v1/calendars (roles that read engagements). The
// body is optional: {"name", "kind", "party", "within"}.
func (s *Server) createCalendar(c echo.Context) error {
	var req calendars.Request
	if c.Request().ContentLength != 0 {
		body, err := readJSON(c)
		if err != nil {
			return err
		}
		m, err := fields(body, "name", "kind", "party", "within")
		if err != nil {
			return err
		}
		for _, f := range []struct {
			name string
			dst  *string
		}{{"name", &req.Name}, {"kind", &req.Kind}, {"party", &req.Party}, {"within", &req.Within}} {
			if *f.dst, _, err = stringField(m, f.name); err != nil {
				return err
			}
		}
	}
	owner, _ := subscriber(c)
	secret, feed, err := s.calendars.Create(c.Request().Context(), owner, req)
	if err != nil {
		if errors.Is(err, calendars.ErrTooMany) {
			return problem(http.StatusConflict, "conflict", "Conflict", fmt.Sprintf(
				"this token holds as many calendar feeds as allowed (%d); revoke one first", calendars.MaxPerOwner))
		}
		return err
	}
	out := toFeedJSON(feed)
	out.URL = s.baseURL(c.Request()) + calendars.Path(secret)
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set(echo.HeaderLocation, "/v1/calendars/"+feed.ID)
	return c.JSON(http.StatusCreated, out)
}

// listCalendars: GET /v1/calendars — the caller's feeds (an admin's: all),
// never their secrets.
func (s *Server) listCalendars(c echo.Context) error {
	owner, all := subscriber(c)
	if all {
		owner = ""
	}
	feeds, err := s.calendars.List(c.Request().Context(), owner)
	if err != nil {
		return err
	}
	items := make([]feedJSON, len(feeds))
	for i, f := range feeds {
		items[i] = toFeedJSON(f)
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items})
}

// revokeCalendar: DELETE /v1/calendars/{id} — the caller's own feed (an
// admin: any). Another owner's is a 404, as if it did not exist.
func (s *Server) revokeCalendar(c echo.Context) error {
	id := c.Param("id")
	if err := domain.CheckID(id); err != nil {
		return err
	}
	ctx := c.Request().Context()
	feed, err := s.calendars.Get(ctx, id)
	if err != nil {
		return err
	}
	if owner, all := subscriber(c); !all && feed.Owner != owner {
		return fmt.Errorf("calendar feed %s: %w", id, domain.ErrNotFound)
	}
	if err := s.calendars.Revoke(ctx, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// errNoFeed is the one answer to a feed URL that opens nothing, whatever
// the reason: no such secret, revoked, its owner's token gone.
var errNoFeed = problem(http.StatusNotFound, "not-found", "Not found", "no such calendar feed")

// serveCalendar: GET /calendars/{secret}.ics, without Authorization (the
// secret is the credential). The owner's token must still exist with a
// role that reads engagements and be older than the feed, so revoking the
// token (or giving its name to someone else) ends its feeds too.
func (s *Server) serveCalendar(c echo.Context) error {
	r := c.Request()
	if wait, ok := s.feedLimits.Allow(ratelimit.ClientKey(r), s.now()); !ok {
		p := problem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
			fmt.Sprintf("calendar feeds may be fetched %g times per second from one address (burst %d)",
				s.feedLimits.PerSecond(), s.feedLimits.Burst()))
		p.retryAfter = ratelimit.RetryAfter(wait)
		return p
	}
	secret, ok := strings.CutSuffix(c.Param("file"), ".ics")
	if !ok {
		return errNoFeed
	}
	feed, ok, err := s.calendars.Lookup(r.Context(), secret)
	if err != nil {
		return err
	}
	if !ok || !s.ownerMayRead(feed) {
		return errNoFeed
	}
	now := s.now()
	f := projections.DatedFilter{Kind: feed.Filter.Kind, Party: feed.Filter.Party, Limit: calendars.MaxItems}
	if feed.Filter.WithinDays > 0 {
		f.Until = now.UTC().AddDate(0, 0, feed.Filter.WithinDays).Format(domain.DateLayout)
	}
	items, _ := s.proj.Dated(f)
	base := s.baseURL(r)
	h := c.Response().Header()
	h.Set("Cache-Control", "private, no-cache")
	// A calendar app polls: an unchanged feed is a 304, not rendered again.
	tag := feedTag(feed, base, items)
	h.Set("ETag", `"`+tag+`"`)
	if tagMatches(r.Header["If-None-Match"], tag) {
		return c.NoContent(http.StatusNotModified)
	}
	var buf bytes.Buffer
	if err := calendars.Write(&buf, feed, items, base, now); err != nil {
		return err
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Robots-Tag", "noindex")
	h.Set("Content-Disposition", `inline; filename="engagements.ics"`)
	return c.Blob(http.StatusOK, calendars.ContentType, buf.Bytes())
}

// ownerMayRead reports whether the feed's owner still holds a token that
// reads engagements and was made before the feed (always, without
// authentication).
func (s *Server) ownerMayRead(feed calendars.Feed) bool {
	if s.tokens == nil {
		return true
	}
	for _, t := range s.tokens.List() {
		if t.Name == feed.Owner {
			return t.Role.Allowed(domain.RoleCoordinator, domain.RoleAuditor) && !t.CreatedAt.After(feed.CreatedAt)
		}
	}
	return false
}

// feedTag is a feed's entity tag: a digest of everything the document
// says but its DTSTAMP (the time it is rendered), so an unchanged feed has
// an unchanged tag.
func feedTag(feed calendars.Feed, base string, items []projections.DatedItem) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %d %q\n", feed.Name, feed.Filter.Kind, feed.Filter.Party, feed.Filter.WithinDays, base)
	for _, it := range items {
		fmt.Fprintf(h, "%q %q %q %q %q %q %q %q\n", it.EngagementID, it.Kind, it.Title, it.Parties,
			it.Deadline.Kind, it.On, it.Ref, it.Deadline.Title)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
