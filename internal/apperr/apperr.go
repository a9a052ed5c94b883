// Package apperr holds the error kinds that cross package boundaries on
// their way to a user: invalid input, too large, forbidden. Packages return
// them with a message that says what to fix; the API maps each kind to an
// HTTP status in one place (server/errors.go), the CLI prints the message.
package apperr

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the API.
type Kind int

const (
	// Invalid input: the message says which field and which rule (400).
	Invalid Kind = iota + 1
	// TooLarge input: the message says the limit (413).
	TooLarge
	// Unauthenticated: no or bad credentials (401).
	Unauthenticated
	// Forbidden: authenticated but not allowed (403). Use NotFound instead
	// where existence itself must not be revealed.
	Forbidden
	// Unavailable: a dependency (database, key) is not usable now (503).
	Unavailable
	// RateLimited: too many requests; retry later (429).
	RateLimited
	// Conflict: the request conflicts with the state of what it names
	// (409); the message says what to change first.
	Conflict
)

// Error is an error with a kind, a stable machine-readable code and a
// message for people.
type Error struct {
	Kind    Kind
	Code    string // e.g. "invalid_name"
	Message string
	Err     error // optional cause, not shown to API callers
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error of kind k.
func New(k Kind, code, format string, args ...any) error {
	return &Error{Kind: k, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalidf returns an Invalid error.
func Invalidf(code, format string, args ...any) error {
	return New(Invalid, code, format, args...)
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Echo returns s quoted, for an error message, when it looks like a name
// (1 to 40 letters, digits and _ - . : * / @), and a placeholder otherwise.
// Errors never show back a long or unusual request value: it could be a
// secret pasted into the wrong field, and error bodies are shown and
// logged in many places.
func Echo(s string) string {
	if len(s) == 0 {
		return `""`
	}
	if len(s) > 40 {
		return "(the given value)"
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || r == '-' || r == '.' || r == ':' || r == '*' || r == '/' || r == '@'
		if !ok {
			return "(the given value)"
		}
	}
	return `"` + s + `"`
}
