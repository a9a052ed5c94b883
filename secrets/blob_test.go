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
