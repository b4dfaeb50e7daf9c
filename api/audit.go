package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
	"github.com/labstack/echo/v4"
)

// parseWindow reads as_of and known_at. A bare date means the end of that
// day (UTC): "as of 2018-01-01" includes what happened on the first.
func parseWindow(c echo.Context) (domain.Window, error) {
	var w domain.Window
	var bad []domain.FieldError
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"as_of", &w.AsOf}, {"known_at", &w.KnownAt}} {
		v := c.QueryParam(p.name)
		if v == "" {
			continue
		}
		t, err := parseBound(v)
		if err != nil {
			bad = append(bad, domain.FieldError{Field: p.name, Message: err.Error()})
			continue
		}
		*p.dst = t
	}
	if len(bad) > 0 {
		return w, badRequest("a time parameter is not valid", bad...)
	}
	return w, nil
}

func parseBound(v string) (time.Time, error) {
	if t, err := time.Parse(domain.DateLayout, v); err == nil {
		return checkYear(t.Add(24*time.Hour - time.Nanosecond))
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 time or a date YYYY-MM-DD")
	}
	return checkYear(t.UTC())
}

// logResponse is a page of the global log. NextAfter is the sequence of the
// page's last event (or the request's after when the page is empty): pass it
// as after to read on, or to poll for new events.
type logResponse struct {
	Events    []domain.Event `json:"events"`
	NextAfter uint64         `json:"next_after"`
}

// events is the global log: GET /v1/events, in stream order.
func (s *Server) events(c echo.Context) error {
	q := c.QueryParams()
	f := projections.LogFilter{Limit: DefaultLimit, Kind: domain.Kind(q.Get("kind"))}
	var bad []domain.FieldError
	if a := q.Get("after"); a != "" {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			bad = append(bad, domain.FieldError{Field: "after", Message: "must be a stream sequence (a whole number)"})
		}
		f.After = n
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			bad = append(bad, domain.FieldError{Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", MaxLimit)})
		}
		f.Limit = n
	}
	if f.Kind != "" && !f.Kind.Valid() {
		bad = append(bad, domain.FieldError{Field: "kind", Message: "must be agreement, policy, initiative or meeting"})
	}
	if t := q.Get("type"); t != "" {
		if f.Types = typesFor(t); f.Types == nil {
			bad = append(bad, domain.FieldError{Field: "type", Message: "must be an event type or <prefix>.* (e.g. agreement.*)"})
		}
	}
	if len(bad) > 0 {
		return badRequest("a query parameter is not valid", bad...)
	}
	events, err := s.proj.Log(c.Request().Context(), f)
	if err != nil {
		return err
	}
	resp := logResponse{Events: events, NextAfter: f.After}
	if len(events) > 0 {
		resp.NextAfter = events[len(events)-1].Sequence
	} else {
		resp.Events = []domain.Event{}
	}
	return c.JSON(http.StatusOK, resp)
}
