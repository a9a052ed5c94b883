package flows_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

const hookKey = "whsec_Zq81mN0pLx7RtY4vB2cK9sWd"

func runCount(t *testing.T, s *apptest.Server, project string) int {
	t.Helper()
	m := s.Must(200, "GET", "/api/v1/projects/"+project+"/runs?limit=200", nil)
	return len(m["runs"].([]any))
}

// hook posts a webhook without a token.
func hook(t *testing.T, s *apptest.Server, path string, header http.Header, body string) apptest.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+path, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Body: data, Header: resp.Header}
}

func sign(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func TestWebhookSignatures(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "HOOK_KEY", "value": hookKey, "project": "ops"})
		for _, style := range []string{"slack", "github"} {
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name":    style + "-hook",
				"trigger": map[string]any{"type": "webhook", "signing_secret": "HOOK_KEY", "signature": style},
				"blocks":  []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "input.text"}}},
			})
		}
		body := `{"text":"deploy finished"}`
		now := strconv.FormatInt(time.Now().Unix(), 10)
		stale := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)
		slack := func(ts, sig string) http.Header {
			return http.Header{"X-Slack-Request-Timestamp": {ts}, "X-Slack-Signature": {"v0=" + sig}}
		}
		github := func(sig string) http.Header { return http.Header{"X-Hub-Signature-256": {"sha256=" + sig}} }
		bad := map[string]struct {
			path string
			h    http.Header
		}{
			"slack wrong key":    {"/hooks/ops/slack-hook", slack(now, sign("other", "v0:"+now+":"+body))},
			"slack stale":        {"/hooks/ops/slack-hook", slack(stale, sign(hookKey, "v0:"+stale+":"+body))},
			"slack other body":   {"/hooks/ops/slack-hook", slack(now, sign(hookKey, "v0:"+now+":{}"))},
			"slack no signature": {"/hooks/ops/slack-hook", http.Header{}},
			"github wrong key":   {"/hooks/ops/github-hook", github(sign("other", body))},
			"github slack-style": {"/hooks/ops/github-hook", slack(now, sign(hookKey, "v0:"+now+":"+body))},
			"github not hex":     {"/hooks/ops/github-hook", github("zz")},
		}
		for name, c := range bad {
			if r := hook(t, s, c.path, c.h, body); r.Status != 401 {
				t.Errorf("%s: status %d, want 401: %s", name, r.Status, r.Body)
			}
		}
		// A flood of badly signed deliveries reads (and audits) the
		// signing secret at most once a second, not once per delivery
		// (attacker round six: 300 requests, 300 records).
		for range 100 {
			hook(t, s, "/hooks/ops/github-hook", github(sign("other", body)), body)
		}
		reads := 0
		for _, rec := range s.Must(200, "GET", "/api/v1/audit?secret=HOOK_KEY&limit=1000", nil)["records"].([]any) {
			if rec.(map[string]any)["action"] == "resolve" {
				reads++
			}
		}
		if reads < 1 || reads > 5 {
			t.Errorf("%d reads of the signing secret for %d badly signed deliveries", reads, 100+len(bad))
		}
		if n := runCount(t, s, "ops"); n != 0 {
			t.Fatalf("%d runs queued by rejected webhooks", n)
		}
		var ids []string
		for name, c := range map[string]struct {
			path string
			h    http.Header
		}{
			"slack":  {"/hooks/ops/slack-hook", slack(now, sign(hookKey, "v0:"+now+":"+body))},
			"github": {"/hooks/ops/github-hook", github(sign(hookKey, body))},
		} {
			r := hook(t, s, c.path, c.h, body)
			if r.Status != 202 {
				t.Fatalf("%s: status %d, want 202: %s", name, r.Status, r.Body)
			}
			ids = append(ids, r.JSON(t)["id"].(string))
		}
		if n := runCount(t, s, "ops"); n != 2 {
			t.Fatalf("%d runs, want 2", n)
		}
		for _, id := range ids {
			r, err := s.App.Flows.Wait(ctxTimeout(t, 30*time.Second), id)
			if err != nil || r.Status != "succeeded" || r.Trigger != "webhook" {
				t.Errorf("webhook run: %+v %v", r, err)
			}
		}
		// Unknown flow and a flow without a webhook trigger.
		if r := hook(t, s, "/hooks/ops/nope", nil, body); r.Status != 404 {
			t.Errorf("unknown flow: %d %s", r.Status, r.Body)
		}
		apptest.AssertAbsent(t, "database", apptest.DumpTables(t, s.App.DB), hookKey)
		apptest.AssertAbsent(t, "server log", s.Logs.String(), hookKey)
	})
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Schedules fire once per tick across replicas: two apps on one
// PostgreSQL database (one app on SQLite) fire the same ticks from many
// goroutines at once; each tick queues exactly one run.
func TestScheduleFiresOncePerTick(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dbc := b.Config(t)
			replicas := []*apptest.Server{apptest.Start(t, dbc, noWorkers)}
			if dbc.DatabaseURL != "" {
				second := dbc
				second.DataDir = t.TempDir()
				replicas = append(replicas, apptest.Start(t, second, noWorkers))
			}
			s := replicas[0]
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "every-minute", "trigger": map[string]any{"type": "schedule", "cron": "* * * * *", "environment": "staging"},
				"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "input.scheduled_at"}}},
			})
			// Ticks well in the future, so that the real schedulers (which
			// fire the current minute) cannot take them.
			base := time.Now().UTC().Truncate(time.Minute).Add(10 * time.Minute)
			ticks := []time.Time{base, base.Add(time.Minute), base.Add(2 * time.Minute)}
			for _, tick := range ticks {
				var wg sync.WaitGroup
				for g := 0; g < 8; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						// Any second within the minute fires that minute's tick.
						replicas[g%len(replicas)].App.Flows.FireSchedules(context.Background(), tick.Add(time.Duration(g)*time.Second))
					}()
				}
				wg.Wait()
			}
			var rows []struct{ Input, Trigger, Environment, Status string }
			if err := s.App.DB.Raw("SELECT input, trigger, environment, status FROM runs").Scan(&rows).Error; err != nil {
				t.Fatal(err)
			}
			per := map[string]int{}
			for _, r := range rows {
				var in struct {
					ScheduledAt string `json:"scheduled_at"`
				}
				_ = json.Unmarshal([]byte(r.Input), &in)
				if r.Trigger != "schedule" || r.Environment != "staging" {
					t.Errorf("run %+v", r)
				}
				per[in.ScheduledAt]++
			}
			for _, tick := range ticks {
				if n := per[tick.Format(time.RFC3339)]; n != 1 {
					t.Errorf("tick %s queued %d runs, want 1 (runs per tick: %v)", tick.Format(time.RFC3339), n, per)
				}
			}
			var nticks int64
			s.App.DB.Raw("SELECT COUNT(*) FROM schedule_ticks WHERE tick >= ?", base).Scan(&nticks)
			if nticks != int64(len(ticks)) {
				t.Errorf("%d schedule_ticks rows, want %d", nticks, len(ticks))
			}
		})
	}
}

