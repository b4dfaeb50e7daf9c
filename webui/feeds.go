package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/sessions"
)

// Calendars is what the calendar-feed page needs from the feed store
// (calendars.Store).
type Calendars interface {
	Create(ctx context.Context, owner string, r calendars.Request) (string, calendars.Feed, error)
	// List returns owner's feeds, or every one when owner is "".
	List(ctx context.Context, owner string) ([]calendars.Feed, error)
	Get(ctx context.Context, id string) (calendars.Feed, error)
	Revoke(ctx context.Context, id string) error
}

// WithCalendars serves the calendar-feed page (/feeds) on c; publicURL is
// the base of the feed URLs shown ("": the request's scheme and host).
func WithCalendars(c Calendars, publicURL string) Option {
	return func(cfg *config) { cfg.calendars, cfg.publicURL = c, strings.TrimSuffix(publicURL, "/") }
}

// feedView is one feed as the page lists it.
type feedView struct {
	calendars.Feed
	Within string
}

// feedsData is the calendar-feed page: the signed-in user's feeds (an
// admin's: everyone's), the form that makes one and, once, the URL of the
// feed just made.
type feedsData struct {
	base
	Feeds []feedView
	// All is set for an admin, who sees everyone's feeds.
	All bool
	// Created is the feed just made and URL its secret address, shown on
	// this answer only; Subscribe is the same as a webcal:// link.
	Created *calendars.Feed
	URL     string
	// Subscribe is built here from the service's own URL, so it may be
	// used as an href with the webcal scheme (html/template refuses
	// unknown schemes otherwise).
	Subscribe template.URL
	// The form's values and its errors by field.
	Name, Party, Within string
	Kinds               []option
	Errors              map[string]string
}

// feedOwner is whose feeds the page shows and makes: the signed-in token's
// name; all is set for an admin.
func feedOwner(s *session) (owner string, all bool) {
	return s.user.Name, s.user.Role == domain.RoleAdmin
}

// feedsPage: GET /feeds, with the URL of a feed just made, once.
func (u *UI) feedsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := feedsData{base: u.base(s, "Calendar feeds", "feeds"), Errors: map[string]string{}}
	if c := u.takeNewFeed(s); c != nil {
		d.Created, d.URL = &c.Feed, c.URL
		if su, err := url.Parse(c.URL); err == nil {
			su.Scheme = "webcal"
			d.Subscribe = template.URL(su.String())
		}
	}
	u.renderFeeds(w, r, s, http.StatusOK, d, "")
}

// renderFeeds fills in the list and the form's kinds and renders the page.
func (u *UI) renderFeeds(w http.ResponseWriter, r *http.Request, s *session, status int, d feedsData, kind string) {
	owner, all := feedOwner(s)
	if all {
		owner = ""
	}
	feeds, err := u.calendars.List(r.Context(), owner)
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	d.All = all
	d.Feeds = make([]feedView, len(feeds))
	for i, f := range feeds {
		d.Feeds[i] = feedView{Feed: f, Within: calendars.FormatWithin(f.Filter.WithinDays)}
	}
	d.Kinds = []option{{Value: "", Label: "All kinds", Selected: kind == ""}}
	for _, k := range domain.Kinds {
		d.Kinds = append(d.Kinds, option{Value: string(k), Label: kindPlural(k), Selected: kind == string(k)})
	}
	if d.Created != nil {
		// The secret is on this page: let nothing keep it.
		w.Header().Set("Referrer-Policy", "no-referrer")
	}
	u.render(w, status, "feeds", d)
}

// createdFeed is a feed just made and its secret URL, kept in the session
// (sealed: see package sessions) until the page after the redirect shows
// it, once.
type createdFeed struct {
	Feed calendars.Feed `json:"feed"`
	URL  string         `json:"url"`
}

// newFeedKey is the session's pending value of the feed just made.
const newFeedKey = "new_feed"

// setNewFeed keeps the feed just made for the session's next page.
func (u *UI) setNewFeed(s *session, c createdFeed) {
	b, err := json.Marshal(c)
	if err != nil {
		u.log.Error("feed for the next page", "err", err)
		return
	}
	u.changeSession(s, func(x *sessions.Session) bool {
		if x.Pending == nil {
			x.Pending = make(map[string]json.RawMessage)
		}
		x.Pending[newFeedKey] = b
		return true
	})
}

// takeNewFeed returns the feed kept for this page, once.
func (u *UI) takeNewFeed(s *session) *createdFeed {
	b, ok := s.Pending[newFeedKey]
	if !ok {
		return nil
	}
	delete(s.Pending, newFeedKey)
	u.changeSession(s, func(x *sessions.Session) bool {
		if _, ok := x.Pending[newFeedKey]; !ok {
			return false
		}
		delete(x.Pending, newFeedKey)
		return true
	})
	var c createdFeed
	if err := json.Unmarshal(b, &c); err != nil {
		return nil
	}
	return &c
}

// createFeed: POST /feeds. A refused form comes back with the messages
// beside its fields; a new feed's URL is shown once, on the page the
// answer redirects to (so a reload makes no second feed).
func (u *UI) createFeed(w http.ResponseWriter, r *http.Request, s *session) {
	req := calendars.Request{Name: r.PostFormValue("name"), Kind: r.PostFormValue("kind"),
		Party: r.PostFormValue("party"), Within: strings.TrimSpace(r.PostFormValue("within"))}
	owner, _ := feedOwner(s)
	secret, feed, err := u.calendars.Create(r.Context(), owner, req)
	var invalid *domain.ValidationError
	if errors.As(err, &invalid) || errors.Is(err, calendars.ErrTooMany) {
		d := feedsData{base: u.base(s, "Calendar feeds", "feeds"), Errors: map[string]string{},
			Name: req.Name, Party: req.Party, Within: req.Within}
		status := http.StatusUnprocessableEntity
		if invalid != nil {
			for _, f := range invalid.Fields {
				d.Errors[f.Field] = f.Message
			}
		} else {
			status = http.StatusConflict
			d.Errors["form"] = fmt.Sprintf("You hold as many calendar feeds as allowed (%d). Revoke one first.", calendars.MaxPerOwner)
		}
		u.renderFeeds(w, r, s, status, d, req.Kind)
		return
	}
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	base := u.publicURL
	if base == "" {
		base = calendars.BaseURL(r)
	}
	u.setNewFeed(s, createdFeed{Feed: feed, URL: base + calendars.Path(secret)})
	seeOther(w, r, "/feeds")
}

// revokeFeed: POST /feeds/{id}/revoke — the user's own feed (an admin:
// any). Another's is "not found", as if it did not exist.
func (u *UI) revokeFeed(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	feed, err := u.calendars.Get(r.Context(), id)
	if err == nil {
		if owner, all := feedOwner(s); !all && feed.Owner != owner {
			err = fmt.Errorf("calendar feed %s: %w", id, domain.ErrNotFound)
		}
	}
	if err == nil {
		err = u.calendars.Revoke(r.Context(), id)
	}
	switch {
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, domain.ErrInvalidID):
		u.errorPage(w, r, s, http.StatusNotFound, "Calendar feed not found",
			"You have no calendar feed with this address; it may have been revoked already.")
		return
	case err != nil:
		u.failed(w, r, s, err)
		return
	}
	u.setFlash(s, fmt.Sprintf("The calendar feed “%s” is revoked: its address no longer works.", feed.Name))
	seeOther(w, r, "/feeds")
}
