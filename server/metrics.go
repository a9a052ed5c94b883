package server

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/labstack/echo/v4"
)

// metricsRoutes mounts GET /metrics when the server has metrics. Like
// /healthz it needs no token by default: its labels are route templates,
// methods, statuses, block types and run statuses, never an id, a name or
// a value (docs/metrics.md). With Deps.MetricsToken set
// (HUSHFLOW_METRICS_TOKEN) it requires `Authorization: Bearer <token>`.
func (s *Server) metricsRoutes() {
	if s.deps.Metrics == nil {
		return
	}
	h := echo.WrapHandler(s.deps.Metrics.Handler())
	s.echo.GET("/metrics", func(c echo.Context) error {
		if want := s.deps.MetricsToken; want != "" {
			scheme, got, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(want)) != 1 {
				return apperr.New(apperr.Unauthenticated, "unauthenticated", "/metrics needs Authorization: Bearer <HUSHFLOW_METRICS_TOKEN>")
			}
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return h(c)
	})
}

// httpMetrics records each request's latency by method, route template
// and status. It runs outside accessLog, which has already turned an
// error into the response, so the status is final. A request that matched
// no route is recorded as route "unmatched" (never the raw path).
func (s *Server) httpMetrics(next echo.HandlerFunc) echo.HandlerFunc {
	if s.deps.Metrics == nil {
		return next
	}
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == "" || c.Response().Status == http.StatusNotFound && strings.HasSuffix(route, "*") {
			route = "unmatched"
		}
		s.deps.Metrics.HTTPRequest(c.Request().Method, route, c.Response().Status, time.Since(start))
		return err
	}
}