func noWorkers(c *app.Config) { c.NoWorkers = true }

// Events queue runs of the flows whose topic pattern matches and whose
// filter holds.
func TestEventTopicsAndFilters(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "crm"})
		for name, tr := range map[string]map[string]any{
			"one-segment": {"type": "event", "topic": "records:*"},
			"any-depth":   {"type": "event", "topic": "records:**"},
			"users":       {"type": "event", "topic": "users:*"},
			"big-only":    {"type": "event", "topic": "records:*", "filter": "input.payload.amount > 100"},
		} {
			s.Must(201, "POST", "/api/v1/projects/crm/flows", map[string]any{"name": name, "trigger": tr,
				"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "input.topic"}}}})
		}
		publish := func(topic string, amount int) string {
			m := s.Must(202, "POST", "/api/v1/projects/crm/events", map[string]any{"topic": topic, "environment": "development",
				"payload": map[string]any{"amount": amount}})
			var flows []string
			for _, id := range m["runs"].([]any) {
				r := s.Must(200, "GET", "/api/v1/runs/"+id.(string), nil)
				if r["trigger"] != "event" {
					t.Errorf("run %v", r)
				}
				flows = append(flows, r["flow"].(string))
			}
			sort.Strings(flows)
			return strings.Join(flows, ",")
		}
		for _, c := range []struct {
			topic  string
			amount int
			want   string
		}{
			{"records:created", 50, "any-depth,one-segment"},
			{"records:created", 150, "any-depth,big-only,one-segment"},
			{"records:created:v2", 150, "any-depth"},
			{"records", 150, "any-depth"},
			{"users:created", 150, "users"},
			{"orders:created", 150, ""},
		} {
			if got := publish(c.topic, c.amount); got != c.want {
				t.Errorf("topic %s amount %d: runs of %q, want %q", c.topic, c.amount, got, c.want)
			}
		}
		if r := s.Do("POST", "/api/v1/projects/crm/events", map[string]any{"payload": 1}); r.Status != 400 {
			t.Errorf("event without topic: %d %s", r.Status, r.Body)
		}
		// A mistyped environment is refused, matched by a flow or not.
		for _, topic := range []string{"nobody:listens", "records:created"} {
			r := s.Do("POST", "/api/v1/projects/crm/events", map[string]any{"topic": topic, "environment": "prodution", "payload": map[string]any{"amount": 1}})
			if r.Status != 400 || !strings.Contains(string(r.Body), "unknown environment") || !strings.Contains(string(r.Body), "production") {
				t.Errorf("event %s to an unknown environment: %d %s", topic, r.Status, r.Body)
			}
		}
	})
}

