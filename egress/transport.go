package egress

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Limits of the transport built by NewTransport.
const (
	DialTimeout           = 10 * time.Second
	TLSHandshakeTimeout   = 10 * time.Second
	ResponseHeaderTimeout = 30 * time.Second
	MaxResponseHeaderByte = 64 << 10
	// MaxRedirects is the most redirects a client of this package follows.
	MaxRedirects = 10
)

// NewTransport returns a transport that dials only addresses p allows.
// The check runs in the dialer's Control function, on the IP address of
// each connection after DNS resolution, so names that resolve to an
// internal address and DNS rebinding are refused. Proxy settings of the
// environment are ignored (Proxy is nil): a proxy would make every
// destination look like the proxy's address.
//
// The transport is safe for concurrent use and meant to be shared by every
// run of a server (connection reuse).
func NewTransport(p Policy) *http.Transport {
	d := &net.Dialer{
		Timeout:   DialTimeout,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot parse dial address %q", ErrRefused, address)
			}
			return p.Check(ap.Addr())
		},
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    10,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    TLSHandshakeTimeout,
		ResponseHeaderTimeout:  ResponseHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: MaxResponseHeaderByte,
	}
}

// schemeGuard refuses every scheme but http and https before anything is
// sent.
type schemeGuard struct{ next http.RoundTripper }

func (g schemeGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := checkScheme(r.URL); err != nil {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, err
	}
	return g.next.RoundTrip(r)
}

func checkScheme(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return nil
	}
	return fmt.Errorf("%w: scheme %q is not allowed; use http or https", ErrRefused, u.Scheme)
}

// Client returns the HTTP client of one run: requests go through base
// (usually the server's NewTransport), pinned secrets are checked on every
// hop by pin (nil: no pinning), and only http and https are allowed.
//
// With followRedirects, at most MaxRedirects redirects are followed; when
// a redirect leaves the original host, Authorization, Cookie,
// Proxy-Authorization, API-key headers and any header whose value carries
// a known secret (pin.Match) are dropped. Without it, a redirect response
// is returned as is.
func Client(base http.RoundTripper, pin *Pinning, followRedirects bool) *http.Client {
	if base == nil {
		base = NewTransport(Policy{})
	}
	c := &http.Client{Transport: schemeGuard{next: Pin(base, pin)}}
	if followRedirects {
		c.CheckRedirect = CheckRedirect(pin)
	} else {
		c.CheckRedirect = NoRedirects
	}
	return c
}

// NoRedirects is a CheckRedirect function that returns redirect responses
// instead of following them.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// credentialHeaders are dropped when a redirect changes host.
var credentialHeaders = []string{"Authorization", "Cookie", "Cookie2", "Proxy-Authorization",
	"X-Api-Key", "Api-Key", "X-Auth-Token", "Www-Authenticate"}

// CheckRedirect returns a CheckRedirect function that follows at most
// MaxRedirects redirects, refuses schemes other than http and https and,
// when a hop's host differs from the original request's, strips
// credential headers and every header whose value carries a secret known
// to pin, and refuses to send again a body (a 307 or 308 keeps it) that
// carries one.
func CheckRedirect(pin *Pinning) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= MaxRedirects {
			return fmt.Errorf("stopped after %d redirects", MaxRedirects)
		}
		if err := checkScheme(req.URL); err != nil {
			return err
		}
		if len(via) > 0 && !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
			for _, h := range credentialHeaders {
				req.Header.Del(h)
			}
			if pin != nil && pin.Match != nil {
				for k, vs := range req.Header {
					for _, v := range vs {
						if len(pin.Match(v)) > 0 {
							req.Header.Del(k)
							break
						}
					}
				}
				if err := checkResentBody(req, via[len(via)-1], pin); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// checkResentBody refuses a redirect to another host that would send
// the request's body again (307, 308) when the body carries a secret:
// the flow sent it to the first host, not to wherever that host points.
func checkResentBody(req, prev *http.Request, pin *Pinning) error {
	if req.GetBody == nil || req.ContentLength == 0 {
		return nil
	}
	body, err := req.GetBody()
	if err != nil {
		return fmt.Errorf("read the request body again for the redirect: %w", err)
	}
	defer body.Close()
	max := pin.MaxScan
	if max <= 0 {
		max = DefaultMaxScan
	}
	data, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return fmt.Errorf("read the request body again for the redirect: %w", err)
	}
	if int64(len(data)) > max {
		return fmt.Errorf("%w: a redirect to another host would send the request body again, and it is over %d bytes and cannot be checked for secrets", ErrPinned, max)
	}
	if names := pin.Match(string(data)); len(names) > 0 {
		sort.Strings(names)
		return fmt.Errorf("%w: a redirect to %s would send the request body again, and it holds the value of secret %q: not followed (the flow sent it to %s)",
			ErrPinned, req.URL.Hostname(), names[0], prev.URL.Hostname())
	}
	return nil
}

// CleanError removes the query, fragment and user information from the
// URL that a *url.Error quotes (net/http hides only the password, so a
// token in the query would be shown). The error is changed in place and
// returned. Callers still redact the result: a secret may sit in a path
// or a host name.
//
// A refusal of the address policy or of secret host pinning is the whole
// message: "Get \"https://x/p\": dial tcp 10.1.2.3:443: egress refused: ..."
// named the request twice more after the block's own "GET https://x/p: ".
// The error still wraps the chain (errors.Is and errors.As see it).
func CleanError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = SafeURL(ue.URL)
	}
	var re *RefusedError
	if errors.As(err, &re) {
		return &refusal{msg: re.Error(), err: err}
	}
	var pe *PinError
	if errors.As(err, &pe) {
		return &refusal{msg: pe.Error(), err: err}
	}
	return err
}

// refusal is an error whose message is its cause's refusal alone.
type refusal struct {
	msg string
	err error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.err }

// SafeURL returns raw without user information, query and fragment.
func SafeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			raw = raw[:i]
		}
		if i := strings.Index(raw, "@"); i >= 0 {
			if j := strings.Index(raw, "://"); j >= 0 && j < i {
				raw = raw[:j+3] + raw[i+1:]
			}
		}
		return raw
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = ""
		u.ForceQuery = false
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
