package secrets

import "testing"

// BenchmarkOpen is the crypto alone: unwrap a data key and decrypt a
// 40-byte value (AES-256-GCM twice).
func BenchmarkOpen(b *testing.B) {
	kr, err := ParseKeyring("k1:" + NewKey())
	if err != nil {
		b.Fatal(err)
	}
	id := identity{SecretID: "0190-abc", ProjectID: "p", EnvironmentID: "e", Name: "API_TOKEN", Version: 3}
	s, err := kr.seal(id, []byte("0123456789012345678901234567890123456789"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, reason := kr.open(id, s); reason != "" {
			b.Fatal(reason)
		}
	}
}

func TestSealOpenBindsIdentity(t *testing.T) {
	kr, _ := ParseKeyring("k1:" + NewKey())
	id := identity{SecretID: "a", ProjectID: "p", EnvironmentID: "e", Name: "N", Version: 1}
	s, err := kr.seal(id, []byte("value"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Ciphertext[0] != formatV1 || s.WrappedKey[0] != formatV1 || s.KeyID != "k1" {
		t.Fatal("format byte or key id")
	}
	if pt, reason := kr.open(id, s); reason != "" || string(pt) != "value" {
		t.Fatal(reason)
	}
	// Every field of the identity is bound, and lengths are unambiguous.
	for _, other := range []identity{
		{SecretID: "b", ProjectID: "p", EnvironmentID: "e", Name: "N", Version: 1},
		{SecretID: "a", ProjectID: "q", EnvironmentID: "e", Name: "N", Version: 1},
		{SecretID: "a", ProjectID: "p", EnvironmentID: "f", Name: "N", Version: 1},
		{SecretID: "a", ProjectID: "p", EnvironmentID: "e", Name: "M", Version: 1},
		{SecretID: "a", ProjectID: "p", EnvironmentID: "e", Name: "N", Version: 2},
		{SecretID: "a", ProjectID: "pe", EnvironmentID: "", Name: "N", Version: 1},
	} {
		if _, reason := kr.open(other, s); reason == "" {
			t.Errorf("opened under %+v", other)
		}
	}
}