// An event's runs are stored all or none. Here the second of three
// flows is at its max_concurrent_runs: the event is answered 429 and
// neither the first flow's run nor the third's is stored, so that the
// sender's retry starts each once. Before, the first flow's run went in
// and ran again with every retry.
func TestEventRunsAllOrNone(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "crm"})
		for _, name := range []string{"a-first", "b-limited", "c-last"} {
			def := map[string]any{"name": name, "trigger": map[string]any{"type": "event", "topic": "orders:*"},
				"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "input.topic"}}}}
			if name == "b-limited" {
				def["max_concurrent_runs"] = 1
				def["blocks"] = []any{map[string]any{"id": "nap", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}}}
			}
			s.Must(201, "POST", "/api/v1/projects/crm/flows", def)
		}
		count := func() string {
			var rows []struct {
				Flow string
				N    int
			}
			s.App.DB.Raw("SELECT flow, COUNT(*) AS n FROM runs GROUP BY flow ORDER BY flow").Scan(&rows)
			return fmt.Sprint(rows)
		}
		first := s.Must(202, "POST", "/api/v1/projects/crm/events", map[string]any{"topic": "orders:new", "environment": "development"})
		if n := len(first["runs"].([]any)); n != 3 {
			t.Fatalf("the first event queued %d runs, want 3", n)
		}
		// b-limited's run waits an hour: the flow is at its limit.
		r := s.Do("POST", "/api/v1/projects/crm/events", map[string]any{"topic": "orders:new", "environment": "development"})
		if r.Status != 429 || !strings.Contains(string(r.Body), `"code":"too_many_runs"`) {
			t.Fatalf("an event with a flow at its limit: %d %s", r.Status, r.Body)
		}
		if got := count(); got != "[{a-first 1} {b-limited 1} {c-last 1}]" {
			t.Errorf("runs after the refused event: %s, want one of each (none of the refused event's)", got)
		}
	})
}

