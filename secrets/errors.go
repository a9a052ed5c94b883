package secrets

import (
	"errors"
	"fmt"
)

// Sentinel errors of package secrets. Callers test them with errors.Is; the
// messages of the errors that wrap them name the secret and the scope, never
// a value.
var (
	// ErrUnknownSecret is wrapped by Resolve when no scope visible to the
	// run defines the name. The message lists the scopes looked in; the
	// caller fails the evaluation and shows the message.
	ErrUnknownSecret = errors.New("unknown secret")

	// ErrDecrypt is wrapped by a *DecryptError: a stored value did not
	// decrypt (wrong master key, a key id missing from the keyring, or a
	// tampered row). There is no fallback: the caller fails closed and
	// shows the message, which names the secret and the key id.
	ErrDecrypt = errors.New("cannot decrypt secret")

	// ErrNoMasterKey is returned by LoadKeyring on PostgreSQL when neither
	// HUSHFLOW_MASTER_KEY nor HUSHFLOW_MASTER_KEY_FILE is set: a key is
	// never generated silently for a shared database. `serve` refuses to
	// start with the message.
	ErrNoMasterKey = errors.New("no master key")
)

// DecryptError reports a secret version that does not decrypt. It never
// holds any part of the value.
type DecryptError struct {
	Name    string
	Scope   Scope
	Version int
	KeyID   string
	// Reason says why, for people: "wrong master key or tampered data" or
	// "key id \"k0\" is not in the keyring (it has: k1, k2)".
	Reason string
}

func (e *DecryptError) Error() string {
	return fmt.Sprintf("secret %q (%s) version %d cannot be decrypted: %s (key id %s)",
		e.Name, e.Scope.Describe(), e.Version, e.Reason, e.KeyID)
}

// Unwrap makes errors.Is(err, ErrDecrypt) true.
func (e *DecryptError) Unwrap() error { return ErrDecrypt }
