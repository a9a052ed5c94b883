package flows_test

import (
	"reflect"
	"testing"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
)

// TestSecretUsage (issue 18 item 2): the server computes where a project's
// saved flows and installations name each secret, every way a flow can
// name one: an expression, a webhook's signing secret, an exec block's
// secrets list; an installation's config. A flow that computes names at
// run time is listed as unknown.
func TestSecretUsage(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		for _, n := range []string{"API_TOKEN", "HOOK_KEY", "DEPLOY_KEY", "SLACK_TOKEN", "IDLE"} {
			s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": n, "value": "value-of-" + n + "-7Qx2kP9z", "project": "ops"})
		}
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name": "call", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "return secrets.API_TOKEN.length"}}},
		})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name": "hook", "trigger": map[string]any{"type": "webhook", "signing_secret": "HOOK_KEY", "signature": "github"},
			"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "`${secrets['API_TOKEN'].length}`"}}},
		})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name": "deploy", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "x", "type": "exec", "config": map[string]any{
				"command": "'/bin/true'", "secrets": []any{map[string]any{"key": "DEPLOY_KEY", "as_env_var": "KEY"}}}}},
		})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name": "dynamic", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "d", "type": "code", "config": map[string]any{"code": "return secrets[input.name].length"}}},
		})
		s.Must(201, "POST", "/api/v1/projects/ops/installations", map[string]any{"app": "slack", "name": "bot",
			"config": map[string]any{"bot_token": "secrets.SLACK_TOKEN"}})

		got := s.Must(200, "GET", "/api/v1/projects/ops/secret-usage", nil)
		want := map[string]any{
			"API_TOKEN":   map[string]any{"flows": []any{"call", "hook"}, "installations": []any{}},
			"HOOK_KEY":    map[string]any{"flows": []any{"hook"}, "installations": []any{}},
			"DEPLOY_KEY":  map[string]any{"flows": []any{"deploy"}, "installations": []any{}},
			"SLACK_TOKEN": map[string]any{"flows": []any{}, "installations": []any{"bot"}},
		}
		if !reflect.DeepEqual(got["secrets"], want) {
			t.Errorf("secrets: %v\nwant %v", got["secrets"], want)
		}
		if !reflect.DeepEqual(got["unknown_flows"], []any{"dynamic"}) {
			t.Errorf("unknown_flows: %v", got["unknown_flows"])
		}
		// A viewer may read it; a stranger may not.
		if r := s.Do("GET", "/api/v1/projects/nope/secret-usage", nil); r.Status != 404 && r.Status != 403 {
			t.Errorf("unknown project: %d", r.Status)
		}
	}, func(c *app.Config) { c.Exec = true })
}
