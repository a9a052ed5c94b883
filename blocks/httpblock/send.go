package httpblock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/egress"
	"github.com/hushflow/hushflow/engine/ordered"
)

// Limits and defaults shared by the http and app blocks.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 10 << 20
	MaxMaxResponseBytes     = 100 << 20
	// EventBodyLimit bounds the body text recorded in a request or
	// response event; the block's output is not cut.
	EventBodyLimit = 64 << 10
	// Mask replaces credential headers and query values in events that
	// hold no value the run's redactor knows (see blocks.Input.MaskOf).
	Mask = "[REDACTED]"
	// MaxAttempts bounds retry.attempts.
	MaxAttempts = 10
)

// ErrTooLarge is wrapped by the error of a response body over the limit.
var ErrTooLarge = errors.New("response body too large")

// Exchange is one request the http or app block sends.
type Exchange struct {
	// Client sends the request (the run's egress client).
	Client *http.Client
	// Method, URL and Header describe the request; Body is sent as is on
	// every attempt.
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// Timeout bounds each attempt (default DefaultTimeout).
	Timeout time.Duration
	// Attempts is the total number of tries on network errors and 5xx
	// responses (default 1); Backoff the wait before the first retry,
	// doubled each time (default 500ms).
	Attempts int
	Backoff  time.Duration
	// MaxResponseBytes bounds the response body (default
	// DefaultMaxResponseBytes); a larger body is an error wrapping
	// ErrTooLarge.
	MaxResponseBytes int64
}

// Result is a response, as the block output shows it.
type Result struct {
	Status  int
	Header  http.Header
	Body    any // parsed JSON when the content type is JSON, else a string
	RawBody []byte
}

// Output returns the block output {status, headers, body}.
func (r *Result) Output() map[string]any {
	return map[string]any{"status": r.Status, "headers": flatHeaders(r.Header, nil), "body": r.Body}
}

// Send performs x, emitting an http_request event before each attempt
// and an http_response (or http_error) event after it. Events mask
// credential headers and query values by name; the executor redacts
// them again with the run's redactor. Errors name the method and the URL
// without its query; the executor redacts them.
func Send(ctx context.Context, in *blocks.Input, x Exchange) (*Result, error) {
	if x.Client == nil {
		return nil, errors.New("no HTTP client for this run (the executor sets Input.HTTP)")
	}
	x.Timeout = attemptTimeout(ctx, x.Timeout)
	if x.Attempts <= 0 {
		x.Attempts = 1
	}
	if x.Attempts > MaxAttempts {
		x.Attempts = MaxAttempts
	}
	if x.Backoff <= 0 {
		x.Backoff = 500 * time.Millisecond
	}
	if x.MaxResponseBytes <= 0 {
		x.MaxResponseBytes = DefaultMaxResponseBytes
	}
	where := x.Method + " " + egress.SafeURL(x.URL)
	backoff := x.Backoff
	for attempt := 1; ; attempt++ {
		res, retry, err := sendOnce(ctx, in, x, attempt)
		if !retry || attempt >= x.Attempts {
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			return res, nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = fmt.Errorf("status %d", res.Status)
			}
			return nil, fmt.Errorf("%s: %w (retry cancelled: %v)", where, err, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// attemptTimeout is the time limit of each attempt: the exchange's own,
// else what is left of the block's (ctx's deadline), else DefaultTimeout.
func attemptTimeout(ctx context.Context, own time.Duration) time.Duration {
	if own > 0 {
		return own
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl).Round(time.Millisecond); left > 0 {
			return left
		}
	}
	return DefaultTimeout
}

// sendOnce makes one attempt. retry reports whether the failure is worth
// another attempt (network error or 5xx).
func sendOnce(ctx context.Context, in *blocks.Input, x Exchange, attempt int) (res *Result, retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, x.Timeout)
	defer cancel()
	var body io.Reader
	if x.Body != nil {
		body = bytes.NewReader(x.Body)
	}
	req, err := http.NewRequestWithContext(actx, x.Method, x.URL, body)
	if err != nil {
		return nil, false, egress.CleanError(err)
	}
	for k, vs := range x.Header {
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "Hushflow")
	}
	emit(in, "http_request", map[string]any{
		"method": x.Method, "url": eventURL(in, req.URL), "headers": flatHeaders(req.Header, maskOf(in)),
		"body": eventBody(x.Body), "attempt": attempt,
	})
	start := time.Now()
	resp, err := x.Client.Do(req)
	if err != nil {
		err = egress.CleanError(err)
		if ctx.Err() == nil && actx.Err() != nil {
			err = fmt.Errorf("timed out after %s: %w", x.Timeout, err)
		}
		emit(in, "http_error", map[string]any{
			"method": x.Method, "url": eventURL(in, req.URL), "error": err.Error(),
			"duration_ms": time.Since(start).Milliseconds(), "attempt": attempt,
		})
		return nil, retryable(ctx, err), err
	}
	defer resp.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, x.MaxResponseBytes+1))
	ev := map[string]any{
		"status": resp.StatusCode, "headers": flatHeaders(resp.Header, maskOf(in)),
		"duration_ms": time.Since(start).Milliseconds(), "attempt": attempt,
	}
	if resp.Request != nil && resp.Request.URL.String() != req.URL.String() {
		ev["url"] = eventURL(in, resp.Request.URL) // after redirects
	}
	if rerr != nil {
		rerr = egress.CleanError(rerr)
		if ctx.Err() == nil && actx.Err() != nil {
			rerr = fmt.Errorf("timed out after %s reading the response: %w", x.Timeout, rerr)
		}
		ev["error"] = rerr.Error()
		emit(in, "http_response", ev)
		return nil, retryable(ctx, rerr), fmt.Errorf("read response: %w", rerr)
	}
	if int64(len(data)) > x.MaxResponseBytes {
		ev["body"] = eventBody(data[:min(len(data), EventBodyLimit)])
		ev["body_truncated"] = true
		emit(in, "http_response", ev)
		return nil, false, fmt.Errorf("%w: status %d, body over max_response_bytes (%d bytes)", ErrTooLarge, resp.StatusCode, x.MaxResponseBytes)
	}
	ev["body"] = eventBody(data)
	if len(data) > EventBodyLimit {
		ev["body_truncated"] = true
	}
	emit(in, "http_response", ev)
	res = &Result{Status: resp.StatusCode, Header: resp.Header, Body: ParseBody(resp.Header.Get("Content-Type"), data), RawBody: data}
	return res, resp.StatusCode >= 500, nil
}

