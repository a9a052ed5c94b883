package flows_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/secrets"
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
			if n := s2.Must(200, "GET", "/api/v1/keys", nil)["run_data_not_under_primary"]; n.(float64) < 2 {
				t.Errorf("run data not under k2 before the rotation: %v, want the checkpoints and the input", n)
			}
			// A rotation stopped before the secrets are done leaves the
			// run data for later, and says nothing of it.
			part := s2.Must(200, "POST", "/api/v1/keys/rotate", map[string]any{"batch_size": 1, "max_batches": 1})
			if part["remaining"] == 0.0 || part["run_data"] != nil {
				t.Fatalf("partial rotation: %v", part)
			}
			rot := s2.Must(200, "POST", "/api/v1/keys/rotate", nil)
			rd, _ := rot["run_data"].(map[string]any)
			if rot["remaining"] != 0.0 || rd["checkpoints"].(float64) < 1 || rd["inputs"] != 1.0 || rd["remaining"] != 0.0 {
				t.Fatalf("rotation: %v", rot)
			}
			again := s2.Must(200, "POST", "/api/v1/keys/rotate", nil)["run_data"].(map[string]any)
			if again["checkpoints"] != 0.0 || again["inputs"] != 0.0 {
				t.Errorf("a second rotation rewrapped again: %v", again)
			}
			if n := s2.Must(200, "GET", "/api/v1/keys", nil)["run_data_not_under_primary"]; n != 0.0 {
				t.Errorf("run data not under k2 after the rotation: %v", n)
			}
			// Audited, with the counts.
			var details []string
			s2.App.DB.Raw("SELECT detail FROM secret_audit WHERE action = 'rotate' ORDER BY at").Scan(&details)
			found := false
			for _, d := range details {
				found = found || strings.HasPrefix(d, "rewrapped the data keys of ") && strings.Contains(d, " and 1 sealed run inputs to key k2; 0 remaining")
			}
			if !found {
				t.Errorf("no audit record of the run data's rotation: %q", details)
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

// RewrapSealed goes through more rows than one batch, stops after
// maxBatches with the rest counted as remaining, and finishes when run
// again; a row it cannot rewrap is named and counted, not fatal.
func TestRewrapSealedInBatches(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		k1 := "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
		k2 := "k2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
		old, err := secrets.ParseKeyring(k1)
		if err != nil {
			t.Fatal(err)
		}
		both, _ := secrets.ParseKeyring(k2 + "," + k1)
		const n = 1100
		for i := 0; i < n; i++ {
			run, block := fmt.Sprintf("run-%04d", i/10), fmt.Sprintf("b%d", i%10)
			blob, err := old.SealBlob(model.CheckpointAAD(2, run, block), []byte(`{"output":1}`))
			if err != nil {
				t.Fatal(err)
			}
			if i == 7 {
				blob[8] ^= 1 // its wrapped data key damaged
			}
			if err := s.App.DB.Exec("INSERT INTO run_checkpoints (run_id, block, state, detail, output, created_at) VALUES (?, ?, 'done', '', ?, ?)",
				run, block, blob, time.Now()).Error; err != nil {
				t.Fatal(err)
			}
		}
		first, err := s.App.Flows.RewrapSealed(context.Background(), both, 1)
		if err != nil {
			t.Fatal(err)
		}
		if first.Checkpoints != 499 || first.Remaining != n-499 || len(first.Errors) != 1 || !strings.Contains(first.Errors[0], "run-0000 b7") {
			t.Fatalf("first batch: %+v", first)
		}
		rest, err := s.App.Flows.RewrapSealed(context.Background(), both, 0)
		if err != nil {
			t.Fatal(err)
		}
		if rest.Checkpoints != n-500 || rest.Remaining != 1 || len(rest.Errors) != 1 {
			t.Fatalf("the rest: %+v", rest)
		}
	})
}
