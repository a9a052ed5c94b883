package egress

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// DefaultMaxScan is the largest request body Pin buffers to scan. A
// larger body is refused when any secret of the run is pinned.
const DefaultMaxScan = 10 << 20

// ErrPinned is wrapped by the error of a request refused by pinning.
var ErrPinned = errors.New("secret host pinning")

// PinError is the error of a request that would carry a pinned secret to
// a host it is not allowed on. It names the secret and the host, never
// the value.
type PinError struct {
	Secret  string
	Host    string
	Allowed []string
}

func (e *PinError) Error() string {
	return fmt.Sprintf("secret %q may only be sent to %s, not %s", e.Secret, strings.Join(e.Allowed, ", "), e.Host)
}

func (e *PinError) Unwrap() error { return ErrPinned }

// Pinning is the secret host pinning of one run.
type Pinning struct {
	// Match returns the names of the known secrets found in s, in any
	// encoding the redactor knows (redact.Redactor.Matches).
	Match func(s string) []string
	// Allowed returns, at the time of each request, the map of a secret
	// name to the hosts it may be sent to ("api.example.com",
	// "*.example.com", "api.example.com:8443"). Secrets not in the map
	// are not pinned. A run learns pinned values as it reads them (a
	// secret of another environment, say), so the map may grow; it must
	// not be modified once returned. [Static] wraps a fixed map.
	Allowed func() map[string][]string
	// OnRefuse is called for every refused request (audit); it must not
	// block for long.
	OnRefuse func(secret, host string)
	// MaxScan bounds the request body that is buffered and scanned
	// (default DefaultMaxScan).
	MaxScan int64
}

// Static returns a Pinning.Allowed of fixed pins.
func Static(pins map[string][]string) func() map[string][]string {
	return func() map[string][]string { return pins }
}

// Pin wraps rt so that every request is checked against p before it is
// sent. As the http.Client sends each redirect hop through its transport,
// every hop is checked. A nil p, or one without Match or Allowed, returns
// rt; a request sent while no secret is pinned is not scanned.
func Pin(rt http.RoundTripper, p *Pinning) http.RoundTripper {
	if p == nil || p.Match == nil || p.Allowed == nil {
		return rt
	}
	return &pinner{next: rt, p: p}
}

type pinner struct {
	next http.RoundTripper
	p    *Pinning
}

func (t *pinner) RoundTrip(r *http.Request) (*http.Response, error) {
	pins := t.p.Allowed()
	if len(pins) == 0 {
		return t.next.RoundTrip(r)
	}
	// The host is matched in lower case but reported as the request
	// spelled it: a secret used in a DNS label stays the value the
	// redactor knows, not a lower-cased form it does not.
	shown := strings.TrimSuffix(r.URL.Hostname(), ".")
	host := strings.ToLower(shown)
	port := r.URL.Port()
	if port == "" {
		port = "443"
		if strings.EqualFold(r.URL.Scheme, "http") {
			port = "80"
		}
	}
	var sb strings.Builder
	sb.WriteString(r.URL.String())
	sb.WriteByte('\n')
	sb.WriteString(r.Host)
	sb.WriteByte('\n')
	for k, vs := range r.Header {
		for _, v := range vs {
			sb.WriteString(k)
			sb.WriteString(": ")
			sb.WriteString(v)
			sb.WriteByte('\n')
		}
	}
	// And as the receiving server reads them (Decoded): a value escaped
	// character by character is no form the redactor knows, but the
	// server reads the value.
	if err := t.checkDecoded(pins, sb.String(), host, shown, port); err != nil {
		closeBody(r)
		return nil, err
	}
	if r.Body != nil && r.Body != http.NoBody {
		max := t.p.MaxScan
		if max <= 0 {
			max = DefaultMaxScan
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, max+1))
		closeBody(r)
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		if int64(len(data)) > max {
			return nil, fmt.Errorf("%w: the request body is over %d bytes and cannot be checked for pinned secrets", ErrPinned, max)
		}
		if err := t.checkDecoded(pins, string(data), host, shown, port); err != nil {
			return nil, err
		}
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(data))
		r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		r2.ContentLength = int64(len(data))
		r = r2
	}
	return t.next.RoundTrip(r)
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}

// checkDecoded is check of s, then of what its receiver decodes of it.
func (t *pinner) checkDecoded(pins map[string][]string, s, host, shown, port string) error {
	if err := t.check(pins, s, host, shown, port); err != nil {
		return err
	}
	if d := Decoded(s); d != "" {
		return t.check(pins, d, host, shown, port)
	}
	return nil
}

