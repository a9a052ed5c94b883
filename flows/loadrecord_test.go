package flows_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
)

// A run whose blocks read no secret still loads its secrets (for its
// redactor), and the audit record of that load is stored with the run's
// first write, its insert, before the block acts: on SQLite a run of one
// block commits twice (its insert with that record; its outcome), not
// three times (on PostgreSQL they are one statement:
// TestRunStoredBeforeItsFirstBlockActs).
func TestLoadRecordGoesWithTheFirstWrite(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "plain", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "`hello`"}}},
		})
		run := func() string { return runToSuccess(t, s, "plain") }
		run() // the first run prepares the statements and fills the caches
		var id string
		if s.App.DB.Dialect == store.SQLite {
			var fewest int
			if fewest, id = fewestCommits(t, s, run); fewest != 2 {
				t.Errorf("a run of one block that reads no secret committed %d transactions at the fewest, want 2 (its insert with its secrets load's audit record; its outcome)", fewest)
			}
		} else {
			id = run()
		}
		var loads int64
		s.App.DB.Raw("SELECT COUNT(*) FROM secret_audit WHERE action = 'redaction_load' AND run_id = ?", id).Scan(&loads)
		if loads != 1 {
			t.Errorf("run %s has %d redaction_load audit records, want 1", id, loads)
		}
	})
}

// A run queued through this process starts before its row is stored,
// and its first commit stores it: a run whose first block reads a
// secret in its configuration commits its insert with the audit records
// of its secrets' load and of that read (before the block acts), then the
// block's checkpoint (an HTTP call is not safe to run twice), then its
// outcome: three transactions, where an insert of its own made four.
func TestFirstReadStoresTheRun(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		if s.App.DB.Dialect != store.SQLite {
			t.Skip("counts SQLite's commits; on PostgreSQL TestRunStoredBeforeItsFirstBlockActs sees the run's insert and its records in one transaction")
		}
		setup(t, s)
		srv, _ := target(t)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "reads", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"API": srv.URL},
			"blocks": []any{map[string]any{"id": "call", "type": "http", "config": map[string]any{
				"url": "`${env.API}/v1/messages`", "headers": "({Authorization: `Bearer ${secrets.API_TOKEN}`})"}}},
		})
		run := func() string { return runToSuccess(t, s, "reads") }
		run()
		fewest, id := fewestCommits(t, s, run)
		if fewest != 3 {
			t.Errorf("a run of one block that reads a secret committed %d transactions at the fewest, want 3 (its insert with the audit records of its load and its read; the block's checkpoint; its outcome)", fewest)
		}
		for action, want := range map[string]int64{"redaction_load": 1, "resolve": 1} {
			var n int64
			s.App.DB.Raw("SELECT COUNT(*) FROM secret_audit WHERE action = ? AND run_id = ?", action, id).Scan(&n)
			if n != want {
				t.Errorf("run %s has %d %s audit records, want %d", id, n, action, want)
			}
		}
	})
}

