package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/internal/doctor"
	"github.com/labstack/echo/v4"
)

type doctorRequest struct {
	Environment string `json:"environment"`
}

// doctorRedaction runs the redaction self-test in a project and
// environment (project admins) and answers its report: 200 whether or
// not something leaked (ok says), an error when the test could not run.
func (s *Server) doctorRedaction(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Admin); err != nil {
		return err
	}
	if s.deps.Doctor == nil {
		return apperr.New(apperr.Unavailable, "unavailable", "this server does not run self-tests")
	}
	var req doctorRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Environment == "" {
		return apperr.Invalidf("invalid_environment", "environment is required (for example development, staging or production)")
	}
	if _, err := s.deps.Projects.GetEnvironment(c.Request().Context(), req.Environment); err != nil {
		return err
	}
	rep, err := s.deps.Doctor.Redaction(c.Request().Context(), doctor.Request{Project: project, Environment: req.Environment,
		Actor: principal(c).Name, API: s.asCaller(c)})
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusOK, project, rep)
}

// asCaller returns a function that answers a GET of the API as the
// caller of c would get it: the same routes, middleware and credential
// (its token or session), served in this process.
func (s *Server) asCaller(c echo.Context) func(ctx context.Context, path string) ([]byte, error) {
	orig := c.Request()
	return func(ctx context.Context, path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		for _, h := range []string{"Authorization", "Cookie", "User-Agent"} {
			if v := orig.Header.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
		req.RemoteAddr = orig.RemoteAddr
		w := &bufferWriter{header: http.Header{}}
		s.echo.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			return nil, fmt.Errorf("GET %s answered %d: %s", strings.SplitN(path, "?", 2)[0], w.status, bytes.TrimSpace(w.body.Bytes()))
		}
		return w.body.Bytes(), nil
	}
}

// bufferWriter is an http.ResponseWriter (and Flusher, for the live
// stream) that keeps the answer in memory.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferWriter) Header() http.Header { return w.header }
func (w *bufferWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *bufferWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}
func (w *bufferWriter) Flush() {}
