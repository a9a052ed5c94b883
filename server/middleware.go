package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

const principalKey = "hushflow.principal"

// recheckKey holds a func(ctx) error that authenticates the request's
// credential again: long-lived responses (event streams) end when it
// fails (a revoked or expired token, a session signed out).
const recheckKey = "hushflow.recheck"

// authenticate requires `Authorization: Bearer <token>` or, from the web
// UI, the session cookie. Tokens in the
// query string are refused: URLs end up in logs and browser history.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		q := r.URL.Query()
		if q.Has("token") || q.Has("access_token") {
			return apperr.New(apperr.Unauthenticated, "token_in_url",
				"tokens are not accepted in the URL; send Authorization: Bearer <token>")
		}
		h := r.Header.Get(echo.HeaderAuthorization)
		if h == "" {
			// The web UI: a session cookie, with CSRF checks (session.go).
			if ck, err := r.Cookie(SessionCookie); err == nil {
				return s.authenticateSession(c, next, ck.Value)
			}
		}
		scheme, raw, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return auth.ErrUnauthenticated
		}
		raw = strings.TrimSpace(raw)
		p, err := s.deps.Auth.Authenticate(r.Context(), raw)
		if err != nil {
			return err
		}
		c.Set(principalKey, p)
		c.Set(recheckKey, func(ctx context.Context) error {
			_, err := s.deps.Auth.Authenticate(ctx, raw)
			return err
		})
		return next(c)
	}
}

// principal returns the authenticated caller; routes behind authenticate
// always have one.
func principal(c echo.Context) *auth.Principal {
	p, _ := c.Get(principalKey).(*auth.Principal)
	return p
}

func requireAdmin(c echo.Context) error {
	if p := principal(c); p == nil || !p.Admin {
		return apperr.New(apperr.Forbidden, "forbidden", "this action needs an organization admin")
	}
	return nil
}

// noStore keeps API responses out of caches.
func (s *Server) noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return next(c)
	}
}

// accessLog logs one line per request: method, path without the query
// string (it may hold tokens), status, duration, request id.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		r := c.Request()
		s.log.Info("http", "method", r.Method, "path", r.URL.Path,
			"status", c.Response().Status, "duration_ms", time.Since(start).Milliseconds(),
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		return nil
	}
}

// recoverPanics turns a panic into a 500 with no internals in the body;
// the stack goes to the (redacting) log.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in request", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %v", v)
			}
		}()
		return next(c)
	}
}

// requestID gives every request an id of its own (X-Request-Id on the
// answer, request_id in its log line and error body): never one the
// client sent, which would be shown back and logged as the caller chose
// (a secret value pasted there, say).
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderXRequestID, newRequestID())
		return next(c)
	}
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// secureHeaders sets headers every response should carry.
func secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		return next(c)
	}
}

// rateLimit limits each token (or browser session's user) to
// Deps.RateLimit requests per second with bursts of twice that; over it
// the API answers 429 with a Retry-After header.
func (s *Server) rateLimit() echo.MiddlewareFunc {
	r := s.deps.RateLimit
	if r == 0 {
		r = DefaultRateLimit
	}
	if r < 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	store := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate: rate.Limit(r), Burst: int(2 * r), ExpiresIn: 3 * time.Minute})
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: store,
		IdentifierExtractor: func(c echo.Context) (string, error) {
			p := principal(c)
			if p == nil {
				return c.RealIP(), nil
			}
			if p.TokenID != "" {
				return "token:" + p.TokenID, nil
			}
			return "user:" + p.UserID, nil
		},
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			c.Response().Header().Set("Retry-After", "1")
			return apperr.New(apperr.RateLimited, "rate_limited",
				"rate limit of %g requests per second per token exceeded; retry after a second", r)
		},
		ErrorHandler: func(c echo.Context, err error) error { return err },
	})
}
