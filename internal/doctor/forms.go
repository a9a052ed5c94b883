package doctor

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// Form is an encoding in which the self-test pushes the canary through
// every sink: one the redactor claims to mask (docs/redaction.md).
type Form struct {
	Name string
	// JS is a JavaScript expression of v (the canary) giving the form,
	// evaluated inside the throwaway run.
	JS string
	// Go computes the same form on the server, to look for it in what the
	// sinks kept.
	Go func(v string) string
}

// Forms are the encodings the self-test checks, in report order. Each
// form's JS and Go agree on the canary's characters (ASCII); the test of
// this package checks it, and a test with a sink's masking turned off
// shows every form leaked.
var Forms = []Form{
	{"plain", "v", func(v string) string { return v }},
	{"base64", "btoa(v)", func(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }},
	{"base64url", "btoa(v).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '')",
		func(v string) string { return base64.RawURLEncoding.EncodeToString([]byte(v)) }},
	{"hex", "Array.from(v).map(c => c.charCodeAt(0).toString(16).padStart(2, '0')).join('')",
		func(v string) string { return hex.EncodeToString([]byte(v)) }},
	{"url", "encodeURIComponent(v)", encodeURIComponent},
	{"json", "JSON.stringify(v).slice(1, -1)", jsonJS},
	{"html", "v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\"/g, '&#34;').replace(/'/g, '&#39;')",
		strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace},
}

// marker precedes each form in the text the run pushes through the sinks,
// so that the self-test can tell a sink that masked the form from one
// that never received it.
func marker(form string) string { return "hushflow-doctor:" + form + "=" }

// newCanary returns a random value of 40 bytes with the characters that
// make every form differ from the plain value (& < > " ' % \ / and a
// space), as docs/security.md's canaries have.
func newCanary() string {
	return "hfdoc_" + randomToken(12) + `&<>"'%\ /` + randomToken(8)
}

// randomToken returns n random bytes in hex.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("doctor: crypto/rand: " + err.Error()) // never fails on supported systems
	}
	return hex.EncodeToString(b)
}

// encodeURIComponent escapes v as JavaScript's encodeURIComponent does.
func encodeURIComponent(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return b.String()
}

// jsonJS is JSON.stringify(v) without its quotes.
func jsonJS(v string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	s := strings.TrimSuffix(b.String(), "\n")
	return s[1 : len(s)-1]
}

// jsonGo is Go's json.Marshal of v (HTML-safe) without its quotes.
func jsonGo(v string) string {
	b, _ := json.Marshal(v)
	return string(b[1 : len(b)-1])
}

// shapes returns f as it may stand in a sink's text: as is, JSON-escaped
// once or twice (JavaScript and Go escaping: event data, API bodies, JSON
// logs, an echoed JSON body) and Go-quoted (text logs).
func shapes(f string) []string {
	q := strconv.Quote(f)
	out := []string{f, jsonJS(f), jsonGo(f), jsonJS(jsonJS(f)), jsonGo(jsonGo(f)), jsonGo(jsonJS(f)), q[1 : len(q)-1]}
	seen := map[string]bool{}
	uniq := out[:0]
	for _, s := range out {
		if !seen[s] {
			seen[s] = true
			uniq = append(uniq, s)
		}
	}
	return uniq
}