// TestSlackHandshakeAndForms (issue 18 item 9): Slack's Events API checks a
// request URL with a signed url_verification event and needs its challenge
// back (no run); slash commands and interactivity arrive form-encoded and
// become input fields. Request shapes from Slack's documentation.
func TestSlackHandshakeAndForms(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "HOOK_KEY", "value": hookKey, "project": "ops"})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name":    "slack",
			"trigger": map[string]any{"type": "webhook", "signing_secret": "HOOK_KEY", "signature": "slack"},
			"blocks": []any{map[string]any{"id": "echo", "type": "code", "config": map[string]any{
				"code": "return {command: input.command ?? null, text: input.text ?? null, type: input.payload ? input.payload.type : null, action: input.payload ? input.payload.actions[0].value : null, keys: Object.keys(input)}"}}},
		})
		now := strconv.FormatInt(time.Now().Unix(), 10)
		signed := func(body, contentType string) http.Header {
			return http.Header{"X-Slack-Request-Timestamp": {now}, "X-Slack-Signature": {"v0=" + sign(hookKey, "v0:"+now+":"+body)},
				"Content-Type": {contentType}}
		}
		verify := `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`
		r := hook(t, s, "/hooks/ops/slack", signed(verify, "application/json"), verify)
		if r.Status != 200 || r.JSON(t)["challenge"] != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
			t.Fatalf("url_verification: %d %s", r.Status, r.Body)
		}
		// Unsigned, it is refused like any unsigned delivery.
		if r := hook(t, s, "/hooks/ops/slack", http.Header{}, verify); r.Status != 401 {
			t.Fatalf("unsigned url_verification: %d %s", r.Status, r.Body)
		}
		if n := runCount(t, s, "ops"); n != 0 {
			t.Fatalf("the handshake queued %d runs", n)
		}

		wait := func(r apptest.Response) map[string]any {
			t.Helper()
			if r.Status != 202 {
				t.Fatalf("delivery: %d %s", r.Status, r.Body)
			}
			run, err := s.App.Flows.Wait(ctxTimeout(t, 30*time.Second), r.JSON(t)["id"].(string))
			if err != nil || run.Status != "succeeded" {
				t.Fatalf("run: %+v %v", run, err)
			}
			got := s.Must(200, "GET", "/api/v1/runs/"+run.ID, nil)
			return got["output"].(map[string]any)
		}
		// A slash command.
		slash := "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&channel_id=C2147483705&channel_name=test" +
			"&user_id=U2147483697&user_name=Steve&command=%2Fweather&text=94070&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678" +
			"&trigger_id=13345224609.738474920.8088930838d88f008e0"
		out := wait(hook(t, s, "/hooks/ops/slack", signed(slash, "application/x-www-form-urlencoded"), slash))
		if out["command"] != "/weather" || out["text"] != "94070" {
			t.Errorf("slash command input: %v", out)
		}
		if keys := fmt.Sprint(out["keys"]); !strings.HasPrefix(keys, "[token team_id team_domain channel_id") {
			t.Errorf("form fields not in their order: %s", keys)
		}
		// Interactivity: a payload field holding JSON.
		payload := `{"type":"block_actions","user":{"id":"U0CA5"},"actions":[{"action_id":"approve","value":"deploy-42"}]}`
		inter := "payload=" + url.QueryEscape(payload)
		out = wait(hook(t, s, "/hooks/ops/slack", signed(inter, "application/x-www-form-urlencoded"), inter))
		if out["type"] != "block_actions" || out["action"] != "deploy-42" {
			t.Errorf("interactivity input: %v", out)
		}
	})
}

// A trigger's environment is checked when the flow is saved: one that
// does not exist (yet) is a warning (its runs would be refused), an
// environment on a trigger that takes its runs' environment elsewhere
// (event, manual) is refused, and so is a signing_secret written as an
// expression.
func TestTriggerEnvironmentAndSigningSecretChecked(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		blocks := []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "return 1"}}}
		r := s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "hook-prod", "trigger": map[string]any{"type": "webhook", "environment": "prod"}, "blocks": blocks})
		ws, _ := r["warnings"].([]any)
		if len(ws) != 1 || !strings.HasPrefix(fmt.Sprint(ws[0]), `trigger.environment: unknown environment "prod"; create it first or use one of: `) {
			t.Errorf("warnings %q", ws)
		}
		for name, trig := range map[string]map[string]any{
			"ev":     {"type": "event", "topic": "a:b", "environment": "production"},
			"sign":   {"type": "webhook", "signing_secret": "secrets.SLACK_SIGNING_SECRET"},
			"sign-2": {"type": "webhook", "signing_secret": "${secrets.SLACK_SIGNING_SECRET}"},
			"sign-3": {"type": "webhook", "signing_secret": "Secrets.SLACK_SIGNING_SECRET"},
		} {
			r := s.Do("POST", "/api/v1/projects/billing/flows", map[string]any{"name": name, "trigger": trig, "blocks": blocks})
			if r.Status != 400 {
				t.Errorf("%s: %d %s", name, r.Status, r.Body)
			}
		}
		// A GET of a webhook (which takes POST) is a 404 of the API's
		// shape, with its request id.
		if r := s.Do("GET", "/hooks/billing/hook-prod", nil); r.Status != 404 || !regexp.MustCompile(`"code":"not_found".*"request_id":"[0-9a-f]{16}"`).Match(r.Body) {
			t.Errorf("GET of a webhook: %d %s", r.Status, r.Body)
		}
		r2 := s.Do("POST", "/api/v1/projects/billing/flows", map[string]any{"name": "sign", "blocks": blocks,
			"trigger": map[string]any{"type": "webhook", "signing_secret": "secrets.SLACK_SIGNING_SECRET"}})
		if !strings.Contains(string(r2.Body), "signing_secret is the name of a secret, not an expression: write \\\"SLACK_SIGNING_SECRET\\\"") {
			t.Errorf("signing_secret: %s", r2.Body)
		}
	})
}