// check refuses when s carries a secret pinned to other hosts than host
// (lower case); the refusal names the host as shown.
func (t *pinner) check(pins map[string][]string, s, host, shown, port string) error {
	names := t.p.Match(s)
	sort.Strings(names)
	for _, n := range names {
		allowed, pinned := pins[n]
		if !pinned || HostAllowed(allowed, host, port) {
			continue
		}
		if t.p.OnRefuse != nil {
			t.p.OnRefuse(n, shown)
		}
		return &PinError{Secret: n, Host: shown, Allowed: allowed}
	}
	return nil
}

// HostAllowed reports whether host (lower case, no port) on port matches
// one of the patterns: "api.example.com" (any port), "*.example.com"
// (subdomains only) or "api.example.com:8443" (that port only).
func HostAllowed(patterns []string, host, port string) bool {
	for _, pat := range patterns {
		pat = strings.ToLower(strings.TrimSpace(pat))
		ph, pp := pat, ""
		if h, p, err := net.SplitHostPort(pat); err == nil {
			ph, pp = h, p
		}
		if pp != "" && pp != port {
			continue
		}
		ph = strings.TrimSuffix(ph, ".")
		if strings.HasPrefix(ph, "*.") {
			if strings.HasSuffix(host, ph[1:]) && len(host) > len(ph)-1 {
				return true
			}
			continue
		}
		if ph == host {
			return true
		}
	}
	return false
}

// Decoded returns what a receiver may read in s once it decodes it: s
// with its percent-escapes, its JSON string escapes (\uXXXX, \n, \" ...)
// and its HTML/XML character references (&#103;, &#x67;, &amp;) decoded,
// each of these on what the others decoded too (a JSON document in a form
// field, percent-escaped: `payload=%7B%22k%22%3A%22%5Cu0067...`), up to
// three decodings deep, joined by newlines; "" when s has no escape.
// Malformed escapes are left as they are (a stray '%' must not keep the
// rest from being decoded).
func Decoded(s string) string {
	seen := map[string]bool{s: true}
	var views []string
	next := []string{s}
	for depth := 0; depth < maxDecodings && len(next) > 0; depth++ {
		var more []string
		for _, v := range next {
			for _, d := range [...]func(string) (string, bool){percentDecoded, jsonDecoded, entityDecoded} {
				if w, ok := d(v); ok && !seen[w] {
					seen[w] = true
					views = append(views, w)
					more = append(more, w)
				}
			}
		}
		next = more
	}
	return strings.Join(views, "\n")
}

// maxDecodings bounds how many decodings deep Decoded goes (each view at
// most doubles the text scanned).
const maxDecodings = 3

func percentDecoded(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return "", false
	}
	return percentDecode(s), true
}

func jsonDecoded(s string) (string, bool) {
	if strings.IndexByte(s, '\\') < 0 {
		return "", false
	}
	return jsonDecode(s), true
}

func entityDecoded(s string) (string, bool) {
	if strings.IndexByte(s, '&') < 0 {
		return "", false
	}
	return html.UnescapeString(s), true
}

// percentDecode decodes every well-formed %XX of s.
func percentDecode(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			s = s[i+3:]
			continue
		}
		b.WriteByte('%')
		s = s[i+1:]
	}
}

// jsonDecode decodes every JSON string escape of s, wherever it is.
func jsonDecode(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			j := strings.IndexByte(s[i:], '\\')
			if j < 0 {
				b.WriteString(s[i:])
				break
			}
			b.WriteString(s[i : i+j])
			i += j
		}
		if i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch c := s[i+1]; c {
		case '"', '\\', '/':
			b.WriteByte(c)
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			r, n := jsonRune(s[i:])
			if n == 0 {
				b.WriteByte(s[i])
				continue
			}
			b.WriteRune(r)
			i += n - 1
			continue
		default:
			b.WriteByte(s[i])
			continue
		}
		i++
	}
	return b.String()
}

// jsonRune decodes the \uXXXX (or surrogate pair) at the start of s; n
// is how many bytes it took, 0 when it is malformed.
func jsonRune(s string) (rune, int) {
	r, ok := hex4(s)
	if !ok {
		return 0, 0
	}
	if utf16.IsSurrogate(r) {
		if r2, ok := hex4(s[6:]); ok {
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, 12
			}
		}
	}
	return r, 6
}

// hex4 reads \uXXXX at the start of s.
func hex4(s string) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[2:6]) {
		if !isHex(c) {
			return 0, false
		}
		r = r<<4 | rune(unhex(c))
	}
	return r, true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
