package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/iom-who/engagements/domain"
	"github.com/labstack/echo/v4"
)

type tokenRequest struct {
	Name string      `json:"name"`
	Role domain.Role `json:"role"`
}

type tokenCreated struct {
	domain.TokenInfo
	// Token is the secret; it is shown only in this response.
	Token string `json:"token"`
}

// createToken: POST /v1/tokens (admin).
func (s *Server) createToken(c echo.Context) error {
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	m, err := fields(body, "name", "role")
	if err != nil {
		return err
	}
	var req tokenRequest
	var missing []domain.FieldError
	for _, f := range []struct {
		name string
		dst  *string
	}{{"name", &req.Name}, {"role", (*string)(&req.Role)}} {
		v, ok, err := stringField(m, f.name)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, domain.FieldError{Field: f.name, Message: "is required"})
		}
		*f.dst = v
	}
	if len(missing) > 0 {
		return &domain.ValidationError{Fields: missing}
	}
	token, info, err := s.tokens.Create(c.Request().Context(), req.Name, req.Role)
	if err != nil {
		if errors.Is(err, domain.ErrExists) {
			return problem(http.StatusConflict, "conflict", "Conflict", fmt.Sprintf("a token named %q exists; revoke it first", req.Name))
		}
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, tokenCreated{TokenInfo: info, Token: token})
}

// listTokens: GET /v1/tokens (admin) — names, roles, creation times; never secrets.
func (s *Server) listTokens(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"items": s.tokens.List()})
}

// revokeToken: DELETE /v1/tokens/{name} (admin). The last admin token cannot
// be revoked, so the service never locks everyone out.
func (s *Server) revokeToken(c echo.Context) error {
	name := c.Param("name")
	if err := domain.CheckTokenName(name); err != nil {
		return badRequest("not a token name", domain.FieldError{Field: "name", Message: "must be a token name"})
	}
	var target *domain.TokenInfo
	admins := 0
	for _, t := range s.tokens.List() {
		if t.Role == domain.RoleAdmin {
			admins++
		}
		if t.Name == name {
			target = &t
		}
	}
	if target == nil {
		return fmt.Errorf("token %q: %w", name, domain.ErrNotFound)
	}
	if target.Role == domain.RoleAdmin && admins == 1 {
		return problem(http.StatusConflict, "conflict", "Conflict", "this is the last admin token; create another admin token first")
	}
	if err := s.tokens.Revoke(c.Request().Context(), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
