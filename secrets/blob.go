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
	return layBlob(kr.primary, wk, ct), nil
}

// parseBlob splits a blob of SealBlob into its key id, wrapped data key
// and ciphertext.
func parseBlob(blob []byte) (keyID string, wk, ct []byte, ok bool) {
	if len(blob) < 1 || blob[0] != formatV1 {
		return "", nil, nil, false
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
	id, ok1 := field()
	wk, ok2 := field()
	return string(id), wk, rest, ok1 && ok2
}

// PrimaryBlobPrefix is how every blob of SealBlob whose data key the
// primary key wraps begins (its format and key id): a query can tell the
// blobs a rotation has yet to rewrap without reading them whole.
func (kr *Keyring) PrimaryBlobPrefix() []byte { return blobPrefix(kr.primary) }

// blobPrefix is the format and key id a blob begins with.
func blobPrefix(keyID string) []byte {
	out := []byte{formatV1}
	out = binary.AppendUvarint(out, uint64(len(keyID)))
	return append(out, keyID...)
}

// layBlob lays out a blob of SealBlob: its prefix, the data key wrapped by
// keyID, the ciphertext.
func layBlob(keyID string, wk, ct []byte) []byte {
	out := binary.AppendUvarint(blobPrefix(keyID), uint64(len(wk)))
	out = append(out, wk...)
	return append(out, ct...)
}

// BlobKeyID is the id of the master key that wraps the data key of a blob
// of SealBlob; ok is false for data that is no such blob.
func BlobKeyID(blob []byte) (keyID string, ok bool) {
	keyID, _, _, ok = parseBlob(blob)
	return keyID, ok
}

// RewrapBlob returns blob (of SealBlob, sealed with aad) with its data key
// wrapped by the keyring's primary key instead, for a key rotation: the
// ciphertext is kept as it is and nothing is decrypted but the data key.
// A blob already under the primary key comes back unchanged.
func (kr *Keyring) RewrapBlob(aad, blob []byte) ([]byte, error) {
	keyID, wk, ct, ok := parseBlob(blob)
	if !ok {
		return nil, errors.New("sealed data is damaged or bound to something else")
	}
	if keyID == kr.primary {
		return blob, nil
	}
	dek, err := kr.openDEK(keyID, wk, aad)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	pk, ok := kr.key(kr.primary)
	if !ok {
		return nil, fmt.Errorf("wrap: key id %q not in keyring", kr.primary)
	}
	nwk, err := gcmSeal(pk, dek, blobAAD("hushflow/blob-dek/v1", kr.primary, aad))
	if err != nil {
		return nil, fmt.Errorf("wrap data key: %w", err)
	}
	return layBlob(kr.primary, nwk, ct), nil
}

// OpenBlob decrypts a blob of SealBlob sealed with the same aad. Its error
// names the key id when the keyring lacks it, never any content.
func (kr *Keyring) OpenBlob(aad, blob []byte) ([]byte, error) {
	keyID, wk, rest, ok := parseBlob(blob)
	if !ok {
		return nil, errors.New("sealed data is damaged or bound to something else")
	}
	dek, err := kr.openDEK(keyID, wk, aad)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	pt, err := gcmOpen(dek, rest, blobAAD("hushflow/blob/v1", "", aad))
	if err != nil {
		return nil, errors.New("wrong master key or tampered data")
	}
	return pt, nil
}

// openDEK unwraps a blob's data key, wrapped by key keyID for aad.
func (kr *Keyring) openDEK(keyID string, wk, aad []byte) ([]byte, error) {
	kek, ok := kr.key(keyID)
	if !ok {
		return nil, errors.New(kr.missingReason(keyID))
	}
	dek, err := gcmOpen(kek, wk, blobAAD("hushflow/blob-dek/v1", keyID, aad))
	if err != nil {
		return nil, errors.New("wrong master key or tampered data")
	}
	return dek, nil
}

func blobAAD(label, keyID string, aad []byte) []byte {
	b := []byte(label)
	b = binary.AppendUvarint(b, uint64(len(keyID)))
	b = append(b, keyID...)
	b = binary.AppendUvarint(b, uint64(len(aad)))
	return append(b, aad...)
}
