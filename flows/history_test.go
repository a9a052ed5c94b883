package flows_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
)

// TestRerun (issue 18 item 5): POST /runs/{id}/rerun queues a new run of
// the flow in the same environment with the same input — the real input,
// although the ended run keeps it redacted (sealed for the rerun) and
// every view shows it masked — and links it with rerun_of.
func TestRerun(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		const canary = `rR7&<q>"x%\Zk29-rerun-canary`
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": canary, "project": "ops"})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name": "check", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{
				"code": "return {same: input.token === secrets.API_TOKEN, n: input.n, env: run.environment}"}}},
		})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name": "idle", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'x'"}}},
		})
		first := s.Must(200, "POST", "/api/v1/projects/ops/flows/check/runs?wait=60s",
			map[string]any{"environment": "staging", "input": map[string]any{"token": canary, "n": 7}})
		want := map[string]any{"same": true, "n": float64(7), "env": "staging"}
		if fmt.Sprint(first["output"]) != fmt.Sprint(want) {
			t.Fatalf("first run: %v", first)
		}
		id := first["id"].(string)
		var stored model.Run
		if err := s.App.DB.Where("id = ?", id).First(&stored).Error; err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored.Input, "rerun-canary") || stored.InputSealed == nil {
			t.Fatalf("the ended run keeps input %q and sealed %d bytes: want it redacted, and sealed", stored.Input, len(stored.InputSealed))
		}

		re := s.Do("POST", "/api/v1/runs/"+id+"/rerun", nil)
		if re.Status != 202 {
			t.Fatalf("rerun: %d %s", re.Status, re.Body)
		}
		apptest.AssertAbsent(t, "rerun response", string(re.Body), canary)
		nr := re.JSON(t)
		if nr["rerun_of"] != id || nr["environment"] != "staging" || nr["flow"] != "check" || nr["id"] == id {
			t.Fatalf("rerun: %v", nr)
		}
		newID := nr["id"].(string)
		var done map[string]any
		waitFor(t, 60*time.Second, "the rerun ends", func() bool {
			done = s.Must(200, "GET", "/api/v1/runs/"+newID, nil)
			return done["status"] == "succeeded" || done["status"] == "failed"
		})
		if fmt.Sprint(done["output"]) != fmt.Sprint(want) || done["rerun_of"] != id {
			t.Fatalf("rerun ended %v, want output %v (the real input)", done, want)
		}
		// A rerun of the rerun: its input is as real.
		again := s.Must(202, "POST", "/api/v1/runs/"+newID+"/rerun", nil)
		waitFor(t, 60*time.Second, "the second rerun ends", func() bool {
			done = s.Must(200, "GET", "/api/v1/runs/"+again["id"].(string), nil)
			return done["status"] == "succeeded"
		})
		if fmt.Sprint(done["output"]) != fmt.Sprint(want) {
			t.Fatalf("second rerun: %v", done)
		}

		// The flow list shows each flow's latest run.
		list := s.Must(200, "GET", "/api/v1/projects/ops/flows", nil)
		for _, f := range list["flows"].([]any) {
			f := f.(map[string]any)
			last, _ := f["last_run"].(map[string]any)
			switch f["name"] {
			case "check":
				if last == nil || last["id"] != again["id"] || last["status"] != "succeeded" {
					t.Errorf("check's last run: %v, want %v succeeded", last, again["id"])
				}
			case "idle":
				if last != nil {
					t.Errorf("a flow that never ran has a last run: %v", last)
				}
			}
		}

		// Every surface: API views, events, the database.
		for _, path := range []string{"/api/v1/runs/" + newID, "/api/v1/runs/" + newID + "/events", "/api/v1/projects/ops/runs", "/api/v1/runs/" + id + "/events"} {
			apptest.AssertAbsent(t, path, string(s.Do("GET", path, nil).Body), canary)
		}
		apptest.AssertAbsent(t, "database", apptest.DumpTables(t, s.App.DB), canary)

		// A run that ended before reruns kept the real input: refused, not
		// run with the masks.
		s.App.DB.Model(&model.Run{}).Where("id = ?", newID).Update("input_sealed", nil)
		if r := s.Do("POST", "/api/v1/runs/"+newID+"/rerun", nil); r.Status != 400 || !strings.Contains(string(r.Body), "kept only its redacted input") {
			t.Errorf("rerun without a sealed input: %d %s", r.Status, r.Body)
		}

		// Errors: an unknown run, a viewer, a run whose flow is gone.
		if r := s.Do("POST", "/api/v1/runs/nope/rerun", nil); r.Status != 404 {
			t.Errorf("unknown run: %d %s", r.Status, r.Body)
		}
		u := s.Must(201, "POST", "/api/v1/users", map[string]any{"name": "vera"})
		s.Must(200, "PUT", "/api/v1/projects/ops/members/"+u["id"].(string), map[string]string{"role": "viewer"})
		tok := s.Must(201, "POST", "/api/v1/users/"+u["id"].(string)+"/tokens", map[string]string{"name": "t"})["token"].(string)
		if r := s.DoToken(tok, "POST", "/api/v1/runs/"+id+"/rerun", nil); r.Status != 403 {
			t.Errorf("a viewer's rerun: %d %s, want 403", r.Status, r.Body)
		}
		s.Must(204, "DELETE", "/api/v1/projects/ops/flows/check", nil)
		if r := s.Do("POST", "/api/v1/runs/"+id+"/rerun", nil); r.Status != 404 || !strings.Contains(string(r.Body), `flow \"check\" not found`) {
			t.Errorf("rerun of a deleted flow's run: %d %s", r.Status, r.Body)
		}
	})
}

