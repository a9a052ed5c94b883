package flows_test

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// A key rotation rewraps the run data sealed under the old key too: once
// the old key has left the keyring, a run that waited through the
// rotation resumes with its checkpointed output, and a run whose input
// held a secret value can still be rerun. (Before, only secret versions
// were rewrapped: the waiting run failed and the rerun answered 503.)
func TestRotationKeepsWaitingRunsAndReruns(t *testing.T) {
	apptest.SkipShort(t)
	key := func(id string, b byte) string {
		return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
	}
	k1, k2 := key("k1", 1), key("k2", 2)
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dbc := b.Config(t)
			clock := &apptest.Clock{}
			with := func(k string, workers bool) func(*app.Config) {
				return func(c *app.Config) { c.MasterKey, c.Now, c.NoWorkers, c.RateLimit = k, clock.Now, !workers, -1 }
			}
			s1 := apptest.Start(t, dbc, with(k1, true))
			setup(t, s1)
			s1.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
				"name": "slow", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{
					map[string]any{"id": "mk", "type": "code", "config": map[string]any{"code": "return {v: 'out-' + input.n}"}},
					map[string]any{"id": "nap", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}},
					map[string]any{"id": "use", "type": "code", "config": map[string]any{"code": "return steps.mk.output.v"}},
				},
			})
			s1.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
				"name": "same", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "return input.token === secrets.API_TOKEN"}}},
			})
			slow := s1.Must(202, "POST", "/api/v1/projects/billing/flows/slow/runs", map[string]any{"environment": "development", "input": map[string]any{"n": 7}})["id"].(string)
			waitRun(t, s1, slow, "the run to wait", func(r map[string]any, _ string) bool { return r["status"] == "waiting" })
			ended := s1.Must(200, "POST", "/api/v1/projects/billing/flows/same/runs?wait=30s",
				map[string]any{"environment": "development", "input": map[string]any{"token": canaryToken}})
			if ended["output"] != true {
				t.Fatalf("run with the token in its input: %v", ended)
			}
			s1.Stop()

			// k2 primary, k1 kept: the rotation.
			s2 := apptest.Start(t, dbc, with(k2+","+k1, false))
			rot := s2.Must(200, "POST", "/api/v1/keys/rotate", nil)
			rd, _ := rot["run_data"].(map[string]any)
			if rot["remaining"] != 0.0 || rd["checkpoints"].(float64) < 1 || rd["inputs"] != 1.0 || rd["remaining"] != 0.0 {
				t.Fatalf("rotation: %v", rot)
			}
			again := s2.Must(200, "POST", "/api/v1/keys/rotate", nil)["run_data"].(map[string]any)
			if again["checkpoints"] != 0.0 || again["inputs"] != 0.0 {
				t.Errorf("a second rotation rewrapped again: %v", again)
			}
			s2.Stop()

			// k2 alone: the waiting run resumes, the ended one reruns.
			s3 := apptest.Start(t, dbc, with(k2, true))
			clock.Advance(61 * time.Minute)
			r := waitRun(t, s3, slow, "the run to end", func(r map[string]any, _ string) bool { return r["status"] == "succeeded" || r["status"] == "failed" })
			if r["status"] != "succeeded" || r["output"] != "out-7" {
				t.Fatalf("the run that waited through the rotation: %v", r)
			}
			re := s3.Must(202, "POST", "/api/v1/runs/"+ended["id"].(string)+"/rerun", nil)
			done := waitRun(t, s3, re["id"].(string), "the rerun to end", func(r map[string]any, _ string) bool { return r["status"] == "succeeded" || r["status"] == "failed" })
			if done["output"] != true {
				t.Errorf("the rerun after the rotation: %v", done)
			}
		})
	}
}
