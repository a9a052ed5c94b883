package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// client talks to a Hushflow server with HUSHFLOW_ADDR and HUSHFLOW_TOKEN.
type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient() (*client, error) { return newClientFor(envOr("HUSHFLOW_ADDR", defaultAddr)) }

// defaultAddr is the server's default listen address, and so the client's
// default HUSHFLOW_ADDR.
const defaultAddr = "127.0.0.1:8080"

// newClientFor is a client of the server at addr (host:port or a URL).
func newClientFor(addr string) (*client, error) {
	addr = baseURL(addr)
	token := os.Getenv("HUSHFLOW_TOKEN")
	if token == "" {
		return nil, &statusError{status: exitAuth, err: errors.New("HUSHFLOW_TOKEN is not set: export the token printed by `hushflow serve` (or made by `hushflow token create`)")}
	}
	return &client{base: addr, token: token, http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

// baseURL is addr as a URL without a final slash: host:port is http.
func baseURL(addr string) string {
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}

// apiError is the server's error body.
type apiError struct {
	Status int
	Code   string `json:"code"`
	Msg    string `json:"message"`
}

func (e *apiError) Error() string {
	if e.Status == http.StatusUnauthorized {
		// The client did send a token (it refuses to start without
		// one): the server does not say why it refused it.
		return fmt.Sprintf("the server refused the token in HUSHFLOW_TOKEN: it is unknown, revoked or expired, or for another server than HUSHFLOW_ADDR (HTTP %d)", e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Status)
}

// do sends a JSON request and decodes a JSON response into out (if not nil).
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &unreachableError{base: c.base, err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error apiError `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil && eb.Error.Msg != "" {
			eb.Error.Status = resp.StatusCode
			return &eb.Error
		}
		return &apiError{Status: resp.StatusCode, Msg: http.StatusText(resp.StatusCode)}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

func unwrapURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}