// TestRollbackAndVersions (issue 18 item 5): one version's definition,
// and a rollback that saves an earlier definition as a new version.
func TestRollbackAndVersions(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		def := func(msg string, env map[string]string) map[string]any {
			return map[string]any{"name": "hello", "trigger": map[string]any{"type": "manual"}, "env": env,
				"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": msg}}}}
		}
		s.Must(201, "POST", "/api/v1/projects/ops/flows", def("'one'", nil))
		s.Must(200, "PUT", "/api/v1/projects/ops/flows/hello", def("'two'", nil))
		s.Must(200, "PUT", "/api/v1/projects/ops/flows/hello", def("`three ${env.WHO}`", map[string]string{"WHO": "world"}))

		v1 := s.Must(200, "GET", "/api/v1/projects/ops/flows/hello/versions/1", nil)
		if v1["version"] != float64(1) || msgOf(v1) != "'one'" || v1["created_by"] == "" {
			t.Errorf("version 1: %v", v1)
		}
		v3 := s.Must(200, "GET", "/api/v1/projects/ops/flows/hello/versions/3", nil)
		if env, _ := v3["definition"].(map[string]any)["env"].(map[string]any); env["WHO"] != "world" {
			t.Errorf("version 3: %v", v3)
		}
		for path, want := range map[string]string{
			"/api/v1/projects/ops/flows/hello/versions/9": `flow \"hello\" has no version 9; its versions are 1 to 3`,
			"/api/v1/projects/ops/flows/hello/versions/x": "version in the URL must be a whole number from 1",
			"/api/v1/projects/ops/flows/nope/versions/1":  `flow \"nope\" not found`,
		} {
			if r := s.Do("GET", path, nil); !strings.Contains(string(r.Body), want) {
				t.Errorf("GET %s: %d %s, want %q", path, r.Status, r.Body, want)
			}
		}

		rb := s.Must(200, "POST", "/api/v1/projects/ops/flows/hello/rollback", map[string]any{"version": 1})
		if rb["version"] != float64(4) || msgOf(rb) != "'one'" || rb["unchanged"] == true {
			t.Errorf("rollback: %v", rb)
		}
		cur := s.Must(200, "GET", "/api/v1/projects/ops/flows/hello", nil)
		if cur["version"] != float64(4) || msgOf(cur) != "'one'" || cur["definition"].(map[string]any)["env"] != nil {
			t.Errorf("after the rollback: %v", cur)
		}
		if vs := s.Must(200, "GET", "/api/v1/projects/ops/flows/hello/versions", nil)["versions"].([]any); len(vs) != 4 {
			t.Errorf("versions after the rollback: %v", vs)
		}
		// To the current definition: nothing stored.
		if rb := s.Must(200, "POST", "/api/v1/projects/ops/flows/hello/rollback", map[string]any{"version": 1}); rb["version"] != float64(4) || rb["unchanged"] != true {
			t.Errorf("rollback to the current definition: %v", rb)
		}
		for body, want := range map[string]string{
			`{"version": 12}`:  `flow \"hello\" has no version 12; its versions are 1 to 4`,
			`{}`:               "version is required",
			`{"version": "1"}`: `field \"version\" must be a number`,
		} {
			r := s.Do("POST", "/api/v1/projects/ops/flows/hello/rollback", body)
			if r.Status/100 != 4 || !strings.Contains(string(r.Body), want) {
				t.Errorf("rollback %s: %d %s, want %q", body, r.Status, r.Body, want)
			}
		}
	})
}

