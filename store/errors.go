package store

import (
	"errors"

	"github.com/hushflow/hushflow/internal/apperr"
)

// Sentinel errors returned by every package that keeps data through the
// store. Callers test them with errors.Is; the API maps them to statuses in
// one place.
var (
	// ErrNotFound is returned when the asked row does not exist (or is not
	// visible to the caller). The API answers 404.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when a row with the same unique key already
	// exists. The API answers 409.
	ErrConflict = errors.New("already exists")
	// ErrUnavailable is returned when the database did not answer: the
	// connection was refused, closed or terminated, the server is starting
	// or shutting down, or it is out of connections. Nothing was changed
	// by the failed statement's transaction; the caller may retry later.
	// The API answers 503 with Retry-After; a run's executor retries, then
	// releases the run to be resumed.
	ErrUnavailable = errors.New("database unavailable")
)

// NotFound returns an error wrapping ErrNotFound that names what was not
// found ("flow", "run", ...) and, when it looks like a name, which one.
// Every package reports a missing thing with it, so that the API words
// them alike.
func NotFound(what, name string) error { return &notFoundError{what: what, name: name} }

type notFoundError struct{ what, name string }

func (e *notFoundError) Error() string { return e.what + " " + apperr.Echo(e.name) + " not found" }
func (e *notFoundError) Unwrap() error { return ErrNotFound }

// Conflict returns an error wrapping ErrConflict for a name that already
// exists: `what "name" already exists[ in where][; hint]`. Every package
// reports a taken name with it, so that the API words them alike.
func Conflict(what, name, where, hint string) error {
	return &conflictError{what: what, name: name, where: where, hint: hint}
}

type conflictError struct{ what, name, where, hint string }

func (e *conflictError) Error() string {
	msg := e.what + " " + apperr.Echo(e.name) + " already exists"
	if e.where != "" {
		msg += " in " + e.where
	}
	if e.hint != "" {
		msg += "; " + e.hint
	}
	return msg
}
func (e *conflictError) Unwrap() error { return ErrConflict }
