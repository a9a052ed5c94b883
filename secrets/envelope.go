package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Envelope encryption, the one layer that sees keys and plaintext:
//
//  1. every secret version gets a fresh random 256-bit data key (DEK);
//  2. the value is sealed with AES-256-GCM under the DEK, with the version's
//     identity (secret id, project id, environment id, name, version) as
//     additional data, so that a ciphertext moved to another row fails;
//  3. the DEK is wrapped with AES-256-GCM under the keyring's primary KEK,
//     with (key id, secret id, version) as additional data.
//
// Both blobs start with a format byte so the layout can change later.
const (
	formatV1  byte = 1
	nonceSize      = 12
)

// identity is what a ciphertext is bound to.
type identity struct {
	SecretID      string
	ProjectID     string
	EnvironmentID string
	Name          string
	Version       int
}

// aad is the canonical, length-prefixed encoding of the identity.
func (id identity) aad() []byte {
	b := []byte("hushflow/secret/v1")
	for _, f := range []string{id.SecretID, id.ProjectID, id.EnvironmentID, id.Name} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return binary.AppendUvarint(b, uint64(id.Version))
}

func wrapAAD(keyID string, id identity) []byte {
	b := []byte("hushflow/dek/v1")
	for _, f := range []string{keyID, id.SecretID} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return binary.AppendUvarint(b, uint64(id.Version))
}

var errOpen = errors.New("message authentication failed")

func gcmSeal(key, plaintext, aad []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+g.Overhead())
	out[0] = formatV1
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, err
	}
	return g.Seal(out, out[1:1+nonceSize], plaintext, aad), nil
}

func gcmOpen(key, blob, aad []byte) ([]byte, error) {
	if len(blob) < 1+nonceSize+16 || blob[0] != formatV1 {
		return nil, errOpen
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	pt, err := g.Open(nil, blob[1:1+nonceSize], blob[1+nonceSize:], aad)
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}

// sealed is one encrypted version as stored.
type sealed struct {
	Ciphertext []byte
	WrappedKey []byte
	KeyID      string
}

// seal encrypts plaintext for id under a fresh data key wrapped by the
// primary key.
func (kr *Keyring) seal(id identity, plaintext []byte) (sealed, error) {
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return sealed{}, err
	}
	defer clear(dek)
	ct, err := gcmSeal(dek, plaintext, id.aad())
	if err != nil {
		return sealed{}, fmt.Errorf("encrypt: %w", err)
	}
	wk, err := kr.wrap(kr.primary, id, dek)
	if err != nil {
		return sealed{}, err
	}
	return sealed{Ciphertext: ct, WrappedKey: wk, KeyID: kr.primary}, nil
}

func (kr *Keyring) wrap(keyID string, id identity, dek []byte) ([]byte, error) {
	kek, ok := kr.key(keyID)
	if !ok {
		return nil, fmt.Errorf("wrap: key id %q not in keyring", keyID)
	}
	wk, err := gcmSeal(kek, dek, wrapAAD(keyID, id))
	if err != nil {
		return nil, fmt.Errorf("wrap data key: %w", err)
	}
	return wk, nil
}

// unwrap returns the data key of a version, or a reason for people.
func (kr *Keyring) unwrap(keyID string, id identity, wrapped []byte) ([]byte, string) {
	kek, ok := kr.key(keyID)
	if !ok {
		return nil, kr.missingReason(keyID)
	}
	dek, err := gcmOpen(kek, wrapped, wrapAAD(keyID, id))
	if err != nil {
		return nil, "wrong master key or tampered data"
	}
	return dek, ""
}

// open decrypts a version. The error is a *DecryptError built by the
// caller from the reason; no partial plaintext is ever returned.
func (kr *Keyring) open(id identity, s sealed) ([]byte, string) {
	dek, reason := kr.unwrap(s.KeyID, id, s.WrappedKey)
	if reason != "" {
		return nil, reason
	}
	defer clear(dek)
	pt, err := gcmOpen(dek, s.Ciphertext, id.aad())
	if err != nil {
		return nil, "wrong master key or tampered data"
	}
	return pt, ""
}

// rewrap moves a wrapped data key to the primary key without touching the
// ciphertext (rotation).
func (kr *Keyring) rewrap(id identity, s sealed) (sealed, string) {
	dek, reason := kr.unwrap(s.KeyID, id, s.WrappedKey)
	if reason != "" {
		return sealed{}, reason
	}
	defer clear(dek)
	wk, err := kr.wrap(kr.primary, id, dek)
	if err != nil {
		return sealed{}, err.Error()
	}
	return sealed{Ciphertext: s.Ciphertext, WrappedKey: wk, KeyID: kr.primary}, ""
}
