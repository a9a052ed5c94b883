package redact

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// These tests cover the forms of issue 16 items 9-15 ("Redaction forms that
// tools print"), numbered as the security cases of security/README.md
// (case = 37 + item). Each case is written as a peer's masking test would
// be (the GitHub Actions runner's SecretMasker, Windmill's and Airflow's
// masking tests): a value, the text a tool prints for it, and what must not
// survive.

// jsonEncoder describes how one JSON encoder escapes a string, written out
// here independently of appendJSONEscape.
type jsonEncoder struct {
	name  string
	upper bool // \u001F rather than \u001f
	allU  bool // \u000a rather than \n for every control byte
	del   bool // 0x7f as \u007f
	html  bool // < > & as \u003c ...
	ascii bool // every non-ASCII rune as \uXXXX
}

var (
	encJS      = jsonEncoder{name: "JSON.stringify"}
	encGo      = jsonEncoder{name: "encoding/json", html: true}
	encPython  = jsonEncoder{name: "json.dumps", del: true, ascii: true}
	encJackson = jsonEncoder{name: "Jackson", upper: true}
	encDotNet  = jsonEncoder{name: "System.Text.Json", upper: true, del: true, html: true, ascii: true}
	encAllU    = jsonEncoder{name: "every control as \\u00XX", allU: true}
	encAllUUp  = jsonEncoder{name: "every control as \\u00XX, upper case", allU: true, upper: true}
)

