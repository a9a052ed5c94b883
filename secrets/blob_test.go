package secrets_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/secrets"
)

// Issue 15: checkpointed outputs are sealed like secret values: under a
// fresh data key wrapped by the primary key, bound to what they belong
// to; moved, tampered with or opened without their key they do not open.
func TestSealBlob(t *testing.T) {
	k1, k2 := secrets.NewKey(), secrets.NewKey()
	kr, err := secrets.ParseKeyring("k1:" + k1)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"token":"sk_live_canary_Q7f&<x>"}`)
	aad := []byte("run-1/fetch")
	blob, err := kr.SealBlob(aad, plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, plain) || bytes.Contains(blob, []byte("sk_live_canary")) {
		t.Fatal("the sealed blob holds the plaintext")
	}
	again, _ := kr.SealBlob(aad, plain)
	if bytes.Equal(blob, again) {
		t.Error("two seals of the same output are equal (no fresh data key or nonce)")
	}
	if got, err := kr.OpenBlob(aad, blob); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := kr.OpenBlob([]byte("run-2/fetch"), blob); err == nil {
		t.Error("a blob opened for another run")
	}
	for i := range blob {
		bad := append([]byte(nil), blob...)
		bad[i] ^= 0x40
		if _, err := kr.OpenBlob(aad, bad); err == nil {
			t.Fatalf("a blob with byte %d changed opened", i)
		}
	}
	// After a rotation (k2 primary, k1 kept) old blobs open; without k1
	// the error names the key, never the content.
	rotated, _ := secrets.ParseKeyring("k2:" + k2 + ",k1:" + k1)
	if got, err := rotated.OpenBlob(aad, blob); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open after rotation: %v", err)
	}
	only2, _ := secrets.ParseKeyring("k2:" + k2)
	if _, err := only2.OpenBlob(aad, blob); err == nil || !strings.Contains(err.Error(), `key id "k1"`) {
		t.Errorf("open without its key: %v", err)
	}
}

// A rotation rewraps a blob's data key under the new primary key: the
// rewrapped blob opens with the new key alone, keeps its ciphertext, is
// still bound to what it belongs to, and names its key.
func TestRewrapBlob(t *testing.T) {
	k1, k2 := secrets.NewKey(), secrets.NewKey()
	old, _ := secrets.ParseKeyring("k1:" + k1)
	both, _ := secrets.ParseKeyring("k2:" + k2 + ",k1:" + k1)
	onlyNew, _ := secrets.ParseKeyring("k2:" + k2)
	plain, aad := []byte(`{"out":"checkpoint"}`), []byte("run-1/fetch")
	blob, err := old.SealBlob(aad, plain)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := secrets.BlobKeyID(blob); !ok || id != "k1" {
		t.Fatalf("key id %q %v", id, ok)
	}
	if _, err := onlyNew.RewrapBlob(aad, blob); err == nil || !strings.Contains(err.Error(), "k1") {
		t.Fatalf("rewrap without the old key: %v", err)
	}
	if _, err := both.RewrapBlob([]byte("run-2/fetch"), blob); err == nil {
		t.Error("rewrapped a blob for another run")
	}
	re, err := both.RewrapBlob(aad, blob)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := secrets.BlobKeyID(re); id != "k2" {
		t.Errorf("rewrapped blob under %q, want k2", id)
	}
	if !bytes.HasPrefix(re, both.PrimaryBlobPrefix()) || bytes.HasPrefix(blob, both.PrimaryBlobPrefix()) {
		t.Error("PrimaryBlobPrefix does not tell a blob under the primary key from one under another")
	}
	if !bytes.HasSuffix(re, blob[len(blob)-len(plain)-16:]) {
		t.Error("the ciphertext changed")
	}
	if got, err := onlyNew.OpenBlob(aad, re); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open the rewrapped blob with the new key alone: %q %v", got, err)
	}
	if same, err := both.RewrapBlob(aad, re); err != nil || !bytes.Equal(same, re) {
		t.Errorf("a blob under the primary key changed: %v", err)
	}
	if _, ok := secrets.BlobKeyID([]byte("not a blob")); ok {
		t.Error("a key id for data that is no blob")
	}
}