func msgOf(f map[string]any) any {
	d, _ := f["definition"].(map[string]any)
	bs, _ := d["blocks"].([]any)
	if len(bs) == 0 {
		return nil
	}
	return bs[0].(map[string]any)["config"].(map[string]any)["message"]
}

// TestInstallationUsage (issue 18 item 5): which flows name each app
// installation, for the Apps page's "used by".
func TestInstallationUsage(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "BOT", "value": "xoxb-7Qx2kP9zLm", "project": "ops"})
		s.Must(201, "POST", "/api/v1/projects/ops/installations", map[string]any{"app": "slack", "name": "bot",
			"config": map[string]any{"bot_token": "secrets.BOT"}})
		app := func(name, inst string) map[string]any {
			return map[string]any{"name": name, "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "a", "type": "app", "config": map[string]any{
					"installation": inst, "action": "'post_message'", "with": map[string]any{"channel": "C1", "text": "hi"}}}}}
		}
		s.Must(201, "POST", "/api/v1/projects/ops/flows", app("alert", "'bot'"))
		s.Must(201, "POST", "/api/v1/projects/ops/flows", app("notify", "\"bot\""))
		s.Must(201, "POST", "/api/v1/projects/ops/flows", app("pick", "input.installation"))
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{"name": "plain", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'bot'"}}}})
		got := s.Must(200, "GET", "/api/v1/projects/ops/installation-usage", nil)
		if fmt.Sprint(got["installations"]) != "map[bot:[alert notify]]" || fmt.Sprint(got["unknown_flows"]) != "[pick]" {
			t.Errorf("installation usage: %v", got)
		}
		if r := s.Do("GET", "/api/v1/projects/nope/installation-usage", nil); r.Status != 404 {
			t.Errorf("unknown project: %d", r.Status)
		}
	})
}

// A run canceled while queued (no worker ever took it) and one canceled
// during a durable wait keep no secret value of their input at rest
// (SECURITY.md case 10), as a run that ends on a worker does: the input is
// redacted, the real one sealed, and a rerun gets the real one.
func TestCanceledRunKeepsNoSecretInInput(t *testing.T) {
	const canary = `cQ7&<x>"v%\Zk31-cancel-canary`
	for _, c := range []struct {
		name, status string
		opts         func(*app.Config)
		damaged      bool // the secret's ciphertext is damaged: the input is kept only sealed
	}{
		{"queued", "queued", noWorkers, false},
		{"waiting", "waiting", func(*app.Config) {}, false},
		{"queued, secrets do not load", "queued", noWorkers, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			apptest.Each(t, func(t *testing.T, s *apptest.Server) {
				stored := setupLater(t, s, canary)
				start := func() string {
					id := s.Must(202, "POST", "/api/v1/projects/ops/flows/later/runs",
						map[string]any{"environment": "production", "input": map[string]any{"token": canary, "n": 3}})["id"].(string)
					waitFor(t, 30*time.Second, "the run to be "+c.status, func() bool { return stored(id).Status == c.status })
					if r := stored(id); !strings.Contains(r.Input, "cancel-canary") {
						t.Fatalf("an open run keeps its real input, got %q", r.Input)
					}
					return id
				}
				id := start()
				if c.damaged {
					s.App.DB.Exec("UPDATE secret_versions SET ciphertext = ?", []byte("not a ciphertext at all, not one"))
				}
				s.Must(200, "POST", "/api/v1/runs/"+id+"/cancel", nil)
				r := stored(id)
				if r.Status != "canceled" || strings.Contains(r.Input, "cancel-canary") || !strings.Contains(r.Input, "[REDACTED") || r.InputSealed == nil {
					t.Fatalf("the canceled run: status %s, input %q, sealed %d bytes: want its input redacted, and sealed", r.Status, r.Input, len(r.InputSealed))
				}
				var loads int64
				s.App.DB.Raw("SELECT COUNT(*) FROM secret_audit WHERE action = 'redaction_load' AND run_id = ?", id).Scan(&loads)
				if loads == 0 && !c.damaged {
					t.Errorf("no redaction_load audit record of run %s", id)
				}

				// A rerun gets the real input again, sealed with the values
				// that masked it (its $parent checkpoint), its stored input
				// masked from the start (TestChildInputSealedWhileOpen sees
				// a rerun send the real values).
				re := s.Must(202, "POST", "/api/v1/runs/"+id+"/rerun", nil)
				newID := re["id"].(string)
				waitFor(t, 30*time.Second, "the rerun to be "+c.status, func() bool { return stored(newID).Status == c.status })
				// (Secrets that did not load masked nothing: the rerun holds
				// its caller's input, as an open run does.)
				want := "[REDACTED:API_TOKEN]"
				if c.damaged {
					want = canary
				}
				var in map[string]any
				if err := json.Unmarshal([]byte(stored(newID).Input), &in); err != nil || in["token"] != want || in["n"] != float64(3) {
					t.Errorf("the rerun's input: %v %v", in, err)
				}
				var inherited int64
				s.App.DB.Raw("SELECT COUNT(*) FROM run_checkpoints WHERE run_id = ? AND block = '$parent'", newID).Scan(&inherited)
				if inherited != 1 && !c.damaged {
					t.Errorf("the rerun has %d $parent checkpoints, want 1", inherited)
				}
				s.Must(200, "POST", "/api/v1/runs/"+newID+"/cancel", nil)
			}, c.opts)
		})
	}
}

