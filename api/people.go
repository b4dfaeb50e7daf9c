package api

import (
	"fmt"
	"net/http"

	"github.com/iom-who/engagements/domain"
	"github.com/labstack/echo/v4"
)

// findPerson answers GET /v1/people?email=… or ?name=…: the id of the data
// subject a name or e-mail identifies, and whether its key is erased. The
// lookup is by a keyed hash: nothing is stored under the name or e-mail.
func (s *Server) findPerson(c echo.Context) error {
	q := c.QueryParams()
	email, name := q.Get("email"), q.Get("name")
	who, field := email, "email"
	switch {
	case email != "" && name == "":
	case name != "" && email == "":
		who, field = name, "name"
	default:
		return badRequest("give one of email and name", domain.FieldError{Field: "email",
			Message: "exactly one of email and name is required"})
	}
	if len(who) > domain.MaxShortText*2 {
		return badRequest("too long", domain.FieldError{Field: field, Message: "is too long"})
	}
	p, err := s.svc.FindPerson(c.Request().Context(), who)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// getPerson answers GET /v1/people/{id}.
func (s *Server) getPerson(c echo.Context) error {
	id := c.Param("id")
	if !domain.CheckPersonID(id) {
		return fmt.Errorf("person: %w", domain.ErrNotFound)
	}
	p, err := s.svc.Person(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// erasePerson answers POST /v1/people/{id}/erase: the subject's key is
// destroyed and each engagement concerned records
// engagement.personal_data_erased. 404 for an unknown subject, 409 when it
// is erased already.
func (s *Server) erasePerson(c echo.Context) error {
	id := c.Param("id")
	if !domain.CheckPersonID(id) {
		return fmt.Errorf("person: %w", domain.ErrNotFound)
	}
	who, ok := actor(c)
	if !ok {
		who = c.Request().Header.Get("X-Actor")
		if who == "" || !token(who, domain.MaxEntry) {
			who = "anonymous"
		}
	}
	e, err := s.svc.Erase(c.Request().Context(), id, who)
	if err != nil {
		return err
	}
	out := erasureAnswer{Person: e.Person, Recorded: make([]recordedErasure, len(e.Engagements))}
	for i, r := range e.Engagements {
		out.Recorded[i] = recordedErasure{EngagementID: r.EngagementID, EventID: r.EventID, Sequence: r.Sequence, Version: r.Version}
	}
	return c.JSON(http.StatusOK, out)
}

// erasureAnswer is the answer to POST /v1/people/{id}/erase.
type erasureAnswer struct {
	Person   domain.Person     `json:"person"`
	Recorded []recordedErasure `json:"recorded"`
}

// recordedErasure is one engagement.personal_data_erased event recorded.
type recordedErasure struct {
	EngagementID string `json:"engagement_id"`
	EventID      string `json:"event_id"`
	Sequence     uint64 `json:"sequence"`
	Version      int    `json:"version"`
}
