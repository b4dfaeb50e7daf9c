package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/iom-who/engagements/domain"
)

// SchemaContentType is the media type of the event data schemas.
const SchemaContentType = "application/schema+json"

// dataSchema serves the JSON Schema of one version of one event type's
// data (GET /schemas/{type}/v{n} and /v1/schemas/{type}/v{n}): what an
// event's dataschema names. Schemas are not secret: no token is needed.
func (s *Server) dataSchema(c echo.Context) error {
	typ, version := c.Param("type"), c.Param("version")
	n, err := strconv.Atoi(strings.TrimPrefix(version, "v"))
	if !strings.HasPrefix(version, "v") || err != nil || strconv.Itoa(n) != version[1:] {
		return noSchema()
	}
	schema, ok := domain.DataJSONSchema(domain.EventType(typ), n)
	if !ok {
		return noSchema()
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, SchemaContentType, schema)
}

// noSchema answers an unknown event type or schema version.
func noSchema() *Problem {
	return problem(http.StatusNotFound, "not-found", "Not found",
		"no such data schema: the event types and their versions are in GET /openapi.yaml")
}
