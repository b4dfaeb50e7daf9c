package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDoc is the OpenAPI 3.1 document of the HTTP API, served at
// GET /openapi.yaml. Tests hold it to the registered routes and to real
// requests and responses, so it cannot drift from the server.
//
//go:embed openapi.yaml
var openAPIDoc []byte

// openAPI serves the document, open like /healthz.
func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", openAPIDoc)
}

// Routes lists the routes the server answers, with echo's path syntax
// (":id"); the OpenAPI test compares them with the document.
func (s *Server) Routes() []echo.Route {
	routes := s.echo.Routes()
	out := make([]echo.Route, len(routes))
	for i, r := range routes {
		out[i] = *r
	}
	return out
}