func (e jsonEncoder) quote(s string) string {
	var b strings.Builder
	u := func(r rune) {
		if e.upper {
			fmt.Fprintf(&b, `\u%04X`, r)
		} else {
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	short := map[rune]string{'\b': `\b`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`}
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20 && short[r] != "" && !e.allU:
			b.WriteString(short[r])
		case r < 0x20, r == 0x7f && e.del, e.html && strings.ContainsRune("<>&", r):
			u(r)
		case r >= 0x80 && e.ascii:
			if r >= 0x10000 {
				r -= 0x10000
				u(0xD800 + r>>10)
				u(0xDC00 + r&0x3ff)
			} else {
				u(r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mustMask checks that r masks every value's form in text: no value and no
// part of form (the printed form of a value) survives, the mask is there
// and the text around it is kept.
func mustMask(t *testing.T, r *Redactor, form string) {
	t.Helper()
	in := "before " + form + " after"
	out := r.String(in)
	if !strings.Contains(out, "[REDACTED") {
		t.Fatalf("not masked:\nin  %q\nout %q", in, out)
	}
	if strings.Contains(out, form) {
		t.Fatalf("form survived: %q", out)
	}
	if !strings.HasPrefix(out, "before ") || !strings.HasSuffix(out, " after") {
		t.Fatalf("context damaged: %q", out)
	}
}

// Case 47 (item 10): a JSON body logged as a string field. The value's
// JSON escaping, by any common encoder, escaped again by JavaScript or Go
// (the encoders of Hushflow's own output), is masked for values holding a
// quote, a backslash, a newline, a tab or another control character.
func TestCase47_DoubleJSON(t *testing.T) {
	values := map[string]string{
		"quote":     `Zq8"wX4-rT`,
		"backslash": `C:\kx9\Tq7w`,
		"newline":   "line-one-7Q\nline-two-9Z",
		"crlf":      "first-7Qx2\r\nsecond-9Zk4",
		"tab":       "col-a-7Q\tcol-b-9Z",
		"control":   "ctl-\x01-7Qx2-9Zk4",
		"unit sep":  "ctl-\x1f-7Qx2-9Zk4",
		"del":       "del-\x7f-7Qx2-9Zk4",
	}
	inner := []jsonEncoder{encJS, encGo, encPython, encJackson, encDotNet, encAllU, encAllUUp}
	outer := []jsonEncoder{encJS, encGo}
	for name, v := range values {
		r := newR(t, "K", v)
		for _, in := range inner {
			for _, out := range outer {
				t.Run(fmt.Sprintf("%s/%s in %s", name, in.name, out.name), func(t *testing.T) {
					mustMask(t, r, out.quote(in.quote(v)))
				})
			}
		}
	}
}

// Case 48 (item 11): ASCII-only JSON of control characters. Every \u00XX
// an encoder may write for a control byte (including \u0009 for a tab and
// \u000a for a newline, which most encoders write \t and \n) and for DEL
// (\u007f, which Python's ensure_ascii and .NET write), in lower and upper
// case, is masked.
func TestCase48_JSONControlEscapes(t *testing.T) {
	for _, c := range []byte{0x01, '\b', '\t', '\n', '\f', '\r', 0x0e, 0x1b, 0x1f, 0x7f} {
		v := fmt.Sprintf("ctl-7Qx2%c9Zk4-end", c)
		r := newR(t, "K", v)
		for _, hex := range []string{fmt.Sprintf("%04x", c), fmt.Sprintf("%04X", c)} {
			form := strings.Replace(v, string(c), `\u`+hex, 1)
			t.Run(fmt.Sprintf("%q", form), func(t *testing.T) { mustMask(t, r, form) })
		}
	}
	// The encoders themselves, on a value with every kind of control byte.
	v := "all-\x00\x01\b\t\n\f\r\x1f\x7f-7Qx2-9Zk4"
	r := newR(t, "K", v)
	for _, e := range []jsonEncoder{encPython, encJackson, encDotNet, encAllU, encAllUUp} {
		t.Run(e.name, func(t *testing.T) { mustMask(t, r, e.quote(v)) })
	}
}

// Case 49 (item 12): Go's %q and %+q (strconv.Quote and QuoteToASCII):
// \x01, \x7f, \u2028, \U0001f511 and \xff for invalid UTF-8.
func TestCase49_GoQuoted(t *testing.T) {
	for _, v := range []string{
		"ctl-\x01-7Qx2-9Zk4",
		"del-\x7f-7Qx2-9Zk4",
		"bell-\a-vt-\v-7Qx2",
		"key-🔑-7Qx2-9Zk4",
		"café-7Qx2-9Zk4",
		"sep-\u2028-7Qx2-9Zk4",
		"bad-\xff\xfe-7Qx2-9Zk4",
		`quote-"-back-\-7Qx2`,
	} {
		r := newR(t, "K", v)
		for _, verb := range []string{"%q", "%+q"} {
			form := fmt.Sprintf(verb, v)
			t.Run(verb+" "+form, func(t *testing.T) {
				mustMask(t, r, form)
				mustMask(t, r, form[1:len(form)-1]) // without its quotes
			})
		}
	}
	if s := strconv.QuoteToASCII("🔑"); s != `"\U0001f511"` || !utf8.ValidString(s) {
		t.Fatalf("QuoteToASCII: %s", s)
	}
}

// Case 50 (item 13): quote doubling (YAML and SQL ”, shell '\”, CSV "")
// and a value registered with its surrounding quotes but printed without
// them.
func TestCase50_QuoteDoubling(t *testing.T) {
	apos := `it's-7Qx2-9Zk4`
	quot := `say "hi" 7Qx2-9Zk4`
	r := newR(t, "A", apos, "Q", quot, "DQ", `"dq-wrapped-7Qx2-9Zk4"`, "SQ", `'sq-wrapped-7Qx2-9Zk4'`)
	for name, text := range map[string]string{
		"yaml single-quoted": `password: 'it''s-7Qx2-9Zk4'`,
		"sql literal":        `WHERE pw = 'it''s-7Qx2-9Zk4'`,
		"shell":              `echo 'it'\''s-7Qx2-9Zk4'`,
		"csv":                `"say ""hi"" 7Qx2-9Zk4",next`,
		"registered with double quotes, printed bare": `TOKEN=dq-wrapped-7Qx2-9Zk4`,
		"registered with single quotes, printed bare": `TOKEN=sq-wrapped-7Qx2-9Zk4`,
		"registered with quotes, printed in JSON":     `{"token":"sq-wrapped-7Qx2-9Zk4"}`,
		"registered with quotes, base64":              b64std("sq-wrapped-7Qx2-9Zk4"),
	} {
		t.Run(name, func(t *testing.T) {
			out := r.String(text)
			for _, leak := range []string{"7Qx2", "wrapped"} {
				if strings.Contains(out, leak) {
					t.Fatalf("%q -> %q", text, out)
				}
			}
			if !strings.Contains(out, "[REDACTED") {
				t.Fatalf("not masked: %q", out)
			}
		})
	}
	// The quotes alone are not masked, nor a shorter inner value.
	if got := newR(t, "S", `"abc12"`).String("x abc12 y"); got != "x abc12 y" {
		t.Errorf("short inner value masked: %q", got)
	}
}

// Case 51 (item 14): a structured secret (a JSON object or array): each
// string leaf of MinLength bytes or more is masked on its own, in all its
// forms, under the secret's name, so JSON.parse(secrets.DB).password does
// not leak; shorter leaves are not masked on their own.
func TestCase51_StructuredSecret(t *testing.T) {
	db := `{"host":"db.internal.example","port":5432,"user":"app",
		"password":"s3cr3t-P4ss/w0rd!","tls":{"key":"tls-key-7Qx2-9Zk4"},"replicas":["replica-pw-1a2b3c"],
		"creds":"{\"token\":\"inner-tok-5e6f7g\"}"}`
	r := New()
	r.AddAll(map[string]string{"DB": db, "LIST": `["first-item-9Zk4", "second-item-7Qx2"]`})
	for _, text := range []string{
		"connecting with s3cr3t-P4ss/w0rd!",
		"password=" + b64std("s3cr3t-P4ss/w0rd!"),
		"url postgres://app:s3cr3t-P4ss%2Fw0rd%21@db",
		`{"key":"tls-key-7Qx2-9Zk4"}`,
		"replica replica-pw-1a2b3c",
		"inner inner-tok-5e6f7g",
		"list first-item-9Zk4 second-item-7Qx2",
		"host db.internal.example",
	} {
		out := r.String(text)
		for _, leak := range []string{"s3cr3t", "P4ss", "7Qx2", "1a2b3c", "5e6f7g", "9Zk4", "internal"} {
			if strings.Contains(out, leak) {
				t.Errorf("%q -> %q", text, out)
			}
		}
		if !strings.Contains(out, "[REDACTED:DB]") && !strings.Contains(out, "[REDACTED:LIST]") {
			t.Errorf("%q -> %q: not masked under the secret's name", text, out)
		}
	}
	if got := r.String("user app, application, port 5432"); got != "user app, application, port 5432" {
		t.Errorf("short leaves or numbers masked: %q", got)
	}
	if r.Len() != 2 {
		t.Errorf("Len = %d, want 2 (leaves are forms, not values)", r.Len())
	}
	// Not JSON, or a JSON string or number: no leaves.
	if got := newR(t, "X", `{not json "leaf-value-123"`).String("leaf-value-123"); got != "leaf-value-123" {
		t.Errorf("invalid JSON walked: %q", got)
	}
}