// A run that ends on a worker before it loaded its secrets keeps no
// secret value of its input at rest either: the worker loads them then
// to redact it. When they cannot be loaded (a damaged value), the input
// is kept only sealed.
func TestRunEndedEarlyKeepsNoSecretInInput(t *testing.T) {
	const canary = `cQ7&<x>"v%\Zk32-early-canary`
	for _, c := range []struct {
		name   string
		prep   func(s *apptest.Server, id string)
		status string
		redact bool // the input is redacted (else withheld: only sealed)
	}{
		// A cancel asked while it ran, then released to the queue: the
		// next claim ends it.
		{"canceled when claimed", func(s *apptest.Server, id string) {
			s.App.DB.Exec("UPDATE runs SET cancel_req = ?, status = 'queued', available_at = queued_at WHERE id = ?", true, id)
		}, "canceled", true},
		// Interrupted more times than HUSHFLOW_MAX_RESUMES.
		{"too many resumes", func(s *apptest.Server, id string) {
			s.App.DB.Exec("UPDATE runs SET resumes = 99, status = 'queued', available_at = queued_at WHERE id = ?", id)
		}, "failed", true},
		// Its flow's version gone while it waits (the API refuses to
		// delete a flow with open runs; a database restored without it,
		// say): its version no longer loads.
		{"flow version gone", func(s *apptest.Server, id string) {
			s.App.DB.Exec("UPDATE runs SET flow_version = 99, available_at = queued_at WHERE id = ?", id)
		}, "failed", true},
		// Its secret's ciphertext damaged: the load fails.
		{"secrets do not load", func(s *apptest.Server, id string) {
			s.App.DB.Exec("UPDATE secret_versions SET ciphertext = ?", []byte("not a ciphertext at all, not one"))
			s.App.DB.Exec("UPDATE runs SET available_at = queued_at WHERE id = ?", id)
		}, "failed", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			apptest.Each(t, func(t *testing.T, s *apptest.Server) {
				stored := setupLater(t, s, canary)
				id := s.Must(202, "POST", "/api/v1/projects/ops/flows/later/runs",
					map[string]any{"environment": "production", "input": map[string]any{"token": canary}})["id"].(string)
				waitFor(t, 30*time.Second, "the run to wait", func() bool { return stored(id).Status == "waiting" })
				c.prep(s, id)
				waitFor(t, 30*time.Second, "the run to end", func() bool { r := stored(id); return r.Finished() })
				r := stored(id)
				if r.Status != c.status {
					t.Errorf("status %s (%s), want %s", r.Status, r.Error, c.status)
				}
				if strings.Contains(r.Input, "early-canary") || r.InputSealed == nil {
					t.Fatalf("input %q, sealed %d bytes: want no value in clear, and the input sealed", r.Input, len(r.InputSealed))
				}
				if c.redact != strings.Contains(r.Input, "[REDACTED:API_TOKEN]") {
					t.Errorf("input %q: redacted %v, want %v", r.Input, !c.redact, c.redact)
				}
			})
		})
	}
}