func emit(in *blocks.Input, typ string, data map[string]any) {
	if in != nil && in.Emit != nil {
		in.Emit(blocks.Event{Type: typ, Data: data})
	}
}

// retryable reports whether err is a network error worth retrying: not a
// refusal of the egress policy or of pinning, not the run's cancellation.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, egress.ErrRefused) || errors.Is(err, egress.ErrPinned) {
		return false
	}
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.Err.Error(), "redirect") {
		return false
	}
	return true
}

// ParseBody returns data parsed as JSON when contentType is JSON
// (application/json or +json) and data is valid JSON, else data as a
// string. Objects are *ordered.Object, in the order of the response, which
// the next blocks' scripts see (ordered.Plain gives maps).
func ParseBody(contentType string, data []byte) any {
	if len(data) == 0 {
		return ""
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		if v, err := ordered.Decode(data); err == nil {
			return v
		}
	}
	return string(data)
}

func eventBody(b []byte) string {
	if len(b) > EventBodyLimit {
		b = b[:EventBodyLimit]
	}
	return string(b)
}

// credentialHeader reports whether a header carries credentials by its
// name and is masked in events whatever its value.
func credentialHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
		"api-key", "x-auth-token", "www-authenticate", "proxy-authenticate":
		return true
	}
	for _, w := range []string{"token", "secret", "password", "api-key", "apikey", "signature", "session", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// credentialParam reports whether a query parameter is masked in events
// by its name.
func credentialParam(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "key", "sig", "code":
		return true
	}
	for _, w := range []string{"token", "api_key", "apikey", "api-key", "secret", "password", "passwd", "signature", "auth", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// flatHeaders turns h into a JSON object of strings (values joined with
// ", "); with mask, credential headers show mask of their value.
func flatHeaders(h http.Header, mask func(string) string) map[string]any {
	out := make(map[string]any, len(h))
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.Join(h[k], ", ")
		if mask != nil && credentialHeader(k) {
			v = mask(v)
		}
		out[k] = v
	}
	return out
}

// maskOf is the mask of a whole credential value in in's events: the
// run's, which names the secret the value holds, or Mask.
func maskOf(in *blocks.Input) func(string) string {
	if in != nil && in.MaskOf != nil {
		return in.MaskOf
	}
	return func(string) string { return Mask }
}

// eventURL is EventURL of u after the run's redactor masked the known
// secret values in it: masking credential parameters by name first would
// cut a value that holds '&' in two, and its second half would then not
// be recognised.
func eventURL(in *blocks.Input, u *url.URL) string {
	if in == nil || in.Redact == nil {
		return EventURL(u)
	}
	masked, err := url.Parse(in.Redact(u.String()))
	if err != nil {
		return in.Redact(EventURL(u))
	}
	return EventURL(masked)
}

// EventURL returns u for an event: no password, and the values of query
// parameters with credential names (token, api_key, key, secret, ...)
// replaced by Mask.
func EventURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), "xxxxx")
		}
	}
	if c.RawQuery != "" {
		parts := strings.Split(c.RawQuery, "&")
		for i, p := range parts {
			k, _, hasValue := strings.Cut(p, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if hasValue && credentialParam(name) && !strings.HasPrefix(p[len(k)+1:], "[REDACTED") {
				// (A value the run's redactor masked keeps its mask,
				// which may name the secret.)
				parts[i] = k + "=" + Mask
			}
		}
		c.RawQuery = strings.Join(parts, "&")
	}
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}
