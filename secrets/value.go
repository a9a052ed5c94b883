package secrets

import (
	"fmt"
	"log/slog"
)

// Redacted is what every printing of a Value shows.
const Redacted = "[REDACTED]"

// Value is a secret's plaintext. It prints, logs and marshals as
// [REDACTED]; the plaintext comes out only through Reveal, so that a value
// that reaches a log line or a JSON response by mistake shows nothing.
//
// The plaintext sits behind a pointer: fmt prints an unexported field of a
// struct by reflection, without calling its methods, and would otherwise
// show the string; behind a pointer it shows an address.
type Value struct{ p *string }

// NewValue wraps a plaintext.
func NewValue(s string) Value { return Value{p: &s} }

// Reveal returns the plaintext. Call it only where the value is used (an
// HTTP header being built, the run's redactor), never to print it.
func (v Value) Reveal() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

// IsZero reports whether v holds no value.
func (v Value) IsZero() bool { return v.Reveal() == "" }

// String implements fmt.Stringer.
func (Value) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (Value) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb (%s %v %q %x %d ...)
// prints [REDACTED].
func (Value) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler.
func (Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (used by other encoders
// and by map keys).
func (Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