// setupLater creates project ops with secret API_TOKEN (value canary) and
// flow later, which waits an hour (a durable wait); it returns a reader
// of a run's stored row.
func setupLater(t *testing.T, s *apptest.Server, canary string) (stored func(id string) model.Run) {
	t.Helper()
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
	s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": canary, "project": "ops"})
	s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
		"name": "later", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "wait", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}}},
	})
	return func(id string) model.Run {
		var r model.Run
		if err := s.App.DB.Where("id = ?", id).First(&r).Error; err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// Deleting a flow while a run of it is open is refused (the run needs its
// version to go on, a waiting one to resume); once its runs ended it is
// deleted, and a flow saved again under its name is not what `rerun` of
// the old runs runs.
func TestDeleteFlowWithOpenRuns(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "del"})
		s.Must(201, "POST", "/api/v1/projects/del/flows", map[string]any{
			"name": "sleepy", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "d", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}}},
		})
		id := s.Must(202, "POST", "/api/v1/projects/del/flows/sleepy/runs", map[string]any{"environment": "development"})["id"].(string)
		waitFor(t, time.Minute, "the run to wait", func() bool {
			return s.Must(200, "GET", "/api/v1/runs/"+id, nil)["status"] == "waiting"
		})
		r := s.Do("DELETE", "/api/v1/projects/del/flows/sleepy", nil)
		if r.Status != 409 || !strings.Contains(string(r.Body), "flow sleepy has 1 run(s) queued, running or waiting") {
			t.Fatalf("delete with a waiting run: %d %s", r.Status, r.Body)
		}
		s.Must(200, "GET", "/api/v1/projects/del/flows/sleepy", nil)
		s.Must(200, "POST", "/api/v1/runs/"+id+"/cancel", nil)
		s.Must(204, "DELETE", "/api/v1/projects/del/flows/sleepy", nil)
		if got := s.Must(200, "GET", "/api/v1/runs/"+id, nil); got["status"] != "canceled" {
			t.Fatalf("the run after its flow's deletion: %v", got)
		}
		// Another flow under the same name.
		s.Must(201, "POST", "/api/v1/projects/del/flows", map[string]any{
			"name": "sleepy", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "return 'impostor'"}}},
		})
		r = s.Do("POST", "/api/v1/runs/"+id+"/rerun", nil)
		if r.Status != 409 || !strings.Contains(string(r.Body), `the flow \"sleepy\" it ran was deleted`) || !strings.HasSuffix(r.JSON(t)["error"].(map[string]any)["message"].(string), "start a run of it instead") {
			t.Fatalf("rerun of a deleted flow's run: %d %s", r.Status, r.Body)
		}
	})
}

// A deletion's count of the open runs sees a run whose insert began
// before it and commits after it: the deletion waits for that insert and
// refuses, rather than take the version the run needs (on PostgreSQL,
// where a statement sees only what was committed when it began, the
// count missed such a run and the run, answered 202, failed for want of
// its flow). The insert is held open in a transaction of the test's own;
// the deletion then runs, and the insert commits once the deletion waits
// (PostgreSQL: it shows in pg_stat_activity; SQLite: the insert's
// transaction holds the write lock from its start).
func TestDeleteWaitsForARunBeingStored(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "del"})
		s.Must(201, "POST", "/api/v1/projects/del/flows", map[string]any{
			"name": "busy", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "return 1"}}},
		})
		first := s.Must(202, "POST", "/api/v1/projects/del/flows/busy/runs", map[string]any{"environment": "development"})["id"].(string)
		waitFor(t, time.Minute, "the first run to end", func() bool {
			return s.Must(200, "GET", "/api/v1/runs/"+first, nil)["status"] == "succeeded"
		})
		for _, path := range []string{"/api/v1/projects/del/flows/busy", "/api/v1/projects/del"} {
			var r model.Run
			if err := s.App.DB.Where("id = ?", first).First(&r).Error; err != nil {
				t.Fatal(err)
			}
			// Waiting for an hour: no worker claims it meanwhile.
			r.ID, r.Status, r.FinishedAt, r.Output = uuid.Must(uuid.NewV7()).String(), model.StatusWaiting, nil, ""
			r.AvailableAt = time.Now().Add(time.Hour)
			tx := s.App.DB.Begin()
			if err := tx.Create(&r).Error; err != nil {
				t.Fatal(err)
			}
			done := make(chan apptest.Response, 1)
			go func() { done <- s.Do("DELETE", path, nil) }()
			got := commitWhenWaiting(t, s, tx, done)
			if got.Status != 409 || !strings.Contains(string(got.Body), "has 1 run(s) queued, running or waiting") {
				t.Fatalf("DELETE %s while a run's insert was in flight: %d %s", path, got.Status, got.Body)
			}
			s.Must(200, "GET", "/api/v1/projects/del/flows/busy", nil)
			s.Must(200, "POST", "/api/v1/runs/"+r.ID+"/cancel", nil)
		}
		s.Must(204, "DELETE", "/api/v1/projects/del/flows/busy", nil)
	})
}

