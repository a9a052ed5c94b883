package store

import "errors"

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
)