// The signing secret is read again when a delivery's signature does not
// verify with the one read last (its value may have changed), but not
// within a second of that read; and again a minute after it.
func TestWebhookSigningSecretRotates(t *testing.T) {
	clock := &apptest.Clock{}
	s := apptest.Start(t, storetest.SQLiteConfig(t), func(c *app.Config) { c.Now = clock.Now })
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
	id := s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "HOOK_KEY", "value": hookKey, "project": "ops"})["id"].(string)
	s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
		"name": "gh", "trigger": map[string]any{"type": "webhook", "signing_secret": "HOOK_KEY", "signature": "github"},
		"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'hi'"}}},
	})
	body := `{"text":"x"}`
	deliver := func(key string) int {
		return hook(t, s, "/hooks/ops/gh", http.Header{"X-Hub-Signature-256": {"sha256=" + sign(key, body)}}, body).Status
	}
	if st := deliver(hookKey); st != 202 {
		t.Fatalf("signed with the secret: %d", st)
	}
	const rotated = "whsec_rotated_9fK2xQ7zLmW3pR8vN1aB"
	s.Must(200, "PUT", "/api/v1/secrets/"+id, map[string]any{"value": rotated})
	if st := deliver(rotated); st != 401 {
		t.Fatalf("with the new value within a second of the last read: %d, want 401 (not read again yet)", st)
	}
	clock.Advance(2 * time.Second)
	if st := deliver(rotated); st != 202 {
		t.Fatalf("with the new value a moment later: %d, want 202", st)
	}
	if st := deliver(hookKey); st != 401 {
		t.Fatalf("with the old value: %d", st)
	}
}

// A webhook's JSON body nested deeper than 10,000 levels is refused with
// that reason. Before, an object just over the bound failed as "input is
// not a JSON value" and deeper arrays became a text body ({"body": "..."}),
// which the docs keep for bodies that are not JSON.
func TestWebhookBodyTooDeep(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name": "deep", "trigger": map[string]any{"type": "webhook"},
			"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'got it'"}}},
		})
		for _, tt := range []struct {
			body   string
			status int
		}{
			{strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000), 202},
			{strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001), 400},
			{`{"a":` + strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000) + "}", 400},
			{strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000), 400},
		} {
			r := s.DoToken("", "POST", "/hooks/ops/deep", tt.body)
			if r.Status != tt.status || tt.status == 400 && !strings.Contains(string(r.Body), "the webhook's body nests deeper than 10000 levels") {
				t.Errorf("a body of %d bytes: %d %s", len(tt.body), r.Status, r.Body)
			}
		}
	})
}