// A run asked for while its flow is being deleted is either counted by
// the deletion or refused, never stored for a flow that is gone: every
// run's insert checks, in its own statement, that its flow still exists.
// Here the test's transaction is a deletion that has locked runs and
// deleted the flow; the API, which read the flow before, waits to insert
// the run, and once the deletion commits answers 404. Before, a run
// started from the API (as a sub-flow's child, a schedule's tick, a
// rerun) was inserted without that check and answered 202, and failed
// for want of its version (PostgreSQL; SQLite's writes are serial).
func TestRunOfAFlowBeingDeletedIsRefused(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.PostgresConfig(t))
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "del"})
	s.Must(201, "POST", "/api/v1/projects/del/flows", map[string]any{
		"name": "victim", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "return 1"}}},
	})
	var f model.Flow
	if err := s.App.DB.Where("project = ? AND name = ?", "del", "victim").First(&f).Error; err != nil {
		t.Fatal(err)
	}
	del := s.App.DB.Begin()
	for _, q := range []string{"LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE", "DELETE FROM flow_versions WHERE flow_id = ?", "DELETE FROM flows WHERE id = ?"} {
		args := []any{}
		if strings.Contains(q, "?") {
			args = append(args, f.ID)
		}
		if err := del.Exec(q, args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan apptest.Response, 1)
	go func() {
		done <- s.Do("POST", "/api/v1/projects/del/flows/victim/runs", map[string]any{"environment": "development"})
	}()
	got := commitWhenWaiting(t, s, del, done)
	if got.Status != 404 || !strings.Contains(string(got.Body), `flow \"victim\" not found`) {
		t.Fatalf("a run asked for while its flow was deleted: %d %s", got.Status, got.Body)
	}
	var runs int64
	s.App.DB.Raw("SELECT COUNT(*) FROM runs").Scan(&runs)
	if runs != 0 {
		t.Fatalf("%d runs stored for the deleted flow", runs)
	}
}

// Deletions at the same moment take turns: eight projects, each with a
// flow and a run that ended, deleted at once, all go (200). With the
// lock on runs in SHARE mode both deletions of a pair held it, then each
// waited for the other to delete its own runs, and PostgreSQL ended one
// as a deadlock (500; a probe saw 9 of 12).
func TestConcurrentProjectDeletions(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		const n = 8
		for i := range n {
			p := fmt.Sprintf("gone%d", i)
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": p})
			s.Must(201, "POST", "/api/v1/projects/"+p+"/flows", map[string]any{
				"name": "f", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "return 1"}}},
			})
			id := s.Must(202, "POST", "/api/v1/projects/"+p+"/flows/f/runs", map[string]any{"environment": "development"})["id"].(string)
			waitFor(t, time.Minute, "the run to end", func() bool {
				return s.Must(200, "GET", "/api/v1/runs/"+id, nil)["status"] == "succeeded"
			})
		}
		got := make(chan apptest.Response, n)
		for i := range n {
			go func() { got <- s.Do("DELETE", fmt.Sprintf("/api/v1/projects/gone%d", i), nil) }()
		}
		for range n {
			if r := <-got; r.Status != 200 {
				t.Errorf("a project deleted beside others: %d %s", r.Status, r.Body)
			}
		}
	})
}

// commitWhenWaiting commits tx once the request whose answer comes on
// done waits for one of tx's locks (PostgreSQL: a session of the
// database waits on a lock; SQLite: at once, tx holding the write lock
// since it began) or has been answered, and returns that answer.
func commitWhenWaiting(t *testing.T, s *apptest.Server, tx *gorm.DB, done chan apptest.Response) apptest.Response {
	t.Helper()
	var early *apptest.Response
	apptest.Eventually(t, 30*time.Second, "the request to wait for the test's transaction, or end", func() error {
		select {
		case got := <-done:
			early = &got
			return nil
		default:
		}
		if s.App.DB.Dialect != store.Postgres {
			return nil
		}
		var n int64
		s.App.DB.Raw("SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()").Scan(&n)
		if n == 0 {
			return errors.New("not waiting yet")
		}
		return nil
	})
	if err := tx.Commit().Error; err != nil {
		t.Fatal(err)
	}
	if early != nil {
		return *early
	}
	return <-done
}
