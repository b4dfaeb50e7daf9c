package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/iom-who/engagements/domain"
	"github.com/labstack/echo/v4"
)

// statusClientClosed is logged and counted when the client hung up first.
const statusClientClosed = 499

// ProblemBase prefixes every problem type URI; the README lists them.
const ProblemBase = "/problems/"

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail,omitempty"`
	Errors []domain.FieldError `json:"errors,omitempty"`
	// retryAfter, in seconds, becomes a Retry-After header.
	retryAfter string
	// authenticate becomes a WWW-Authenticate header.
	authenticate string
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

func problem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: ProblemBase + slug, Title: title, Status: status, Detail: detail}
}

// bodyTooLarge is the 413 problem for a body over limit bytes.
func bodyTooLarge(limit int64) *Problem {
	return problem(http.StatusRequestEntityTooLarge, "body-too-large", "Body too large",
		fmt.Sprintf("the request body is over the %d MiB limit", limit>>20))
}

func badRequest(detail string, fields ...domain.FieldError) *Problem {
	p := problem(http.StatusBadRequest, "malformed-request", "Malformed request", detail)
	p.Errors = fields
	return p
}

// toProblem maps any error to its problem document. Expected failures carry
// domain errors; anything else is a 500 whose detail hides internals.
func toProblem(err error) *Problem {
	var p *Problem
	var he *echo.HTTPError
	var malformed *domain.MalformedError
	var invalid *domain.ValidationError
	var transition *domain.TransitionError
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &malformed):
		return badRequest("the request does not have the expected shape", malformed.Fields...)
	case errors.As(err, &invalid):
		p := problem(http.StatusUnprocessableEntity, "validation-error", "Validation failed",
			"one or more fields break the rules")
		p.Errors = invalid.Fields
		return p
	case errors.As(err, &transition):
		return problem(http.StatusUnprocessableEntity, "invalid-transition", "Invalid transition", transition.Error())
	case errors.Is(err, domain.ErrUnknownEventType):
		p := problem(http.StatusUnprocessableEntity, "unknown-event-type", "Unknown event type", err.Error())
		p.Errors = []domain.FieldError{{Field: "type", Message: "must be one of the contract's event types"}}
		return p
	case errors.Is(err, domain.ErrInvalidID):
		return badRequest(err.Error(), domain.FieldError{Field: "id", Message: "must be a UUID"})
	case errors.Is(err, domain.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", "Not found", err.Error())
	case errors.Is(err, domain.ErrPreconditionFailed):
		return problem(http.StatusPreconditionFailed, "version-mismatch", "Version mismatch",
			"If-Match does not name the current version; read the engagement again and retry")
	case errors.Is(err, domain.ErrConflict):
		return problem(http.StatusConflict, "conflict", "Conflict",
			"other writers kept changing the engagement; retry the request")
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this, but logs and metrics
		// should not count it as a server error (nginx's 499 convention).
		return problem(statusClientClosed, "client-closed", "Client closed the request", "")
	case errors.Is(err, domain.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		p := problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable",
			"the event store cannot be reached right now; retry later")
		p.retryAfter = "2"
		return p
	case errors.As(err, &he):
		return httpErrorProblem(he)
	}
	return problem(http.StatusInternalServerError, "internal", "Internal error", "the request could not be completed")
}

func httpErrorProblem(he *echo.HTTPError) *Problem {
	detail, _ := he.Message.(string)
	switch he.Code {
	case http.StatusRequestEntityTooLarge:
		return bodyTooLarge(MaxBody)
	case http.StatusNotFound:
		return problem(he.Code, "not-found", "Not found", "no such route")
	case http.StatusMethodNotAllowed:
		return problem(he.Code, "method-not-allowed", "Method not allowed", detail)
	case http.StatusUnsupportedMediaType:
		return problem(he.Code, "unsupported-media-type", "Unsupported media type", detail)
	}
	if he.Code >= 400 && he.Code < 500 {
		return problem(he.Code, "bad-request", http.StatusText(he.Code), detail)
	}
	return problem(he.Code, "internal", http.StatusText(he.Code), "")
}

// errorHandler writes every error as application/problem+json.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := toProblem(err)
	switch {
	case p.Status == http.StatusServiceUnavailable:
		// Expected while catching up or while NATS is away; the client retries.
		s.log.Warn("request refused for now", "method", c.Request().Method, "path", c.Path(), "status", p.Status, "err", err)
	case p.Status >= 500:
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "status", p.Status, "err", err)
	}
	if p.retryAfter != "" {
		c.Response().Header().Set("Retry-After", p.retryAfter)
	}
	if p.authenticate != "" {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, p.authenticate)
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	if c.Request().Method == http.MethodHead {
		return
	}
	_ = jsonEncode(c.Response(), p)
}
