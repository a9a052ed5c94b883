package server

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/labstack/echo/v4"
)

// Browser sessions (the web UI). The UI signs in once with an API token:
// POST /ui/session {"token"} checks the token like a Bearer header would and
// creates a server-side session (a row in the sessions table, so that
// several replicas share it). The browser gets only an opaque session id,
// in the cookie below (HttpOnly, SameSite=Strict, Secure over TLS), and a
// CSRF token in the response body. The UI sends that CSRF token in the
// X-CSRF-Token header of every POST, PUT, PATCH and DELETE; authenticate
// refuses an unsafe request that carries the cookie without it. The token
// itself never reaches the browser's storage or a URL.

// SessionCookie names the browser session cookie.
const SessionCookie = "hushflow_session"

// CSRFHeader carries the session's CSRF token on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

// errCSRF is the 403 of an unsafe request with a session cookie and a
// missing or wrong CSRF token.
var errCSRF = apperr.New(apperr.Forbidden, "csrf", "missing or wrong CSRF token")

func (s *Server) sessionRoutes() {
	g := s.echo.Group("/ui", s.noStore)
	g.POST("/session", s.signIn)
	g.GET("/session", s.getSession)
	g.DELETE("/session", s.signOut)
}

type signInRequest struct {
	Token string `json:"token"`
}

type sessionUser struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Admin bool   `json:"admin"`
}

type sessionResponse struct {
	User sessionUser `json:"user"`
	CSRF string      `json:"csrf"`
}

func userOf(p *auth.Principal) sessionUser {
	return sessionUser{ID: p.UserID, Name: p.Name, Admin: p.Admin}
}

// signIn is POST /ui/session: it exchanges an API token for a session.
// A cross-site sign-in (login CSRF) is refused by the Origin check; a
// cross-site form cannot send the JSON body either.
func (s *Server) signIn(c echo.Context) error {
	if !sameOrigin(c.Request()) {
		return errCSRF
	}
	var req signInRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	p, err := s.deps.Auth.Authenticate(ctx, strings.TrimSpace(req.Token))
	if err != nil {
		return err
	}
	id, csrf, err := s.deps.Auth.NewSession(ctx, p)
	if err != nil {
		return err
	}
	c.SetCookie(sessionCookie(c.Request(), id, auth.SessionTTL))
	return c.JSON(http.StatusOK, sessionResponse{User: userOf(p), CSRF: csrf})
}

// getSession is GET /ui/session: who the browser is signed in as, and the
// CSRF token (the UI keeps it in memory only, so it asks after a reload).
func (s *Server) getSession(c echo.Context) error {
	ck, err := c.Cookie(SessionCookie)
	if err != nil {
		return auth.ErrUnauthenticated
	}
	p, csrf, err := s.deps.Auth.SessionPrincipal(c.Request().Context(), ck.Value)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sessionResponse{User: userOf(p), CSRF: csrf})
}

// signOut is DELETE /ui/session. It needs the CSRF token like any other
// state-changing request; the cookie is cleared either way.
func (s *Server) signOut(c echo.Context) error {
	ck, err := c.Cookie(SessionCookie)
	if err != nil {
		return c.NoContent(http.StatusNoContent)
	}
	ctx := c.Request().Context()
	_, csrf, err := s.deps.Auth.SessionPrincipal(ctx, ck.Value)
	if err == nil {
		if !csrfMatches(c.Request(), csrf) {
			return errCSRF
		}
		if err := s.deps.Auth.DeleteSession(ctx, ck.Value); err != nil {
			return err
		}
	}
	c.SetCookie(sessionCookie(c.Request(), "", -1))
	return c.NoContent(http.StatusNoContent)
}

// authenticateSession authenticates a request by its session cookie; for
// unsafe methods it also requires the CSRF header.
func (s *Server) authenticateSession(c echo.Context, next echo.HandlerFunc, id string) error {
	r := c.Request()
	p, csrf, err := s.deps.Auth.SessionPrincipal(r.Context(), id)
	if err != nil {
		return err
	}
	if !safeMethod(r.Method) && !csrfMatches(r, csrf) {
		return errCSRF
	}
	c.Set(principalKey, p)
	c.Set(recheckKey, func(ctx context.Context) error {
		_, _, err := s.deps.Auth.SessionPrincipal(ctx, id)
		return err
	})
	return next(c)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func csrfMatches(r *http.Request, want string) bool {
	got := r.Header.Get(CSRFHeader)
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sameOrigin reports whether a request's Origin (when the browser sent
// one) is the server's own.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") != "cross-site"
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func sessionCookie(r *http.Request, value string, ttl time.Duration) *http.Cookie {
	ck := &http.Cookie{
		Name:     SessionCookie,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	}
	if ttl > 0 {
		ck.MaxAge = int(ttl / time.Second)
	} else {
		ck.MaxAge = -1
	}
	return ck
}