// A webhook keeps the flow it delivered to in its cache and inserts the
// next run only if that flow is still the same version under the same
// names, checked in the insert's own statement: a flow saved, deleted or
// made again, here or on another replica, gets its runs from its new
// version, or a 404, from the next delivery on.
func TestWebhookFlowChangedElsewhere(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			s := apptest.Start(t, cfg)
			other := s // the embedded database serves one process
			if cfg.DatabaseURL != "" {
				other = apptest.Start(t, cfg) // another replica
			}
			db := storetest.Open(t, cfg, nil).DB
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			def := func(msg string) map[string]any {
				return map[string]any{"name": "h", "trigger": map[string]any{"type": "webhook"},
					"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": msg}}}}
			}
			// deliver posts a webhook to the first server and returns the
			// run's flow version and whether its flow id is the flow's.
			deliver := func(what string) (int, bool) {
				t.Helper()
				r := hook(t, s, "/hooks/ops/h", nil, `{}`)
				if r.Status != 202 {
					t.Fatalf("%s: %d %s", what, r.Status, r.Body)
				}
				var m map[string]string
				_ = json.Unmarshal(r.Body, &m)
				run := s.Must(200, "GET", "/api/v1/runs/"+m["id"], nil)
				var runFlow, flowID string
				db.Raw("SELECT flow_id FROM runs WHERE id = ?", m["id"]).Scan(&runFlow)
				db.Raw("SELECT id FROM flows WHERE project = 'ops' AND name = 'h'").Scan(&flowID)
				return int(run["flow_version"].(float64)), runFlow == flowID
			}
			// del deletes the flow once its runs ended.
			del := func() {
				t.Helper()
				apptest.Eventually(t, 30*time.Second, "the runs to end", func() error {
					var open int64
					db.Raw("SELECT COUNT(*) FROM runs WHERE status IN ('queued','running','waiting')").Scan(&open)
					if open > 0 {
						return fmt.Errorf("%d runs open", open)
					}
					return nil
				})
				other.Must(204, "DELETE", "/api/v1/projects/ops/flows/h", nil)
			}
			other.Must(201, "POST", "/api/v1/projects/ops/flows", def("'one'"))
			for _, what := range []string{"first delivery", "second delivery (from the cache)"} {
				if v, same := deliver(what); v != 1 || !same {
					t.Fatalf("%s: version %d, the flow's id %v", what, v, same)
				}
			}
			other.Must(200, "PUT", "/api/v1/projects/ops/flows/h", def("'two'"))
			if v, same := deliver("after a save"); v != 2 || !same {
				t.Fatalf("after a save elsewhere: version %d, the flow's id %v; want 2", v, same)
			}
			del()
			if r := hook(t, s, "/hooks/ops/h", nil, `{}`); r.Status != 404 {
				t.Fatalf("after a delete elsewhere: %d %s, want 404", r.Status, r.Body)
			}
			other.Must(201, "POST", "/api/v1/projects/ops/flows", def("'again'"))
			if v, same := deliver("made again"); v != 1 || !same { // cached by this delivery
				t.Fatalf("made again: version %d, the flow's id %v; want the new flow's", v, same)
			}
			other.Must(200, "PUT", "/api/v1/projects/ops/flows/h", def("'again, two'"))
			del()
			other.Must(201, "POST", "/api/v1/projects/ops/flows", def("'a third time'"))
			other.Must(200, "PUT", "/api/v1/projects/ops/flows/h", def("'a third time, two'"))
			if v, same := deliver("made a third time, saved again"); v != 2 || !same {
				t.Fatalf("a new flow of the same name and version: version %d, the flow's id %v; want the new flow's", v, same)
			}
		})
	}
}

// Events while a matching flow is created, paused and deleted over and
// over: every event is accepted with the runs of the flows that exist.
// Before, an event whose flow was deleted as it was stored answered 404
// about that flow (and stored nothing for the others), and on SQLite the
// deletion dropped the flow's plan, which the event's transaction then
// read on another connection while it held the write lock: writes
// waited for the busy timeout and events answered 503.
func TestEventsWhileFlowsAreDeleted(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "dy"})
		flow := func(name string) map[string]any {
			return map[string]any{"name": name, "trigger": map[string]any{"type": "event", "topic": "d:*"},
				"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "input.topic"}}}}
		}
		s.Must(201, "POST", "/api/v1/projects/dy/flows", flow("keep"))
		var stop atomic.Bool
		var wg sync.WaitGroup
		answers := map[int]int{}
		var mu sync.Mutex
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 150 && !stop.Load(); i++ {
					r := s.Do("POST", "/api/v1/projects/dy/events", map[string]any{"topic": "d:x", "environment": "development"})
					mu.Lock()
					answers[r.Status]++
					mu.Unlock()
					if r.Status != 202 {
						t.Errorf("an event answered %d %s", r.Status, r.Body)
					}
				}
			}()
		}
		sent := func() int {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, v := range answers {
				n += v
			}
			return n
		}
		deleted := 0
		for sent() < 600 && !t.Failed() {
			s.Must(201, "POST", "/api/v1/projects/dy/flows", flow("churn"))
			s.Must(200, "POST", "/api/v1/projects/dy/flows/churn/pause", nil)
			for {
				r := s.Do("DELETE", "/api/v1/projects/dy/flows/churn", nil)
				if r.Status == 204 {
					break
				}
				if r.Status != 409 { // 409: its runs have not ended yet
					t.Fatalf("delete: %d %s", r.Status, r.Body)
				}
				runtime.Gosched()
			}
			deleted++
		}
		stop.Store(true)
		wg.Wait()
		t.Logf("%d deletions; events answered %v", deleted, answers)
	}, func(c *app.Config) { c.RateLimit = -1 })
}
