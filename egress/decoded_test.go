package egress

import (
	"strings"
	"testing"
)

// Decoded shows what a receiver reads once it decodes percent-escapes and
// JSON string escapes, whichever way a value was escaped, and leaves
// malformed escapes as they are.
func TestDecoded(t *testing.T) {
	const v = "pinnedVal9Xk2mQ7rT4wZ8bN3cV6yH1j"
	every := func(prefix string) string {
		var b strings.Builder
		for _, c := range []byte(v) {
			b.WriteString(prefix)
			b.WriteString(strings.ToUpper(string("0123456789abcdef"[c>>4])) + string("0123456789abcdef"[c&15]))
		}
		return b.String()
	}
	for _, c := range []struct{ in, want string }{
		{"/p/" + every("%") + "?q=" + strings.ToLower(every("%")), v},
		{`{"k":"` + every(`\u00`) + `"}`, v},
		{"100% sure: %zz " + every("%"), v},         // malformed escapes first
		{`\ud83d\ude00 ` + every(`\u00`), "😀 " + v}, // a surrogate pair
		{"plain text", ""},
	} {
		got := Decoded(c.in)
		if c.want == "" {
			if got != "" {
				t.Errorf("%q: %q, want nothing (no escape to decode)", c.in, got)
			}
			continue
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%q: decoded %q, want it to hold %q", c.in, got, c.want)
		}
	}
	// \u0025 then percent-decoded: JSON that carries percent-escapes.
	if got := Decoded(`"` + strings.ReplaceAll(every("%"), "%", `\u0025`) + `"`); !strings.Contains(got, v) {
		t.Errorf("JSON escapes of percent-escapes: %q", got)
	}
}
