// Package server is Hushflow's HTTP API (echo): routes, authentication,
// request limits and the one place where errors become HTTP responses.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hushflow/hushflow/apps"
	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/internal/buildinfo"
	"github.com/hushflow/hushflow/internal/cores"
	"github.com/hushflow/hushflow/internal/doctor"
	"github.com/hushflow/hushflow/metrics"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// MaxBodyBytes is the largest request body the API accepts (a 1 MiB file
// secret, base64-encoded inside JSON, fits).
const MaxBodyBytes = 1536 << 10

// Deps are the services the API serves.
type Deps struct {
	DB       *store.DB
	Auth     *auth.Service
	Projects *projects.Service
	Flows    *flows.Service
	// Secrets is the secrets store; nil answers 503 on the secrets routes.
	Secrets *secrets.Store
	// Apps keeps app installations; nil answers 503 on their routes.
	Apps   *apps.Service
	Logger *slog.Logger
	// Metrics, when set, is served on GET /metrics and records API
	// latency by route.
	Metrics *metrics.Metrics
	// MetricsToken, when set, is required as a bearer token on /metrics
	// (HUSHFLOW_METRICS_TOKEN).
	MetricsToken string
	// RateLimit is the sustained number of API requests per second a
	// token may make (burst: twice as many); 0 means DefaultRateLimit,
	// a negative value turns the limit off.
	RateLimit float64
	// Doctor runs self-tests (POST /projects/{p}/doctor/redaction); nil
	// answers 503 there.
	Doctor *doctor.Doctor
	// ProbesOnly serves /healthz, /readyz and /metrics and nothing else
	// (a worker-only replica: hushflow serve --role worker).
	ProbesOnly bool
	// Cores, when set, counts the requests in flight (a request that
	// waits, an event stream or ?wait=, stops counting when it starts
	// waiting).
	Cores *cores.Governor
}

// DefaultRateLimit is the per-token API rate limit, in requests per second.
const DefaultRateLimit = 100

// Server is the API's http.Handler.
type Server struct {
	deps Deps
	// knownProjects remembers project names found to exist.
	knownProjects sync.Map
	log           *slog.Logger
	echo          *echo.Echo
	// v1 is the authenticated /api/v1 group; packages add routes to it.
	v1 *echo.Group
	// stopping is closed by BeginShutdown.
	stopping     chan struct{}
	stoppingOnce sync.Once
	// recheckEvery is how often a live stream checks that its credential
	// still authenticates.
	recheckEvery time.Duration
}

// New builds the API.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{deps: d, log: d.Logger, echo: e, stopping: make(chan struct{}), recheckEvery: time.Second}
	e.HTTPErrorHandler = s.handleError
	e.JSONSerializer = jsonSerializer{}
	e.Use(requestID)
	if s.deps.Cores != nil {
		e.Use(s.occupy)
	}
	e.Use(s.httpMetrics)
	e.Use(s.recoverPanics)
	e.Use(s.accessLog)
	e.Use(secureHeaders)
	e.Use(middleware.BodyLimit(bodyLimitString(MaxBodyBytes)))

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	s.metricsRoutes()
	if d.ProbesOnly {
		e.Any("/*", func(c echo.Context) error {
			return echo.NewHTTPError(http.StatusNotFound, "this replica runs with --role worker: it serves only /healthz, /readyz and /metrics")
		})
		return s
	}

	v1 := e.Group("/api/v1", s.noStore, s.authenticate, s.rateLimit())
	s.v1 = v1
	v1.POST("/projects", s.createProject)
	v1.GET("/projects", s.listProjects)
	v1.GET("/projects/:project", s.getProject)
	v1.DELETE("/projects/:project", s.deleteProject)
	v1.GET("/projects/:project/members", s.listMembers)
	v1.PUT("/projects/:project/members/:user", s.setMember)
	v1.DELETE("/projects/:project/members/:user", s.deleteMember)
	v1.GET("/environments", s.listEnvironments)
	v1.POST("/environments", s.createEnvironment)
	v1.PUT("/environments/:name", s.updateEnvironment)
	v1.POST("/tokens", s.createOwnToken)
	v1.GET("/tokens", s.listOwnTokens)
	v1.DELETE("/tokens/:id", s.revokeToken)
	v1.POST("/users", s.createUser)
	v1.GET("/users", s.listUsers)
	v1.POST("/users/:id/tokens", s.createUserToken)
	v1.GET("/whoami", s.whoami)
	v1.GET("/version", s.version)
	v1.GET("/openapi.json", s.openAPI)
	s.flowRoutes()
	s.sessionRoutes()
	s.secretRoutes()
	s.installationRoutes()
	v1.GET("/projects/:project/secret-usage", s.secretUsage)
	v1.GET("/projects/:project/installation-usage", s.installationUsage)
	v1.POST("/projects/:project/doctor/redaction", s.doctorRedaction)
	// Unknown /api/v1 paths are 404 for authenticated callers and 401
	// otherwise (the group's middleware runs first); a path served only
	// with other methods is 405.
	v1.Any("/*", s.noRoute)
	return s
}

