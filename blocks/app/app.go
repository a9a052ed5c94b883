// Package app is the "app" block: it runs an action of an app
// installation ({"installation": "demo-bot", "action": "post_message",
// "with": {...}}), sending the request the installation's manifest
// describes with the run's egress client.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/blocks/httpblock"
	"github.com/hushflow/hushflow/engine/ordered"
)

func init() { blocks.MustRegister(Info()) }

// Info describes the app block.
func Info() blocks.Info {
	return blocks.Info{ID: "app", Spec: spec(), New: func() blocks.Block { return new(App) }}
}

var (
	_ blocks.Block       = (*App)(nil)
	_ blocks.Provisioner = (*App)(nil)
	_ blocks.Validator   = (*App)(nil)
	_ blocks.Repeatable  = (*App)(nil)
)

// App is the configuration of an app block.
type App struct {
	// Installation names an app installation of the flow's project.
	Installation string `json:"installation"`
	// Action is one of the app's actions (post_message, create_message,
	// request).
	Action string `json:"action"`
	// With holds the action's inputs.
	With map[string]any `json:"with,omitempty"`
	// Timeout bounds the request (default 30s).
	Timeout blocks.Dur `json:"timeout,omitempty"`

	apps blocks.AppResolver
}

func spec() blocks.Spec {
	return blocks.Spec{
		Summary: "Run an action of an app installation (Slack, Anthropic, ...); the output is {status, headers, body}.",
		Fields: []blocks.Field{
			{Name: "installation", Type: blocks.String, Required: true, Doc: "Name of an app installation of this project.", Example: "'demo-bot'"},
			{Name: "action", Type: blocks.String, Required: true, Doc: "The app action, such as post_message.", Example: "'post_message'"},
			{Name: "with", Type: blocks.Object, Doc: "The action's inputs.", Example: "({channel: 'C0123', text: `Order ${input.id} shipped`})"},
			{Name: "timeout", Type: blocks.Duration, Default: "30s", Doc: "Time limit of the request."},
		},
	}
}

// Provision keeps the server's app resolver. It may be nil at save time.
func (a *App) Provision(env *blocks.Env) error {
	if env != nil {
		a.apps = env.Apps
	}
	return nil
}

// Validate checks the fields that are set.
func (a *App) Validate() error {
	if a.Timeout < 0 {
		return errors.New("timeout must not be negative")
	}
	return nil
}

// RepeatSafe reports whether the action may be sent again after an
// interruption: its manifest marks it idempotent (Anthropic's
// create_message), or its method is GET, HEAD, OPTIONS, PUT or DELETE.
func (a *App) RepeatSafe(ctx context.Context, in *blocks.Input) (bool, string, error) {
	if a.apps == nil || a.Installation == "" || a.Action == "" {
		return false, "", nil // Run reports what is missing
	}
	ok, err := a.apps.RepeatSafe(ctx, in, a.Installation, a.Action, a.With)
	if err != nil || ok {
		return ok, "", err
	}
	return false, fmt.Sprintf("app action %s.%s is not idempotent, so sending it again could repeat its effect (a second message, say)", a.Installation, a.Action), nil
}

// Run builds the action's request and sends it. A non-2xx response, or a
// Slack-style {"ok": false, "error": "..."} answer, is an error naming the
// status and the service's error code.
func (a *App) Run(ctx context.Context, in *blocks.Input) (any, error) {
	if a.Installation == "" || a.Action == "" {
		return nil, errors.New("installation and action are required")
	}
	if a.apps == nil {
		return nil, errors.New("app installations are not available in this server")
	}
	req, err := a.apps.Action(ctx, in, a.Installation, a.Action, a.With)
	if err != nil {
		return nil, err
	}
	var body []byte
	if req.Body != nil {
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s.%s: read request body: %w", a.Installation, a.Action, err)
		}
	}
	res, err := httpblock.Send(ctx, in, httpblock.Exchange{
		Client: in.HTTP, Method: req.Method, URL: req.URL.String(), Header: req.Header, Body: body,
		Timeout: a.Timeout.D(),
	})
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", a.Installation, a.Action, err)
	}
	parsed := ordered.Plain(res.Body)
	if code := errorCode(parsed); res.Status < 200 || res.Status > 299 {
		if code == "" {
			code = "no error code"
		}
		return nil, fmt.Errorf("%s.%s: status %d: %s", a.Installation, a.Action, res.Status, code)
	} else if m, ok := parsed.(map[string]any); ok && m["ok"] == false {
		if code == "" {
			code = "ok is false"
		}
		return nil, fmt.Errorf("%s.%s: the service answered an error: %s", a.Installation, a.Action, code)
	}
	return res.Output(), nil
}

// errorCode finds a short error code in a JSON error body: Slack's
// {"error": "channel_not_found"}, Anthropic's {"error": {"type": ...}}, or
// {"error": {"code"|"message": ...}}.
func errorCode(body any) string {
	m, ok := body.(map[string]any)
	if !ok {
		return ""
	}
	switch e := m["error"].(type) {
	case string:
		return short(e)
	case map[string]any:
		var parts []string
		for _, k := range []string{"type", "code", "message"} {
			if s, ok := e[k].(string); ok && s != "" {
				parts = append(parts, short(s))
			}
		}
		return strings.Join(parts, ": ")
	}
	if s, ok := m["message"].(string); ok {
		return short(s)
	}
	return ""
}

func short(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
