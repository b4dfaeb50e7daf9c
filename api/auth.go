package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/ratelimit"
	"github.com/labstack/echo/v4"
)

// TokenStore is what authentication needs from the token store.
type TokenStore interface {
	Create(ctx context.Context, name string, role domain.Role) (string, domain.TokenInfo, error)
	List() []domain.TokenInfo
	Revoke(ctx context.Context, name string) error
	Authenticate(token string) (domain.TokenInfo, bool)
}

// Option configures the Server.
type Option func(*Server)

// WithTokens turns on bearer-token authentication and roles. Without it the
// API is open and X-Actor names the actor (for tests and local experiments).
func WithTokens(ts TokenStore) Option { return func(s *Server) { s.tokens = ts } }

// WithRateLimit limits each token to perSecond requests with the given
// burst; perSecond 0 turns the limit off.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(s *Server) { s.limits = ratelimit.New(perSecond, burst, 0) }
}

const tokenKey = "token"

// allow authenticates the request and checks that its token's role is one of
// roles (admin may do everything). It is added to each route.
func (s *Server) allow(roles ...domain.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if s.tokens == nil {
				return next(c)
			}
			scheme, token, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			if !strings.EqualFold(scheme, "Bearer") || token == "" {
				return unauthorized("send Authorization: Bearer <token>")
			}
			info, ok := s.tokens.Authenticate(strings.TrimSpace(token))
			if !ok {
				return unauthorized("the token is not known or was revoked")
			}
			if !info.Role.Allowed(roles...) {
				return problem(http.StatusForbidden, "forbidden", "Forbidden",
					fmt.Sprintf("the %s role may not do this", info.Role))
			}
			if wait, ok := s.limits.Allow(info.Name, time.Now()); !ok {
				return rateLimited(s.limits, wait)
			}
			c.Set(tokenKey, info)
			return next(c)
		}
	}
}

func unauthorized(detail string) *Problem {
	p := problem(http.StatusUnauthorized, "unauthorized", "Unauthorized", detail)
	p.authenticate = `Bearer realm="engagements"`
	return p
}

// actor is the token's name when authentication is on.
func actor(c echo.Context) (string, bool) {
	info, ok := c.Get(tokenKey).(domain.TokenInfo)
	return info.Name, ok
}

// rateLimited answers a request of a token whose bucket is empty.
func rateLimited(l *ratelimit.Keyed, wait time.Duration) *Problem {
	p := problem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
		fmt.Sprintf("this token may make %g requests per second (burst %d)", l.PerSecond(), l.Burst()))
	p.retryAfter = ratelimit.RetryAfter(wait)
	return p
}