// A block acts only once its run is stored, with the audit records of
// its secrets' load and of the secrets it read so far: a service the
// first block calls finds the run and those records in the database,
// whether the block's configuration read a secret or not; on PostgreSQL
// inserted by the run's own insert, one statement (the rows' xmin). The
// webhook answers once the run is stored.
func TestRunStoredBeforeItsFirstBlockActs(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		type seen struct {
			runs, loads, reads int64
			// with is how many of those records the run's insert
			// inserted (PostgreSQL; -1 on SQLite).
			with int64
		}
		got := make(chan seen, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var v seen
			flow := r.URL.Query().Get("flow")
			s.App.DB.Raw("SELECT COUNT(*) FROM runs WHERE flow = ?", flow).Scan(&v.runs)
			s.App.DB.Raw("SELECT COUNT(*) FROM secret_audit WHERE action = 'redaction_load' AND run_id IN (SELECT id FROM runs WHERE flow = ?)", flow).Scan(&v.loads)
			s.App.DB.Raw("SELECT COUNT(*) FROM secret_audit WHERE action = 'resolve' AND run_id IN (SELECT id FROM runs WHERE flow = ?)", flow).Scan(&v.reads)
			v.with = -1
			if s.App.DB.Dialect == store.Postgres {
				s.App.DB.Raw("SELECT COUNT(*) FROM secret_audit a JOIN runs r ON r.id = a.run_id WHERE r.flow = ? AND a.xmin::text = r.xmin::text", flow).Scan(&v.with)
			}
			got <- v
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
		}))
		defer srv.Close()
		for _, c := range []struct {
			flow, headers string
			want          seen
		}{
			{"plain", "({})", seen{runs: 1, loads: 1, with: 1}},
			{"secret", "({Authorization: `Bearer ${secrets.API_TOKEN}`})", seen{runs: 1, loads: 1, reads: 1, with: 2}},
		} {
			if s.App.DB.Dialect == store.SQLite {
				c.want.with = -1
			}
			s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
				"name": c.flow, "trigger": map[string]any{"type": "webhook"}, "env": map[string]string{"API": srv.URL},
				"blocks": []any{map[string]any{"id": "call", "type": "http", "config": map[string]any{
					"url": "`${env.API}/?flow=" + c.flow + "`", "headers": c.headers}}},
			})
			r := hook(t, s, "/hooks/billing/"+c.flow, nil, `{}`)
			if r.Status != 202 {
				t.Fatalf("%s: webhook: %d %s", c.flow, r.Status, r.Body)
			}
			var m map[string]string
			_ = json.Unmarshal(r.Body, &m)
			var stored int64
			s.App.DB.Raw("SELECT COUNT(*) FROM runs WHERE id = ?", m["id"]).Scan(&stored)
			if stored != 1 {
				t.Errorf("%s: run %s not stored when the webhook answered", c.flow, m["id"])
			}
			select {
			case v := <-got:
				if v != c.want {
					t.Errorf("%s: when the block called, the database held %+v, want %+v", c.flow, v, c.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: the block never called", c.flow)
			}
			waitFor(t, 30*time.Second, c.flow+": the run to succeed", func() bool {
				return s.Must(200, "GET", "/api/v1/runs/"+m["id"], nil)["status"] == "succeeded"
			})
		}
	})
}

// A run whose insert fails (here a trigger of the test's refuses it) is
// dropped whole: the webhook gets the error, no block acts, nothing of
// the run is stored; the audit record of its secrets' load and read is,
// and the next delivery runs as usual.
func TestRunWhoseInsertFailsIsDropped(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		srv, hits := target(t)
		onRunInsert(t, s, "refuse-me", `SELECT RAISE(ABORT, 'refused by the test')`, `RAISE EXCEPTION 'refused by the test'`)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "call", "trigger": map[string]any{"type": "webhook"}, "env": map[string]string{"API": srv.URL},
			"blocks": []any{map[string]any{"id": "call", "type": "http", "config": map[string]any{
				"url": "`${env.API}/v1/messages`", "headers": "({Authorization: `Bearer ${secrets.API_TOKEN}`})"}}},
		})
		if r := hook(t, s, "/hooks/billing/call", nil, `{"note":"refuse-me"}`); r.Status < 500 {
			t.Fatalf("a run whose insert failed: %d %s, want an error", r.Status, r.Body)
		}
		var runs, events int64
		s.App.DB.Raw("SELECT COUNT(*) FROM runs").Scan(&runs)
		s.App.DB.Raw("SELECT COUNT(*) FROM events").Scan(&events)
		if runs != 0 || events != 0 || hits.Load() != 0 {
			t.Fatalf("after a failed insert: %d runs, %d events stored, %d calls made; want none", runs, events, hits.Load())
		}
		// The run had started: its load (and its read) are on record.
		// (The server log's redactor records loads of its own, actor
		// server-log, when it polls.)
		waitFor(t, 30*time.Second, "the dropped run's load on record", func() bool {
			var n int64
			s.App.DB.Raw("SELECT COUNT(*) FROM secret_audit WHERE action = 'redaction_load' AND actor = 'run'").Scan(&n)
			return n == 1
		})
		r := hook(t, s, "/hooks/billing/call", nil, `{}`)
		if r.Status != 202 {
			t.Fatalf("the next delivery: %d %s", r.Status, r.Body)
		}
		var m map[string]string
		_ = json.Unmarshal(r.Body, &m)
		waitFor(t, 30*time.Second, "the next run to succeed", func() bool {
			return s.Must(200, "GET", "/api/v1/runs/"+m["id"], nil)["status"] == "succeeded"
		})
		if hits.Load() != 1 {
			t.Errorf("%d calls, want the next run's one", hits.Load())
		}
	})
}

