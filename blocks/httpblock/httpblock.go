// Package httpblock is the "http" block: one HTTP request, sent with the
// run's egress client, with retries, a timeout, a redirect choice and a
// response size limit. Its output is {status, headers, body}, the body
// parsed when the response is JSON.
package httpblock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/egress"
)

func init() { blocks.MustRegister(Info()) }

// Info describes the http block.
func Info() blocks.Info {
	return blocks.Info{ID: "http", Spec: spec(), New: func() blocks.Block { return new(Request) }}
}

var (
	_ blocks.Block      = (*Request)(nil)
	_ blocks.Validator  = (*Request)(nil)
	_ blocks.Repeatable = (*Request)(nil)
)

// Request is the configuration of an http block.
type Request struct {
	// Method is the HTTP method (default GET).
	Method string `json:"method,omitempty"`
	// URL is the http or https URL.
	URL string `json:"url"`
	// Query holds parameters added to the URL's query; an array value
	// adds the parameter once per element.
	Query map[string]any `json:"query,omitempty"`
	// Headers are request headers; an array value sends the header once
	// per element.
	Headers map[string]any `json:"headers,omitempty"`
	// Body is the request body: an object or array is sent as JSON, a
	// string as text, unless BodyType says otherwise.
	Body any `json:"body,omitempty"`
	// BodyType is "json", "form" (an object sent as
	// application/x-www-form-urlencoded) or "text".
	BodyType string `json:"body_type,omitempty"`
	// Timeout bounds each attempt (default: what is left of the block's
	// timeout).
	Timeout blocks.Dur `json:"timeout,omitempty"`
	// Retry retries on network errors and 5xx responses.
	Retry *Retry `json:"retry,omitempty"`
	// FollowRedirects follows up to 10 redirects (default true).
	FollowRedirects *bool `json:"follow_redirects,omitempty"`
	// MaxResponseBytes bounds the response body (default 10 MiB, at most
	// 100 MiB); a larger body fails the block.
	MaxResponseBytes int64 `json:"max_response_bytes,omitempty"`
	// IdempotencyKey is sent as the Idempotency-Key header (the convention
	// of Stripe and the IETF draft): a service that honours it performs a
	// request once however many times it is sent, so the block may be
	// sent again when a run interrupted while sending it resumes. Make it
	// the same for every attempt of the same operation, such as
	// `${run.id}-charge`.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// RepeatSafe reports whether the request may be sent again after an
// interruption: GET, HEAD, OPTIONS, PUT and DELETE are idempotent by
// definition (RFC 9110), any method with an idempotency key is made so by
// the service.
func (r *Request) RepeatSafe(_ context.Context, in *blocks.Input) (bool, string, error) {
	method := strings.ToUpper(r.Method)
	switch {
	case r.IdempotencyKey != "":
		return true, "", nil
	case method == "", method == http.MethodGet, method == http.MethodHead, method == http.MethodOptions,
		method == http.MethodPut, method == http.MethodDelete:
		return true, "", nil
	}
	step := "step"
	if in != nil && in.BlockID != "" {
		step = in.BlockID
	}
	return false, fmt.Sprintf("an http %s without idempotency_key may already have reached the service, and sending it again could repeat its effect; "+
		"set idempotency_key (sent as the Idempotency-Key header, such as `${run.id}-%s`) if the service honours it", method, step), nil
}

// Retry is the retry policy of a request.
type Retry struct {
	// Attempts is the total number of tries (1 = no retry; at most 10).
	Attempts int `json:"attempts"`
	// Backoff is the wait before the first retry (default 500ms); it
	// doubles each time, up to 30s.
	Backoff blocks.Dur `json:"backoff,omitempty"`
}

func spec() blocks.Spec {
	return blocks.Spec{
		Summary: "Send an HTTP request; the output is {status, headers, body}, the body parsed when the response is JSON.",
		Fields: []blocks.Field{
			{Name: "method", Type: blocks.String, Default: "GET", Doc: "HTTP method.", Example: "'POST'"},
			{Name: "url", Type: blocks.String, Required: true, Doc: "http or https URL.", Example: "`https://api.example.com/items/${input.id}`"},
			{Name: "query", Type: blocks.Object, Doc: "Query parameters added to the URL; an array value repeats the parameter.", Example: "({limit: 10})"},
			{Name: "headers", Type: blocks.Object, Doc: "Request headers. Credential headers are masked in run events.", Example: "({Authorization: `Bearer ${secrets.API_TOKEN}`})"},
			{Name: "body", Type: blocks.Any, Doc: "Request body: an object or array is sent as JSON, a string as text, unless body_type says otherwise.", Example: "({text: input.text})"},
			{Name: "body_type", Type: blocks.String, Doc: "json, form (an object, URL-encoded) or text."},
			{Name: "timeout", Type: blocks.Duration, Doc: "Time limit of each attempt (default: what is left of the block's timeout, 30s unless the block sets one)."},
			{Name: "retry", Type: blocks.Object, Doc: "{attempts, backoff}: retry on network errors and 5xx responses, waiting backoff (doubling) between tries."},
			{Name: "follow_redirects", Type: blocks.Bool, Default: true, Doc: "Follow up to 10 redirects; credentials are not carried to another host."},
			{Name: "max_response_bytes", Type: blocks.Number, Default: DefaultMaxResponseBytes, Doc: "Largest response body accepted (at most 100 MiB); a larger body fails the block."},
			{Name: "idempotency_key", Type: blocks.String, Doc: "Sent as the Idempotency-Key header. With it, a POST or PATCH interrupted by a replica stopping is sent again (with the same key) when the run resumes, instead of failing the run.", Example: "`${run.id}-charge`"},
		},
	}
}

// Validate checks the fields that are set. Presence of url is checked by
// Run, because at save time an expression field is not evaluated yet.
func (r *Request) Validate() error {
	if r.Method != "" && !validMethod(r.Method) {
		return fmt.Errorf("method %q is not an HTTP method", r.Method)
	}
	if r.URL != "" {
		if _, err := parseURL(r.URL); err != nil {
			return err
		}
	}
	switch r.BodyType {
	case "", "json", "form", "text":
	default:
		return fmt.Errorf("body_type %q: use json, form or text", r.BodyType)
	}
	if r.BodyType == "form" && r.Body != nil {
		if _, ok := r.Body.(map[string]any); !ok {
			return fmt.Errorf("body_type form needs an object body")
		}
	}
	if r.Timeout < 0 {
		return fmt.Errorf("timeout must not be negative")
	}
	if r.Retry != nil && (r.Retry.Attempts < 0 || r.Retry.Attempts > MaxAttempts || r.Retry.Backoff < 0) {
		return fmt.Errorf("retry.attempts must be between 1 and %d and retry.backoff not negative", MaxAttempts)
	}
	if r.MaxResponseBytes < 0 || r.MaxResponseBytes > MaxMaxResponseBytes {
		return fmt.Errorf("max_response_bytes must be between 1 and %d", MaxMaxResponseBytes)
	}
	return nil
}

func validMethod(m string) bool {
	if m == "" || len(m) > 20 {
		return false
	}
	for _, c := range m {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parseURL checks an http(s) URL. The error never quotes the URL, which
// may carry a token.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("url is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url must start with http:// or https:// (scheme %q)", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("url has no host")
	}
	return u, nil
}

// Run sends the request.
func (r *Request) Run(ctx context.Context, in *blocks.Input) (any, error) {
	if r.URL == "" {
		return nil, errors.New("url is required")
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	u, _ := parseURL(r.URL)
	if len(r.Query) > 0 {
		q := u.Query()
		for _, k := range sortedKeys(r.Query) {
			vals, err := scalars(r.Query[k])
			if err != nil {
				return nil, fmt.Errorf("query %q: %w", k, err)
			}
			for _, v := range vals {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	h := http.Header{}
	for _, k := range sortedKeys(r.Headers) {
		if in != nil && in.Redact != nil {
			if masked := in.Redact(k); masked != k {
				// A header name goes out case-folded (X-Abc-Def, or
				// lower case over HTTP/2), a form of the value that
				// masking and host pinning would not know.
				return nil, fmt.Errorf("header name %q holds a secret value: a secret goes in a header's value, never in its name", masked)
			}
		}
		vals, err := scalars(r.Headers[k])
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", k, err)
		}
		for _, v := range vals {
			h.Add(k, v)
		}
	}
	body, ctype, err := encodeBody(r.Body, r.BodyType)
	if err != nil {
		return nil, err
	}
	if ctype != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", ctype)
	}
	if r.IdempotencyKey != "" {
		h.Set("Idempotency-Key", r.IdempotencyKey)
	}
	method := strings.ToUpper(r.Method)
	if method == "" {
		method = http.MethodGet
	}
	client := in.HTTP
	if client != nil && r.FollowRedirects != nil && !*r.FollowRedirects {
		c := *client
		c.CheckRedirect = egress.NoRedirects
		client = &c
	}
	x := Exchange{Client: client, Method: method, URL: u.String(), Header: h, Body: body,
		Timeout: r.Timeout.D(), MaxResponseBytes: r.MaxResponseBytes}
	if r.Retry != nil {
		x.Attempts, x.Backoff = r.Retry.Attempts, r.Retry.Backoff.D()
	}
	res, err := Send(ctx, in, x)
	if err != nil {
		return nil, err
	}
	return res.Output(), nil
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// scalars turns a header or query value into strings: a scalar gives one,
// an array one per element, null none.
func scalars(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		var out []string
		for _, e := range x {
			s, err := scalar(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := scalar(v)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case json.Number:
		return x.String(), nil
	case int, int64:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("must be a string, number, boolean or an array of them")
}

// encodeBody returns the bytes and content type of a body.
func encodeBody(body any, typ string) ([]byte, string, error) {
	if body == nil {
		return nil, "", nil
	}
	if typ == "" {
		if _, ok := body.(string); ok {
			typ = "text"
		} else {
			typ = "json"
		}
	}
	switch typ {
	case "text":
		s, err := scalar(body)
		if err != nil {
			return nil, "", fmt.Errorf("body: a text body %w", err)
		}
		return []byte(s), "text/plain; charset=utf-8", nil
	case "form":
		m, ok := body.(map[string]any)
		if !ok {
			return nil, "", errors.New("body_type form needs an object body")
		}
		f := url.Values{}
		for _, k := range sortedKeys(m) {
			vals, err := scalars(m[k])
			if err != nil {
				return nil, "", fmt.Errorf("body field %q: %w", k, err)
			}
			for _, v := range vals {
				f.Add(k, v)
			}
		}
		return []byte(f.Encode()), "application/x-www-form-urlencoded", nil
	default:
		b, err := json.Marshal(body)
		if err != nil {
			return nil, "", fmt.Errorf("body: %w", err)
		}
		return b, "application/json", nil
	}
}
