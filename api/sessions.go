package api

import (
	"context"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/iom-who/engagements/domain"
	"github.com/labstack/echo/v4"
)

// SessionEnder ends every web session of one identity, on every instance
// (package sessions, over the shared session bucket).
type SessionEnder interface {
	EndIdentity(ctx context.Context, identity string) (int, error)
}

// WithSessions serves DELETE /v1/sessions?identity=: an admin signs a
// person (a directory identity, or a token's name) out of the web pages on
// every instance at once.
func WithSessions(e SessionEnder) Option { return func(s *Server) { s.sessions = e } }

// maxIdentity bounds the identity an admin names: an e-mail address is at
// most 254 bytes, a token name far less.
const maxIdentity = 320

// sessionsEnded is DELETE /v1/sessions's answer.
type sessionsEnded struct {
	Identity string `json:"identity"`
	Ended    int    `json:"ended"`
}

// endSessions: DELETE /v1/sessions?identity=NAME (admin).
func (s *Server) endSessions(c echo.Context) error {
	identity := c.QueryParam("identity")
	if identity == "" || len(identity) > maxIdentity || !utf8.ValidString(identity) ||
		strings.IndexFunc(identity, unicode.IsControl) >= 0 || strings.TrimSpace(identity) != identity {
		return badRequest("identity must name whose sessions to end",
			domain.FieldError{Field: "identity", Message: "required: an e-mail address or a token name, at most 320 bytes, no control characters"})
	}
	n, err := s.sessions.EndIdentity(c.Request().Context(), identity)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("web sessions ended by an admin", "identity", identity, "ended", n)
	}
	return c.JSON(http.StatusOK, sessionsEnded{Identity: identity, Ended: n})
}
