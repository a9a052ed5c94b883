package server

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// OpenAPI is the OpenAPI 3.1 document of the HTTP API (server/openapi.json),
// served at GET /api/v1/openapi.json. TestOpenAPICoversRoutes keeps it in
// step with the routes the server registers.
//
//go:embed openapi.json
var OpenAPI []byte

// openAPI is GET /api/v1/openapi.json: like every /api/v1 route it needs a
// token.
func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, OpenAPI)
}
