package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/store"
	"github.com/labstack/echo/v4"
)

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
	// Problems lists every problem of an invalid flow definition.
	Problems []flows.Problem `json:"problems,omitempty"`
}

type errorResponse struct {
	Error errorDetail `json:"error"`
}

func errorBody(code, msg, requestID string) errorResponse {
	return errorResponse{Error: errorDetail{Code: code, Message: msg, RequestID: requestID}}
}

// handleError is the one place where errors become HTTP responses: typed
// errors map to a status and their message; anything else is a 500 with a
// generic message and the request id, and the cause is logged.
// statusClientClosed is the status of a request whose client went away
// before its answer (nginx's 499; only the access log sees it).
const statusClientClosed = 499

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	rid := c.Response().Header().Get(echo.HeaderXRequestID)
	status, code, msg := classify(err)
	var inv *flows.InvalidError
	if errors.As(err, &inv) {
		body := errorBody("invalid_flow", s.maskMessage(c, inv.Error()), rid)
		body.Error.Problems = inv.Problems
		if g, err := s.masked(c, c.Param("project"), body); err == nil {
			_ = c.JSON(http.StatusBadRequest, g)
			return
		}
		_ = c.JSON(http.StatusBadRequest, errorBody("invalid_flow", "the flow definition is invalid (its details could not be checked for secret values; retry)", rid))
		return
	}
	switch {
	case status == http.StatusTooManyRequests && c.Response().Header().Get("Retry-After") == "":
		// A flow at its limit of open runs (too_many_runs): when one ends
		// is not known; a second is a fair first wait.
		c.Response().Header().Set("Retry-After", "1")
	case status == http.StatusServiceUnavailable:
		c.Response().Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		if code == "database_unavailable" {
			s.log.Warn("request refused: database unavailable", "request_id", rid, "method", c.Request().Method,
				"path", c.Request().URL.Path, "err", err)
		}
	case status >= 500 && c.Request().Context().Err() != nil && errors.Is(err, context.Canceled):
		// The client went away (closed the connection, timed out): no
		// fault of the server's, and nobody reads the answer.
		s.log.Info("request canceled by its client", "request_id", rid, "method", c.Request().Method,
			"path", c.Request().URL.Path)
		status, code, msg = statusClientClosed, "client_closed_request", "the client closed the request"
	case status >= 500:
		s.log.Error("request failed", "request_id", rid, "method", c.Request().Method,
			"path", c.Request().URL.Path, "err", err)
		msg = "internal error; quote request id " + rid
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if status >= 400 && status < 500 && status != http.StatusUnauthorized && status != http.StatusTooManyRequests {
		msg = s.maskMessage(c, msg) // it may quote a field the caller sent
	}
	_ = c.JSON(status, errorBody(code, msg, rid))
}

// RetryAfterSeconds is the Retry-After of a 503: a database restart or
// failover usually takes a few seconds.
const RetryAfterSeconds = 5

func classify(err error) (status int, code, msg string) {
	if store.IsUnavailable(err) {
		// Nothing was half done: the request's writes were not committed.
		return http.StatusServiceUnavailable, "database_unavailable",
			"the database is not answering (it may be restarting); nothing was changed: retry in a few seconds"
	}
	if e, ok := apperr.As(err); ok {
		switch e.Kind {
		case apperr.Invalid:
			return http.StatusBadRequest, e.Code, e.Message
		case apperr.TooLarge:
			return http.StatusRequestEntityTooLarge, e.Code, e.Message
		case apperr.Unauthenticated:
			return http.StatusUnauthorized, e.Code, e.Message
		case apperr.Forbidden:
			return http.StatusForbidden, e.Code, e.Message
		case apperr.Unavailable:
			return http.StatusServiceUnavailable, e.Code, e.Message
		case apperr.RateLimited:
			return http.StatusTooManyRequests, e.Code, e.Message
		case apperr.Conflict:
			return http.StatusConflict, e.Code, e.Message
		}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not_found", strings.TrimSuffix(err.Error(), ": "+store.ErrNotFound.Error())
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, "conflict", err.Error()
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusRequestEntityTooLarge:
			return he.Code, "too_large", fmt.Sprintf("request body exceeds the limit of %s", humanBytes(MaxBodyBytes))
		case http.StatusNotFound:
			return he.Code, "not_found", "no such route"
		case http.StatusMethodNotAllowed:
			return he.Code, "method_not_allowed", "this route does not take that method; the Allow header lists those it takes"
		case http.StatusUnsupportedMediaType:
			return he.Code, "unsupported_media_type", "send a JSON body with Content-Type: application/json"
		case http.StatusTooManyRequests:
			return he.Code, "rate_limited", "too many requests; retry later"
		}
		if he.Code < 500 {
			return he.Code, "bad_request", fmt.Sprint(he.Message)
		}
	}
	return http.StatusInternalServerError, "internal", ""
}

func humanBytes(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func bodyLimitString(n int) string { return fmt.Sprintf("%dB", n) }

// notFound is the 404 for a named thing, worded the same whether it does
// not exist or the caller may not see it.
func notFound(what, name string) error {
	return store.NotFound(what, name)
}

// errNotFoundSentinel is what authorize's 404 unwraps to.
var errNotFoundSentinel = store.ErrNotFound
