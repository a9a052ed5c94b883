package secrets

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// SealBlob encrypts plaintext that is not a secret version but must be
// kept like one (a run's checkpointed block outputs): under a fresh data
// key, wrapped by the keyring's primary key, both bound to aad (what the
// blob belongs to, such as a run id and block). The blob carries the key
// id, the wrapped data key and the ciphertext.
func (kr *Keyring) SealBlob(aad, plaintext []byte) ([]byte, error) {
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return nil, err
	}
	defer clear(dek)
	ct, err := gcmSeal(dek, plaintext, blobAAD("hushflow/blob/v1", "", aad))
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	kek, ok := kr.key(kr.primary)
	if !ok {
		return nil, fmt.Errorf("wrap: key id %q not in keyring", kr.primary)
	}
	wk, err := gcmSeal(kek, dek, blobAAD("hushflow/blob-dek/v1", kr.primary, aad))
	if err != nil {
		return nil, fmt.Errorf("wrap data key: %w", err)
	}
	out := []byte{formatV1}
	out = binary.AppendUvarint(out, uint64(len(kr.primary)))
	out = append(out, kr.primary...)
	out = binary.AppendUvarint(out, uint64(len(wk)))
	out = append(out, wk...)
	return append(out, ct...), nil
}

// OpenBlob decrypts a blob of SealBlob sealed with the same aad. Its error
// names the key id when the keyring lacks it, never any content.
func (kr *Keyring) OpenBlob(aad, blob []byte) ([]byte, error) {
	bad := errors.New("sealed data is damaged or bound to something else")
	if len(blob) < 1 || blob[0] != formatV1 {
		return nil, bad
	}
	rest := blob[1:]
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nil, false
		}
		f := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		return f, true
	}
	keyID, ok1 := field()
	wk, ok2 := field()
	if !ok1 || !ok2 {
		return nil, bad
	}
	kek, ok := kr.key(string(keyID))
	if !ok {
		return nil, errors.New(kr.missingReason(string(keyID)))
	}
	dek, err := gcmOpen(kek, wk, blobAAD("hushflow/blob-dek/v1", string(keyID), aad))
	if err != nil {
		return nil, errors.New("wrong master key or tampered data")
	}
	defer clear(dek)
	pt, err := gcmOpen(dek, rest, blobAAD("hushflow/blob/v1", "", aad))
	if err != nil {
		return nil, errors.New("wrong master key or tampered data")
	}
	return pt, nil
}

func blobAAD(label, keyID string, aad []byte) []byte {
	b := []byte(label)
	b = binary.AppendUvarint(b, uint64(len(keyID)))
	b = append(b, keyID...)
	b = binary.AppendUvarint(b, uint64(len(aad)))
	return append(b, aad...)
}
