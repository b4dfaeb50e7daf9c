package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// MaxWithinDays is the furthest GET /v1/upcoming looks ahead (ten years).
const MaxWithinDays = 3650

type upcomingResponse struct {
	Items      []projections.Upcoming `json:"items"`
	NextCursor *string                `json:"next_cursor"`
}

// parseDays reads a number of whole days: "90d" or "90", 1 to max.
func parseDays(s string, max int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
	if err != nil || n < 1 || n > max || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("must be whole days from 1 to %d, e.g. 90d", max)
	}
	return n, nil
}

// upcoming: GET /v1/upcoming — the dated items due within a window, overdue
// first, then by date, from the projection's index of deadlines.
func (s *Server) upcoming(c echo.Context) error {
	qp := c.QueryParams()
	q := projections.UpcomingQuery{Now: s.now(), Within: 90, Limit: DefaultLimit, Party: qp.Get("party"),
		Owner: qp.Get("owner"), After: qp.Get("cursor")}
	var bad []domain.FieldError
	if w := qp.Get("within"); w != "" {
		n, err := parseDays(w, MaxWithinDays)
		if err != nil {
			bad = append(bad, domain.FieldError{Field: "within", Message: err.Error()})
		}
		q.Within = n
	}
	q.Kind = queryKind(qp.Get("kind"), &bad)
	if t := qp.Get("type"); t != "" {
		switch q.Type = domain.DeadlineKind(t); q.Type {
		case domain.DeadlineExpiry, domain.DeadlineNotice, domain.DeadlineAction, domain.DeadlineMeeting:
		default:
			bad = append(bad, domain.FieldError{Field: "type", Message: "must be expiry, notice, action or meeting"})
		}
	}
	q.Limit = queryLimit(qp.Get("limit"), q.Limit, &bad)
	for _, p := range []struct{ name, v string }{{"party", q.Party}, {"owner", q.Owner}, {"cursor", q.After}} {
		if len(p.v) > maxQuery {
			bad = append(bad, domain.FieldError{Field: p.name, Message: fmt.Sprintf("must be at most %d bytes", maxQuery)})
		}
	}
	if len(bad) > 0 {
		return badRequest("a query parameter is not valid", bad...)
	}
	items, next, err := s.proj.Upcoming(q)
	if errors.Is(err, projections.ErrBadCursor) {
		return badRequest("a query parameter is not valid", domain.FieldError{Field: "cursor", Message: "is not a cursor this API returned"})
	}
	if err != nil {
		return err
	}
	resp := upcomingResponse{Items: items}
	if resp.Items == nil {
		resp.Items = []projections.Upcoming{}
	}
	if next != "" {
		resp.NextCursor = &next
	}
	return c.JSON(http.StatusOK, resp)
}
