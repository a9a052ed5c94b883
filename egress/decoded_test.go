package egress

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/redact"
)

// Decoded shows what a receiver reads once it decodes percent-escapes,
// JSON string escapes and character references, one on another, whichever
// way a value was escaped, and leaves malformed escapes as they are.
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
		// Attacker round five: JSON in a form field, percent-escaped; XML
		// character references, hexadecimal and decimal.
		{"payload=" + strings.NewReplacer(`\`, "%5C", `"`, "%22", "{", "%7B", "}", "%7D", ":", "%3A").Replace(`{"text":"`+every(`\u00`)+`"}`), v},
		{"<a>" + strings.ReplaceAll(every("&#x"), "&#x", ";&#x")[1:] + ";</a>", v},
		{"<a>" + decimalRefs(v) + "</a>", v},
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

// decimalRefs is v as XML decimal character references (&#103;...).
func decimalRefs(v string) string {
	var b strings.Builder
	for _, c := range []byte(v) {
		fmt.Fprintf(&b, "&#%d;", c)
	}
	return b.String()
}

// BenchmarkPinScan measures what pinning scans per request of a run with
// pinned secrets (20 values): the request as sent (URL, headers, a 2 KiB
// JSON body), and the same with what its receiver decodes (Decoded), the
// scan since attacker round four. The body holds JSON escapes and the
// URL percent-escapes, so Decoded has work to do.
func BenchmarkPinScan(b *testing.B) {
	red := redact.New()
	for i := range 20 {
		red.Add(fmt.Sprintf("SECRET_%d", i), fmt.Sprintf("sk_live_%016x%08d", uint64(i)*0x9E3779B97F4A7C15, i))
	}
	head := "https://api.example.com/v1/records?filter=status%3Dactive&page=2\napi.example.com\nAuthorization: Bearer [token]\nContent-Type: application/json\n"
	body := "[" + strings.Repeat(`{"id": 12345, "name": "r\u00e9cord", "note": "a \"quoted\" word", "tags": ["a", "b"]},`, 25) + "]"
	for _, c := range []struct {
		name string
		scan func(s string) string
	}{
		{"as-sent", nil},
		{"with-decoded", Decoded},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(head) + len(body)))
			b.ReportAllocs()
			for b.Loop() {
				for _, s := range []string{head, body} {
					if len(red.Matches(s)) != 0 {
						b.Fatal("a value found")
					}
					if c.scan != nil {
						if d := c.scan(s); d != "" && len(red.Matches(d)) != 0 {
							b.Fatal("a value found")
						}
					}
				}
			}
		})
	}
}