// onRunInsert has the database act on the insert of a run whose input
// holds marker, with a trigger of the test's: sqlite is the statement of
// its body on SQLite, pg on PostgreSQL (PL/pgSQL).
func onRunInsert(t *testing.T, s *apptest.Server, marker, sqlite, pg string) {
	t.Helper()
	name := "on_run_" + strings.ReplaceAll(marker, "-", "_")
	var err error
	if s.App.DB.Dialect == store.SQLite {
		err = s.App.DB.Exec(`CREATE TRIGGER ` + name + ` BEFORE INSERT ON runs WHEN NEW.input LIKE '%` + marker + `%'
BEGIN ` + sqlite + `; END`).Error
	} else {
		err = s.App.DB.Exec(`CREATE FUNCTION ` + name + `() RETURNS trigger AS $$ BEGIN
IF NEW.input LIKE '%` + marker + `%' THEN ` + pg + `; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`).Error
		if err == nil {
			err = s.App.DB.Exec(`CREATE TRIGGER ` + name + ` BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION ` + name + `()`).Error
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// runToSuccess starts a run of flow (project billing, environment
// production) and waits for it to succeed; it returns the run's id.
func runToSuccess(t *testing.T, s *apptest.Server, flow string) string {
	t.Helper()
	id := s.Must(202, "POST", "/api/v1/projects/billing/flows/"+flow+"/runs", map[string]any{"environment": "production"})["id"].(string)
	waitFor(t, 30*time.Second, "the run to succeed", func() bool {
		return s.Must(200, "GET", "/api/v1/runs/"+id, nil)["status"] == "succeeded"
	})
	return id
}

// fewestCommits is the fewest transactions of three runs (run) commit to
// the server's SQLite database, and the last run's id: the heartbeat's
// first renewal of the leases, on the second's beat, may fall in one of
// them.
func fewestCommits(t *testing.T, s *apptest.Server, run func() string) (fewest int, id string) {
	t.Helper()
	for i := range 3 {
		n := storetest.WALCommits(t, s.App.DB, func() { id = run() })
		if i == 0 || n < fewest {
			fewest = n
		}
	}
	return fewest, id
}

// The error of a run whose insert failed reaches its caller and the
// server log masked: here the database's own message carries a secret's
// value (and the run's input, masked before it was stored, though the
// sender put the value in it), for a run whose row goes with its first
// read and for one whose first block reads no secret.
func TestRefusedInsertErrorIsMasked(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		srv, hits := target(t)
		onRunInsert(t, s, "refuse-me", `SELECT RAISE(ABORT, 'refused: `+canaryToken+` ' || NEW.input)`,
			`RAISE EXCEPTION '%', 'refused: `+canaryToken+` ' || NEW.input USING DETAIL = NEW.input`)
		callAndPlain(t, s, srv.URL)
		body := `{"note":"refuse-me","echo":"` + canaryToken + `"}`
		for _, path := range []string{"/hooks/billing/call", "/hooks/billing/plain"} {
			r := hook(t, s, path, nil, body)
			if r.Status < 500 {
				t.Fatalf("%s: a run whose insert failed: %d %s, want an error", path, r.Status, r.Body)
			}
			apptest.AssertAbsent(t, path+"'s answer", string(r.Body), canaryToken)
		}
		var runs int64
		s.App.DB.Raw("SELECT COUNT(*) FROM runs").Scan(&runs)
		if runs != 0 || hits.Load() != 0 {
			t.Fatalf("after failed inserts: %d runs stored, %d calls made; want none", runs, hits.Load())
		}
		if !strings.Contains(s.Logs.String(), "refused: [REDACTED:API_TOKEN]") {
			t.Fatalf("the server log does not carry the database's message:\n%s", s.Logs.String())
		}
		apptest.AssertAbsent(t, "the server log", s.Logs.String(), canaryToken)
	})
}

// callAndPlain creates two webhook flows of project billing: call, whose
// first block reads a secret (its run is stored with that read's audit
// record), and plain, whose first block reads none.
func callAndPlain(t *testing.T, s *apptest.Server, api string) {
	t.Helper()
	s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
		"name": "call", "trigger": map[string]any{"type": "webhook"}, "env": map[string]string{"API": api},
		"blocks": []any{map[string]any{"id": "call", "type": "http", "config": map[string]any{
			"url": "`${env.API}/v1/messages`", "headers": "({Authorization: `Bearer ${secrets.API_TOKEN}`})"}}},
	})
	s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
		"name": "plain", "trigger": map[string]any{"type": "webhook"},
		"blocks": []any{map[string]any{"id": "sum", "type": "code", "config": map[string]any{"code": "return {n: 1}"}}},
	})
}