// noRoute answers a request to /api/v1 that no route serves with its
// method: 405 with an Allow header naming the methods that do serve the
// path, or 404 when none does. (The catch-all route, there for the 401 and
// the JSON 404, would otherwise hide echo's own 405.)
func (s *Server) noRoute(c echo.Context) error {
	path := echo.GetPath(c.Request())
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := s.echo.NewContext(c.Request(), nil)
		s.echo.Router().Find(m, path, probe)
		if probe.Path() != "" && probe.Path() != c.Path() {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return echo.ErrNotFound
	}
	c.Response().Header().Set(echo.HeaderAllow, strings.Join(allow, ", "))
	return echo.NewHTTPError(http.StatusMethodNotAllowed)
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Echo exposes the router so that the composition root can mount other
// parts (the web UI, webhooks) on the same server.
func (s *Server) Echo() *echo.Echo { return s.echo }

// V1 is the authenticated API group.
func (s *Server) V1() *echo.Group { return s.v1 }

// HTTPServer wraps the handler in an http.Server with timeouts that bound
// slow clients. WriteTimeout stays 0 because event streams are long-lived;
// handlers bound their own work.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// version answers the server's build. It is behind authentication, unlike
// /healthz: a version tells whoever asks which known bugs apply.
func (s *Server) version(c echo.Context) error {
	return c.JSON(http.StatusOK, buildinfo.Get())
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// BeginShutdown says that this replica is stopping: /readyz answers 503
// (load balancers stop sending it requests) and the requests that wait
// (?wait=, followed event streams) end now, so that their clients go
// on against another replica. The server keeps serving until it is shut
// down.
func (s *Server) BeginShutdown() { s.stoppingOnce.Do(func() { close(s.stopping) }) }

// untilShutdown returns a context that ends with ctx or at BeginShutdown.
func (s *Server) untilShutdown(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// errCredentialGone ends a stream whose token was revoked or expired, or
// whose session ended.
var errCredentialGone = errors.New("the credential of this stream was revoked or expired")

// whileAuthenticated returns ctx canceled, with cause errCredentialGone,
// once the request's credential no longer authenticates; it is checked
// every recheckEvery. A database that does not answer ends nothing.
func (s *Server) whileAuthenticated(ctx context.Context, c echo.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	recheck, _ := c.Get(recheckKey).(func(context.Context) error)
	if recheck != nil {
		go func() {
			t := time.NewTicker(s.recheckEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if err := recheck(ctx); err != nil && errors.Is(err, auth.ErrUnauthenticated) {
					cancel(errCredentialGone)
					return
				}
			}
		}()
	}
	return ctx, func() { cancel(nil) }
}

func (s *Server) readyz(c echo.Context) error {
	select {
	case <-s.stopping:
		return c.JSON(http.StatusServiceUnavailable, errorBody("unavailable", "this replica is shutting down", ""))
	default:
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	if err := s.deps.DB.Ping(ctx); err != nil {
		s.log.Warn("readiness: database does not answer", "err", err)
		return c.JSON(http.StatusServiceUnavailable, errorBody("unavailable", "database does not answer", ""))
	}
	if s.deps.Flows != nil {
		if err := s.deps.Flows.Healthy(); err != nil {
			s.log.Warn("readiness: run workers", "err", err)
			return c.JSON(http.StatusServiceUnavailable, errorBody("unavailable", err.Error(), ""))
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready", "database": string(s.deps.DB.Dialect)})
}
