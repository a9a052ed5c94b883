package redact

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// canary is a high-entropy value with the characters that escapings change.
const canary = `Kq7&zR<9>"x%2\Lm'w/p+Q=é`

func newR(t *testing.T, kv ...string) *Redactor {
	t.Helper()
	r := New()
	for i := 0; i < len(kv); i += 2 {
		r.Add(kv[i], kv[i+1])
	}
	return r
}

func jsonString(s string, escapeHTML bool) string {
	var b strings.Builder
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(escapeHTML)
	_ = e.Encode(s)
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

func pythonJSON(s string) string { // ensure_ascii=True
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20 || r >= 0x7f:
			if r >= 0x10000 {
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3ff))
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestVariants(t *testing.T) {
	v := canary
	b64 := func(e *base64.Encoding, s string) string { return e.EncodeToString([]byte(s)) }
	cases := []struct{ name, text string }{
		{"raw", v},
		{"query escape", url.QueryEscape(v)},
		{"query escape lower", lowerHex(url.QueryEscape(v))},
		{"path escape", url.PathEscape(v)},
		{"path escape lower", lowerHex(url.PathEscape(v))},
		{"encodeURIComponent", jsEncodeURIComponent(v)},
		{"json go", jsonString(v, true)},
		{"json minimal", jsonString(v, false)},
		{"json python", pythonJSON(v)},
		{"json upper u", strings.ReplaceAll(pythonJSON(v), `\u00e9`, `\u00E9`)},
		{"json slash", strings.ReplaceAll(jsonString(v, false), "/", `\/`)},
		// A JSON document inside a JSON string: JSON.stringify twice, Go
		// over JavaScript, Python over JavaScript.
		{"json in json, minimal", jsonString(jsonString(v, false), false)},
		{"json in json, go over minimal", jsonString(jsonString(v, false), true)},
		{"json in json, go", jsonString(jsonString(v, true), true)},
		{"json in json in json, go over minimal twice", jsonString(jsonString(jsonString(v, false), false), true)},
		{"json in json in json, go twice over minimal", jsonString(jsonString(jsonString(v, false), true), true)},
		{"html", html.EscapeString(v)},
		{"html quot", strings.NewReplacer("&#34;", "&quot;", "&#39;", "&#x27;").Replace(html.EscapeString(v))},
		{"hex", hex.EncodeToString([]byte(v))},
		{"HEX", strings.ToUpper(hex.EncodeToString([]byte(v)))},
		{"base64 std", b64(base64.StdEncoding, v)},
		{"base64 url", b64(base64.URLEncoding, v)},
		{"base64 raw std", b64(base64.RawStdEncoding, v)},
		{"base64 raw url", b64(base64.RawURLEncoding, v)},
		{"base64 basic auth", "Basic " + b64(base64.StdEncoding, "user:"+v)},
		{"base64 shift 1", b64(base64.StdEncoding, "a"+v+"tail")},
		{"base64 shift 2", b64(base64.StdEncoding, "ab"+v+"tail")},
		{"base64 shift 3", b64(base64.StdEncoding, "abc"+v)},
		{"base64 url shift 1", b64(base64.RawURLEncoding, "x"+v)},
		{"base64 url shift 2", b64(base64.RawURLEncoding, "xy"+v)},
		{"base64 in query", url.QueryEscape(b64(base64.StdEncoding, v))},
	}
	r := newR(t, "K", v)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := "before " + c.text + " after"
			out := r.String(in)
			if !strings.Contains(out, "[REDACTED:K]") {
				t.Fatalf("not masked: %q -> %q", in, out)
			}
			if strings.Contains(out, c.text) || strings.Contains(out, v) {
				t.Fatalf("value survived: %q", out)
			}
			if !strings.HasPrefix(out, "before ") || !strings.HasSuffix(out, " after") {
				t.Fatalf("context damaged: %q", out)
			}
			if got := r.Matches(in); len(got) != 1 || got[0] != "K" {
				t.Fatalf("Matches = %q", got)
			}
		})
	}
}

func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = strings.ToLower(string(b[i+1]))[0]
			b[i+2] = strings.ToLower(string(b[i+2]))[0]
		}
	}
	return string(b)
}

func jsEncodeURIComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func TestPositions(t *testing.T) {
	r := newR(t, "K", "abcdefgh")
	cases := []struct{ in, want string }{
		{"abcdefgh", "[REDACTED:K]"},
		{"abcdefghX", "[REDACTED:K]X"},
		{"Xabcdefgh", "X[REDACTED:K]"},
		{"abcdefghabcdefgh", "[REDACTED:K]"},               // adjacent: one mask
		{"abcdefgh abcdefgh", "[REDACTED:K] [REDACTED:K]"}, // separate
		{"abcdefg", "abcdefg"},
		{"", ""},
	}
	for _, c := range cases {
		if got := r.String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := string(r.Bytes([]byte(c.in))); got != c.want {
			t.Errorf("Bytes(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Every offset in a longer text.
	for i := 0; i < 40; i++ {
		in := strings.Repeat("x", i) + "abcdefgh" + strings.Repeat("y", 40-i)
		want := strings.Repeat("x", i) + "[REDACTED:K]" + strings.Repeat("y", 40-i)
		if got := r.String(in); got != want {
			t.Fatalf("offset %d: %q", i, got)
		}
	}
}

func TestOverlaps(t *testing.T) {
	r := newR(t, "A", "0123456789", "B", "56789abcdef", "C", "345678")
	cases := []struct{ in, want string }{
		{"x0123456789abcdefy", "x[REDACTED]y"}, // overlapping, two names
		{"x0123456789y", "x[REDACTED]y"},       // C inside A: two names
		{"x345678y", "x[REDACTED:C]y"},         // alone
		{"01234-56789abcdef", "01234-[REDACTED:B]"},
		{"012345678956789abcdef", "[REDACTED]"}, // adjacent, two names
	}
	for _, c := range cases {
		if got := r.String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := r.Matches("x0123456789abcdefy"); fmt.Sprint(got) != "[A B C]" {
		t.Errorf("Matches = %q", got)
	}
}

func TestMaskFixedWidth(t *testing.T) {
	r := newR(t, "", "short1", "", strings.Repeat("long-secret-", 20))
	if got := r.String("short1"); got != "[REDACTED]" {
		t.Errorf("got %q", got)
	}
	if got := r.String(strings.Repeat("long-secret-", 20)); got != "[REDACTED]" {
		t.Errorf("got %q", got)
	}
}

const pemKey = `-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj
MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu
NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ
-----END PRIVATE KEY-----
`

func TestMultiLine(t *testing.T) {
	r := newR(t, "KEY", pemKey)
	lines := strings.Split(strings.TrimSpace(pemKey), "\n")
	crlf := strings.ReplaceAll(pemKey, "\n", "\r\n")
	cases := map[string]string{
		"whole":      "key: " + pemKey + " end",
		"crlf":       "key: " + crlf + " end",
		"json":       `{"key":"` + jsonString(pemKey, true) + `"}`,
		"json crlf":  `{"key":"` + jsonString(crlf, true) + `"}`,
		"one line":   "line " + lines[2] + " end",
		"indented":   "key:\n    " + strings.Join(lines, "\n    "),
		"base64":     base64.StdEncoding.EncodeToString([]byte(pemKey)),
		"line quote": `"` + lines[1] + `"`,
	}
	for name, in := range cases {
		out := r.String(in)
		for _, l := range lines[1 : len(lines)-1] {
			if strings.Contains(out, l) {
				t.Errorf("%s: line survived: %q", name, out)
			}
		}
		if !strings.Contains(out, "[REDACTED:KEY]") {
			t.Errorf("%s: not masked: %q", name, out)
		}
	}
	// Boilerplate lines are not masks on their own.
	in := "-----END PRIVATE KEY-----"
	if got := r.String(in); got != in {
		t.Errorf("armor line masked: %q", got)
	}
}

func TestWeak(t *testing.T) {
	r := newR(t, "PW", "a", "PIN", "1234", "TOK", "hello_world_token_1")
	cases := []struct{ in, want string }{
		{"transforming", "transforming"},
		{"a", "[REDACTED:PW]"},
		{"pass=a;", "pass=[REDACTED:PW];"},
		{"a b a", "[REDACTED:PW] b [REDACTED:PW]"},
		{"pin 1234.", "pin [REDACTED:PIN]."},
		{"order 12345", "order 12345"},
		{"x1234", "x1234"},
		{"é1234", "é1234"},
	}
	for _, c := range cases {
		if got := r.String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for v, want := range map[string]bool{
		"a": true, "12345": true, "password": true, "12345678": true, "aaaaaaaaaaaaaaaaaaaa": true,
		"sk_live_4eC39HqLyjWDarjtT1zdp7dc": false, canary: false, "correct horse battery": false,
	} {
		if got := Weak(v); got != want {
			t.Errorf("Weak(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestNil(t *testing.T) {
	var r *Redactor
	r.Add("a", "secret-value")
	r.AddAll(map[string]string{"a": "b"})
	if r.String("x") != "x" || string(r.Bytes([]byte("x"))) != "x" || r.Len() != 0 || r.Matches("x") != nil {
		t.Fatal("nil Redactor must mask nothing")
	}
	if r.Error(nil) != nil || r.Error(errors.New("e")).Error() != "e" {
		t.Fatal("nil Redactor Error")
	}
	var b strings.Builder
	w := r.NewWriter(&b)
	fmt.Fprint(w, "hello")
	w.Close()
	if b.String() != "hello" {
		t.Fatal(b.String())
	}
	if fmt.Sprint(r.Value(map[string]any{"k": []any{"v"}})) != "map[k:[v]]" {
		t.Fatal("Value")
	}
}

func TestNoMatchNoAlloc(t *testing.T) {
	r := New()
	for i := 0; i < 100; i++ {
		r.Add(fmt.Sprint("K", i), fmt.Sprintf("secret-%d-%x", i, i*7919))
	}
	r.Add("PIN", "4711")
	s := strings.Repeat("an ordinary log line with nothing in it\n", 100)
	if n := testing.AllocsPerRun(10, func() { _ = r.String(s) }); n != 0 {
		t.Errorf("String allocates %v times on a clean text", n)
	}
	if got := r.String(s); got != s {
		t.Error("clean text changed")
	}
}

func TestBytesDoesNotMutate(t *testing.T) {
	r := newR(t, "K", "abcdefgh")
	in := []byte("xx abcdefgh yy")
	out := r.Bytes(in)
	if string(in) != "xx abcdefgh yy" || string(out) != "xx [REDACTED:K] yy" {
		t.Fatalf("in %q out %q", in, out)
	}
	clean := []byte("nothing")
	c := r.Bytes(clean)
	c[0] = 'N'
	if string(clean) != "nothing" {
		t.Fatal("Bytes returned its argument")
	}
}

func TestLenAndDuplicates(t *testing.T) {
	r := New()
	r.Add("A", "value-one")
	r.Add("B", "value-one")
	r.AddAll(map[string]string{"C": "value-two", "D": "value-three", "E": ""})
	if r.Len() != 3 {
		t.Fatalf("Len = %d", r.Len())
	}
	if got := r.String("value-one"); got != "[REDACTED:A]" {
		t.Fatalf("first name wins: %q", got)
	}
}

// TestIncremental crosses the rebuild threshold of the small matcher.
func TestIncremental(t *testing.T) {
	r := New()
	var vals []string
	for i := 0; i < 3*minExtra+5; i++ {
		v := fmt.Sprintf("val-%d-%08x", i, i*2654435761)
		vals = append(vals, v)
		r.Add(fmt.Sprint("V", i), v)
		for j := 0; j <= i; j += 1 + i/7 {
			if got := r.String(" " + vals[j] + " "); got != fmt.Sprintf(" [REDACTED:V%d] ", j) {
				t.Fatalf("after %d adds, value %d: %q", i+1, j, got)
			}
		}
	}
	r.Add("SHORT", "xyzzy") // a weak value in the small matcher
	if got := r.String("say xyzzy " + vals[0]); got != "say [REDACTED:SHORT] [REDACTED:V0]" {
		t.Fatal(got)
	}
}

func TestConcurrent(t *testing.T) {
	r := New()
	r.AddAll(map[string]string{"BASE": "base-secret-value"})
	var wg sync.WaitGroup
	const writers, per = 4, 50
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				r.Add(fmt.Sprintf("W%d", w), fmt.Sprintf("run-time-%d-%d-token", w, i))
			}
		}()
	}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b strings.Builder
			wr := r.NewWriter(&b)
			for i := 0; i < 200; i++ {
				out := r.String("log base-secret-value line")
				if strings.Contains(out, "base-secret-value") {
					t.Error("leak under concurrency")
					return
				}
				_ = r.Matches("run-time-0-0-token")
				_ = r.Value(map[string]any{"k": "base-secret-value"})
				fmt.Fprint(wr, "base-secret-", "value ")
			}
			wr.Close()
			if strings.Contains(b.String(), "base-secret-value") {
				t.Error("writer leak under concurrency")
			}
		}()
	}
	wg.Wait()
	if r.Len() != 1+writers*per {
		t.Fatalf("Len = %d", r.Len())
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < per; i++ {
			v := fmt.Sprintf("run-time-%d-%d-token", w, i)
			if strings.Contains(r.String(v), v) {
				t.Fatalf("%s not masked", v)
			}
		}
	}
}

type cfg struct {
	Token string            `json:"token"`
	Hdrs  map[string]string `json:"headers"`
}

func TestValue(t *testing.T) {
	r := newR(t, "K", "secret-value", "U", "user-name-key")
	in := map[string]any{
		"a":             "x secret-value y",
		"user-name-key": 1.5,
		"list":          []any{"secret-value", true, nil, json.Number("2"), map[string]any{"secret-value": "z"}},
		"typed":         map[string][]string{"k": {"secret-value"}},
		"struct":        cfg{Token: "secret-value", Hdrs: map[string]string{"Authorization": "Bearer secret-value"}},
		"ptr":           &cfg{Token: "secret-value"},
		"err":           errors.New("bad secret-value"),
		"bytes":         []byte("secret-value"),
	}
	inJSON, _ := json.Marshal(in)
	out := r.Value(in)
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "secret-value") || strings.Contains(string(b), "user-name-key") {
		t.Fatalf("leak: %s", b)
	}
	if !strings.Contains(string(b), `"[REDACTED:U]":1.5`) || !strings.Contains(string(b), `"x [REDACTED:K] y"`) {
		t.Fatalf("unexpected: %s", b)
	}
	again, _ := json.Marshal(in)
	if string(again) != string(inJSON) {
		t.Fatal("Value modified its argument")
	}
	// Keys that collide after masking keep all entries.
	m := r.Value(map[string]any{"secret-value": 1, "[REDACTED:K]": 2}).(map[string]any)
	if len(m) != 2 {
		t.Fatalf("lost a key: %v", m)
	}
	// Unencodable values are stringified and masked.
	if s := r.Value(func() {}); s == nil {
		t.Fatal("nil")
	}
	if got := r.Value(map[string]any{"c": make(chan int)}).(map[string]any)["c"]; got == nil {
		t.Fatal("chan lost")
	}
}

func TestError(t *testing.T) {
	r := newR(t, "K", "api-key-123456")
	base := &url.Error{Op: "Get", URL: "https://x.example/?api_key=api-key-123456", Err: errors.New("no such host")}
	err := r.Error(fmt.Errorf("call: %w", base))
	if strings.Contains(err.Error(), "api-key-123456") || !strings.Contains(err.Error(), "[REDACTED:K]") {
		t.Fatal(err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) || ue != base {
		t.Fatal("chain lost")
	}
	if r.Error(nil) != nil {
		t.Fatal("nil")
	}
	if r.Error(err) != err {
		t.Fatal("wrapped twice")
	}
	// A value added later is masked too.
	err2 := r.Error(errors.New("late-secret-xyz"))
	r.Add("L", "late-secret-xyz")
	if err2.Error() != "[REDACTED:L]" {
		t.Fatal(err2)
	}
}

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestFormsComplete checks that skipping the escapings that cannot change a
// value loses no form: every escaping, generated without the shortcut,
// gives a form that is registered.
func TestFormsComplete(t *testing.T) {
	for _, v := range []string{canary, "plain-value-1", "a/b/c/d", "tab\there\r\nx", "ctl\x01\x7f", "héllo wörld 😀", "q\"u'o<t>e&s", "% +=?#$,;:@!*()~", "\xff\xfeinvalid", "line\u2028sep"} {
		f := formSet{min: 1}
		f.begin(0)
		f.addEncodings(v, false)
		have := map[string]bool{}
		for _, p := range f.pats {
			have[string(f.arena[p.off:p.off+p.n])] = true
		}
		var want []string
		for _, set := range []*[256]bool{&urlQuery, &urlPath, &urlComponent, &urlURI} {
			for _, upper := range []bool{true, false} {
				want = append(want, string(appendURLEscape(nil, v, set, set == &urlQuery, upper)))
			}
		}
		for mode := jsonMode(0); mode < jsonModes; mode++ {
			want = append(want, string(appendJSONEscape(nil, v, mode)))
		}
		for _, e := range htmlFlavours {
			want = append(want, string(appendHTMLEscape(nil, v, e)))
		}
		for _, w := range want {
			if !have[w] {
				t.Errorf("value %q: form %q not registered", v, w)
			}
		}
	}
}

func TestLargeValue(t *testing.T) {
	var b strings.Builder
	for b.Len() < 100_000 {
		fmt.Fprintf(&b, "line %d: <&> \"é\" / %x\n", b.Len(), b.Len()*7919)
	}
	v := b.String()
	f := formSet{min: MinLength}
	f.begin(0)
	f.addValue(v)
	if len(f.arena) > 64*len(v) {
		t.Fatalf("forms of a %d-byte value take %d bytes", len(v), len(f.arena))
	}
	r := newR(t, "BIG", v)
	for _, in := range []string{v, jsonString(v, true), jsonString(v, false), b64std(v), html.EscapeString(v), url.QueryEscape(v)} {
		if out := r.String("x" + in + "y"); out != "x[REDACTED:BIG]y" {
			t.Fatalf("large value form not masked whole (%d bytes out)", len(out))
		}
	}
}

// TestSharedPrefix registers many tokens with a common prefix and masks a
// text full of other tokens with that prefix: verification is keyed on the
// whole start of a pattern, so this stays linear.
func TestSharedPrefix(t *testing.T) {
	r := New()
	vals := map[string]string{}
	for i := 0; i < 5000; i++ {
		vals[fmt.Sprint("T", i)] = fmt.Sprintf("sk_live_%016x%08x", uint64(i)*0x9E3779B97F4A7C15, i)
	}
	r.AddAll(vals)
	var b strings.Builder
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "key=sk_live_%016x%08x ", uint64(i+1)*0xC2B2AE3D27D4EB4F, i)
	}
	b.WriteString(vals["T42"])
	start := time.Now()
	out := r.String(b.String())
	if !strings.HasSuffix(out, "[REDACTED:T42]") || strings.Count(out, "[REDACTED") != 1 {
		i := strings.Index(out, "[REDACTED")
		t.Fatalf("wrong masking (%d masks): %s", strings.Count(out, "[REDACTED"), out[max(i-80, 0):i+40])
	}
	t.Logf("1 MiB of look-alike tokens in %v", time.Since(start))
}

func TestHeader(t *testing.T) {
	r := newR(t, "K", "secret-value")
	h := http.Header{
		"Authorization":   {"Bearer anything"},
		"Set-Cookie":      {"session=abc"},
		"X-Github-Token":  {"ghp_x"},
		"Content-Type":    {"application/json"},
		"X-Debug":         {"echo secret-value"},
		"X-Custom-Secret": {"s"},
	}
	out := r.Header(h)
	want := map[string]string{"Authorization": "[REDACTED]", "Set-Cookie": "[REDACTED]", "X-Github-Token": "[REDACTED]",
		"Content-Type": "application/json", "X-Debug": "echo [REDACTED:K]", "X-Custom-Secret": "[REDACTED]"}
	for k, v := range want {
		if got := out.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if h.Get("Authorization") != "Bearer anything" {
		t.Fatal("Header modified its argument")
	}
	if r.Header(nil) != nil || !CredentialHeader("x-api-key") || CredentialHeader("Accept") {
		t.Fatal("CredentialHeader")
	}
}

// TestMaskOf: the mask of a whole field names the secret it holds, in the
// form its occurrences get, and is the plain mask for no known value,
// several, or an unnamed one (issue 18 item 6).
func TestMaskOf(t *testing.T) {
	r := newR(t, "API_TOKEN", "tok-9fK2xQ7zLmW3", "OTHER", "other-4hT8pQ2wZx", "", "unnamed-7Yq3mV9k")
	for in, want := range map[string]string{
		"Bearer tok-9fK2xQ7zLmW3":               "[REDACTED:API_TOKEN]",
		"Basic " + b64std("u:tok-9fK2xQ7zLmW3"): "[REDACTED:API_TOKEN]",
		"tok-9fK2xQ7zLmW3 tok-9fK2xQ7zLmW3":     "[REDACTED:API_TOKEN]",
		"built-at-run-time":                     "[REDACTED]",
		"tok-9fK2xQ7zLmW3 and other-4hT8pQ2wZx": "[REDACTED]",
		"unnamed-7Yq3mV9k":                      "[REDACTED]",
	} {
		if got := r.MaskOf(in); got != want {
			t.Errorf("MaskOf(%q) = %q, want %q", in, got, want)
		}
		if want != "[REDACTED]" && !strings.Contains(r.String(in), want) {
			t.Errorf("String(%q) = %q: not the form MaskOf gives", in, r.String(in))
		}
	}
}