// A run's insert that stores no row and reports no error (a trigger of
// the database's that skips it) fails the request that queued it: its
// caller is not told the run is queued, and no block acts. Before, the
// answer was 202 and the run, without a row, ran all the same (a helper
// probing the deferred insert found it; it predates that).
func TestRunInsertThatStoresNoRowFails(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		srv, hits := target(t)
		onRunInsert(t, s, "skip-me", `SELECT RAISE(IGNORE)`, `RETURN NULL`)
		block := []any{map[string]any{"id": "call", "type": "http", "config": map[string]any{
			"url": "`${env.API}/v1/messages`", "headers": "({Authorization: `Bearer ${secrets.API_TOKEN}`})"}}}
		env := map[string]string{"API": srv.URL}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "hook", "trigger": map[string]any{"type": "webhook"}, "env": env, "blocks": block})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "manual", "trigger": map[string]any{"type": "manual"}, "env": env, "blocks": block})
		// A flow with its own max_concurrent_runs inserts its runs first.
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "limited", "trigger": map[string]any{"type": "manual"}, "env": env, "blocks": block, "max_concurrent_runs": 5})

		if r := hook(t, s, "/hooks/billing/hook", nil, `{"note":"skip-me"}`); r.Status < 500 {
			t.Errorf("webhook: %d %s, want an error", r.Status, r.Body)
		}
		for _, flow := range []string{"manual", "limited"} {
			r := s.Do("POST", "/api/v1/projects/billing/flows/"+flow+"/runs", map[string]any{"environment": "production", "input": map[string]any{"note": "skip-me"}})
			if r.Status < 500 {
				t.Errorf("%s: a run whose insert stored no row: %d %s, want an error", flow, r.Status, r.Body)
			}
		}
		var runs int64
		s.App.DB.Raw("SELECT COUNT(*) FROM runs").Scan(&runs)
		if runs != 0 || hits.Load() != 0 {
			t.Fatalf("%d runs stored, %d calls made; want none", runs, hits.Load())
		}
		// The next run, which the trigger lets through, runs as usual.
		runToSuccess(t, s, "manual")
		if hits.Load() != 1 {
			t.Errorf("%d calls, want the next run's one", hits.Load())
		}
	})
}

// A run that started before its row was stored has the audit record of
// its secrets' load committed before its first block acts, even when the
// row went alone: its load took longer than whoever queued it waited
// (here a lock on the secrets holds the load back), and the first block
// reads no secret.
func TestSlowLoadIsRecordedBeforeTheFirstBlockActs(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		if s.App.DB.Dialect != store.Postgres {
			t.Skip("PostgreSQL: a lock holds a load back; SQLite's readers are never blocked")
		}
		setup(t, s)
		loads := make(chan int64, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var n int64
			s.App.DB.Raw("SELECT COUNT(*) FROM secret_audit WHERE action = 'redaction_load' AND run_id IN (SELECT id FROM runs WHERE flow = 'plain')").Scan(&n)
			loads <- n
			io.WriteString(w, `{}`)
		}))
		defer srv.Close()
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "plain", "trigger": map[string]any{"type": "webhook"}, "env": map[string]string{"API": srv.URL},
			"blocks": []any{map[string]any{"id": "call", "type": "http", "config": map[string]any{"url": "`${env.API}/`"}}},
		})
		sqlDB, err := s.App.DB.DB.DB()
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		lock, err := sqlDB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lock.Exec("LOCK TABLE secrets IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		// The answer comes once the waiter stored the row alone, the
		// load still held back.
		r := hook(t, s, "/hooks/billing/plain", nil, `{}`)
		if err := lock.Commit(); err != nil {
			t.Fatal(err)
		}
		if r.Status != 202 {
			t.Fatalf("webhook: %d %s", r.Status, r.Body)
		}
		select {
		case n := <-loads:
			if n != 1 {
				t.Errorf("when the block called, the run had %d redaction_load records, want 1", n)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the block never called")
		}
	})
}

// A run whose first commit loses its connection (PostgreSQL: the test's
// trigger has the server end the session in the middle of the statement
// that stores the run, with its audit records for a first block that
// reads a secret) is dropped whole, as when the insert is refused: the
// caller gets 503, no block acts, nothing of the run is stored. The next
// delivery runs as usual.
func TestConnectionLostAtTheFirstCommit(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.PostgresConfig(t))
	setup(t, s)
	srv, hits := target(t)
	onRunInsert(t, s, "drop-me", "", `PERFORM pg_terminate_backend(pg_backend_pid())`)
	callAndPlain(t, s, srv.URL)
	for _, path := range []string{"/hooks/billing/call", "/hooks/billing/plain"} {
		if r := hook(t, s, path, nil, `{"note":"drop-me"}`); r.Status != 503 {
			t.Fatalf("%s: a run whose first commit lost its connection: %d %s, want 503", path, r.Status, r.Body)
		}
	}
	// Both sessions were ended by the trigger, in the run's insert.
	if n := strings.Count(s.Logs.String(), "terminating connection due to administrator command"); n < 2 {
		t.Fatalf("%d sessions ended in a run's insert, want 2:\n%s", n, s.Logs.String())
	}
	var runs, events int64
	s.App.DB.Raw("SELECT COUNT(*) FROM runs").Scan(&runs)
	s.App.DB.Raw("SELECT COUNT(*) FROM events").Scan(&events)
	if runs != 0 || events != 0 || hits.Load() != 0 {
		t.Fatalf("after the lost connections: %d runs, %d events stored, %d calls made; want none", runs, events, hits.Load())
	}
	for _, path := range []string{"/hooks/billing/call", "/hooks/billing/plain"} {
		r := hook(t, s, path, nil, `{}`)
		if r.Status != 202 {
			t.Fatalf("%s: the next delivery: %d %s", path, r.Status, r.Body)
		}
		var m map[string]string
		_ = json.Unmarshal(r.Body, &m)
		waitFor(t, 30*time.Second, path+": the next run to succeed", func() bool {
			return s.Must(200, "GET", "/api/v1/runs/"+m["id"], nil)["status"] == "succeeded"
		})
	}
	if hits.Load() != 1 {
		t.Errorf("%d calls, want the next run's one", hits.Load())
	}
}
