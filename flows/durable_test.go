package flows_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
)

// The tests of this file interrupt runs the way a deploy does (a server
// stopped while runs are in progress, then another started on the same
// database) and check that they resume from their first unfinished block.
// durable_replicas_test.go does the same to `hushflow serve` processes
// with signals, and to PostgreSQL.

// effects is a local service that counts the requests it receives by run
// and path (`/<path>?run=<id>`), as the side effects a flow's blocks have.
// A path in hold blocks until release is closed (or the client gives up).
type effects struct {
	*httptest.Server
	mu      sync.Mutex // guards hits, keys
	hits    map[string]int
	keys    map[string][]string // Idempotency-Key headers by run
	hold    string
	arrived chan string // run ids of requests to hold, as they arrive
	release chan struct{}
}

func newEffects(t *testing.T, hold string) *effects {
	e := &effects{hits: map[string]int{}, keys: map[string][]string{}, hold: hold,
		arrived: make(chan string, 100), release: make(chan struct{})}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		run := r.URL.Query().Get("run")
		e.mu.Lock()
		e.hits[r.URL.Path+" "+run]++
		if k := r.Header.Get("Idempotency-Key"); k != "" {
			e.keys[run] = append(e.keys[run], k)
		}
		e.mu.Unlock()
		if hold != "" && r.URL.Path == hold {
			e.arrived <- run
			select {
			case <-e.release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"run":%q}`, r.URL.Path, run)
	}))
	t.Cleanup(func() {
		select {
		case <-e.release:
		default:
			close(e.release)
		}
		e.Close()
	})
	return e
}

// count is how many requests of run reached path.
func (e *effects) count(path, run string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits[path+" "+run]
}

// serverOn starts a server on dbc with opts.
func serverOn(t *testing.T, dbc store.Config, opts ...func(*app.Config)) *apptest.Server {
	return apptest.Start(t, dbc, opts...)
}

func events(t *testing.T, s *apptest.Server, id string) []map[string]any {
	t.Helper()
	m := s.Must(200, "GET", "/api/v1/runs/"+id+"/events", nil)
	var out []map[string]any
	for _, e := range m["events"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// checkSequence fails when the run's events are not numbered 1, 2, 3, ...
// without a gap or a repeat, or when it has not exactly one run_finished.
func checkSequence(t *testing.T, id string, evs []map[string]any) {
	t.Helper()
	finished := 0
	for i, e := range evs {
		if seq := int(e["seq"].(float64)); seq != i+1 {
			t.Errorf("run %s: event %d has seq %d (%s)", id, i+1, seq, eventTypes(evs))
			return
		}
		if e["type"] == "run_finished" {
			finished++
		}
	}
	if finished != 1 {
		t.Errorf("run %s: %d run_finished events (%s)", id, finished, eventTypes(evs))
	}
}

// assertNoCheckpoints fails t if run id still has checkpoints: nothing of
// a run is kept once it ended.
func assertNoCheckpoints(t *testing.T, s *apptest.Server, id string) {
	t.Helper()
	var left int64
	s.App.DB.Table("run_checkpoints").Where("run_id = ?", id).Count(&left)
	if left != 0 {
		t.Errorf("%d checkpoints left after the run ended", left)
	}
}

func eventTypes(evs []map[string]any) string {
	var out []string
	for _, e := range evs {
		b, _ := e["block"].(string)
		out = append(out, fmt.Sprint(e["type"], ":", b))
	}
	return strings.Join(out, " ")
}

func waitRun(t *testing.T, s *apptest.Server, id string, what string, ok func(r map[string]any, evs string) bool) map[string]any {
	t.Helper()
	var r map[string]any
	waitFor(t, 60*time.Second, what, func() bool {
		r = s.Must(200, "GET", "/api/v1/runs/"+id, nil)
		return ok(r, eventTypes(events(t, s, id)))
	})
	return r
}

// A server stopped while a run is in the middle of a block releases the
// run after its drain grace; the next server resumes it from the
// interrupted block: the blocks that finished are not run again, the
// events go on in order with run_released and run_resumed.
func TestStopReleasesAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a 3s delay twice per database: TestInterruptedPost covers release and resume in -short mode")
	}
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dbc := b.Config(t)
			fx := newEffects(t, "")
			grace := func(c *app.Config) { c.ShutdownGrace = 200 * time.Millisecond }
			s := serverOn(t, dbc, grace)
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "steps", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"FX": fx.URL},
				"blocks": []any{
					map[string]any{"id": "fetch", "type": "http", "config": map[string]any{"url": "`${env.FX}/fetch?run=${run.id}`"}},
					map[string]any{"id": "wait", "type": "delay", "config": map[string]any{"duration": "'3s'"}},
					map[string]any{"id": "use", "type": "code", "config": map[string]any{"code": "return steps.fetch.output.body.path"}},
				},
			})
			id := s.Must(202, "POST", "/api/v1/projects/ops/flows/steps/runs", map[string]any{"environment": "development"})["id"].(string)
			waitRun(t, s, id, "the run to reach its delay", func(_ map[string]any, evs string) bool {
				return strings.Contains(evs, "block_started:wait")
			})
			s.Stop()

			s = serverOn(t, dbc, grace)
			r := s.Must(200, "GET", "/api/v1/runs/"+id, nil)
			if r["status"] != "queued" && r["status"] != "running" && r["status"] != "succeeded" {
				t.Fatalf("released run: %v", r)
			}
			r = waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool { return r["status"] != "queued" && r["status"] != "running" })
			if r["status"] != "succeeded" || r["output"] != "/fetch" {
				t.Fatalf("resumed run: %v", r)
			}
			if n := fx.count("/fetch", id); n != 1 {
				t.Errorf("the fetch block, finished before the stop, was sent %d times", n)
			}
			if r["resumes"].(float64) != 1 || !strings.Contains(r["resume_reason"].(string), "shut down") {
				t.Errorf("resumes %v, reason %q", r["resumes"], r["resume_reason"])
			}
			evs := events(t, s, id)
			checkSequence(t, id, evs)
			types := eventTypes(evs)
			for _, want := range []string{"block_finished:fetch block_started:wait block_interrupted:wait run_released: run_resumed: block_started:wait block_finished:wait block_started:use block_finished:use run_finished:"} {
				if !strings.Contains(types, want) {
					t.Errorf("events %s\nwant %s", types, want)
				}
			}
			for _, e := range evs {
				if e["type"] == "run_resumed" {
					d := e["data"].(map[string]any)
					if d["from_block"] != "wait" || d["attempt"].(float64) != 2 {
						t.Errorf("run_resumed: %v", d)
					}
				}
			}
			// Nothing of the run is kept once it ended.
			assertNoCheckpoints(t, s, id)
		})
	}
}

// A run interrupted while an http POST without idempotency_key was in
// flight fails when it resumes, with a reason a user can act on; with an
// idempotency key the request is sent again, with the same key.
func TestInterruptedPost(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, keyed := range []bool{false, true} {
				t.Run(fmt.Sprintf("idempotency_key=%v", keyed), func(t *testing.T) {
					dbc := b.Config(t)
					fx := newEffects(t, "/charge")
					grace := func(c *app.Config) { c.ShutdownGrace = 100 * time.Millisecond }
					s := serverOn(t, dbc, grace)
					s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "shop"})
					cfg := map[string]any{"method": "'POST'", "url": "`${env.FX}/charge?run=${run.id}`", "body": "({amount: 5})"}
					if keyed {
						cfg["idempotency_key"] = "`${run.id}-charge`"
					}
					s.Must(201, "POST", "/api/v1/projects/shop/flows", map[string]any{
						"name": "pay", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"FX": fx.URL},
						"blocks": []any{map[string]any{"id": "charge", "type": "http", "config": cfg}},
					})
					id := s.Must(202, "POST", "/api/v1/projects/shop/flows/pay/runs", map[string]any{"environment": "development"})["id"].(string)
					select {
					case <-fx.arrived:
					case <-time.After(30 * time.Second):
						t.Fatal("the POST did not arrive")
					}
					s.Stop() // the request is in flight

					close(fx.release) // the service answers from now on
					s = serverOn(t, dbc, grace)
					r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool {
						return r["status"] == "succeeded" || r["status"] == "failed"
					})
					checkSequence(t, id, events(t, s, id))
					if !keyed {
						msg, _ := r["error"].(string)
						if r["status"] != "failed" || !strings.Contains(msg, `block "charge" was interrupted`) ||
							!strings.Contains(msg, "idempotency_key") || !strings.Contains(msg, "not safe to repeat") {
							t.Fatalf("run: %v", r)
						}
						if n := fx.count("/charge", id); n != 1 {
							t.Errorf("the POST was sent %d times", n)
						}
						return
					}
					if r["status"] != "succeeded" {
						t.Fatalf("run: %v", r)
					}
					fx.mu.Lock()
					keys := fx.keys[id]
					fx.mu.Unlock()
					if len(keys) != 2 || keys[0] != id+"-charge" || keys[1] != keys[0] {
						t.Errorf("Idempotency-Key headers: %q, want the same key twice", keys)
					}
				})
			}
		})
	}
}

// A run lives through any number of drains (its replica shut down and
// released it: a deploy), but not through more unplanned interruptions
// (its worker's lease expired: the replica was killed or lost the
// database) than the limit, which then fails it with a reason. Drains
// counted toward the limit, so that a long run failed after a few deploys.
func TestResumeLimit(t *testing.T) {
	dbc := storetest.SQLiteConfig(t)
	clock := &apptest.Clock{}
	opts := func(c *app.Config) { c.ShutdownGrace = 100 * time.Millisecond; c.MaxResumes = 1; c.Now = clock.Now }
	s := serverOn(t, dbc, opts)
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
	s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
		"name": "slow", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "wait", "type": "delay", "config": map[string]any{"duration": "'4s'"}}},
	})
	atBlock := func(id string, i int) {
		waitRun(t, s, id, "the run to reach its delay", func(r map[string]any, evs string) bool {
			if r["status"] == "failed" {
				t.Fatalf("a run drained %d times failed: %v", i-1, r["error"])
			}
			return r["status"] == "running" && strings.Count(evs, "block_started:wait") == i
		})
	}

	// Three drains, more than the limit of one resume: the run goes on.
	id := s.Must(202, "POST", "/api/v1/projects/ops/flows/slow/runs", map[string]any{"environment": "development"})["id"].(string)
	for i := 1; i <= 3; i++ {
		atBlock(id, i)
		s.Stop()
		s = serverOn(t, dbc, opts)
	}
	r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool { return r["status"] != "running" && r["status"] != "queued" })
	if r["status"] != "succeeded" || r["resumes"] != float64(3) || r["drains"] != float64(3) {
		t.Fatalf("a run drained three times: %s, resumes %v, drains %v: %v", r["status"], r["resumes"], r["drains"], r["error"])
	}
	checkSequence(t, id, events(t, s, id))

	// Two lease expiries: the clock passes the lease of the worker that
	// runs it (held in a GET), and a new replica's rescuer queues it again
	// at once; the third claim finds it interrupted twice.
	fx := newEffects(t, "/hold")
	s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
		"name": "held", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"FX": fx.URL},
		"blocks": []any{map[string]any{"id": "get", "type": "http", "config": map[string]any{"url": "`${env.FX}/hold?run=${run.id}`"}}},
	})
	id = s.Must(202, "POST", "/api/v1/projects/ops/flows/held/runs", map[string]any{"environment": "development"})["id"].(string)
	<-fx.arrived
	for i := 1; i <= 2; i++ {
		clock.Advance(time.Hour)
		old := s
		s = serverOn(t, dbc, opts)
		if i == 1 {
			<-fx.arrived // resumed, and held again
		}
		old.Stop()
	}
	r = waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool { return r["status"] == "failed" })
	if msg := r["error"].(string); !strings.Contains(msg, "more than the limit of 1 resumes (HUSHFLOW_MAX_RESUMES") ||
		!strings.Contains(msg, "lease") {
		t.Errorf("error: %s", msg)
	}
	checkSequence(t, id, events(t, s, id))
}

// Long waits release their worker: 2,000 runs sleeping 60 s (500 on
// SQLite) hold no worker (the server has 8), a run queued meanwhile
// finishes at once, and
// when the wait is over every sleeper finishes, its finished blocks not
// repeated. Cancelling a waiting run ends it at once. The clock is moved
// forward instead of waiting for it.
func TestDurableWaits(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			// 2,000 on PostgreSQL, the database of installations with
			// many runs; SQLite (one writer) proves the same with 500.
			n := 2000
			if b.Name == "sqlite" {
				n = 500
			}
			if testing.Short() {
				n = 100
			}
			clock := &apptest.Clock{}
			s := serverOn(t, b.Config(t), func(c *app.Config) { c.Now = clock.Now; c.RateLimit = -1 })
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "sleeper", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{
					map[string]any{"id": "before", "type": "code", "config": map[string]any{"code": "return input.n * 2"}},
					map[string]any{"id": "nap", "type": "delay", "timeout": "2m", "config": map[string]any{"duration": "'60s'"}},
					map[string]any{"id": "after", "type": "code", "config": map[string]any{"code": "return steps.before.output + 1"}},
				},
			})
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "quick", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "hi", "type": "log", "config": map[string]any{"message": "'hi'"}}},
			})
			ids := make([]string, n)
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += 8 {
						ids[i] = s.Must(202, "POST", "/api/v1/projects/ops/flows/sleeper/runs",
							map[string]any{"environment": "development", "input": map[string]any{"n": i}})["id"].(string)
					}
				}()
			}
			wg.Wait()
			count := func(status string) int64 {
				var c int64
				if err := s.App.DB.Table("runs").Where("status = ?", status).Count(&c).Error; err != nil {
					t.Fatal(err)
				}
				return c
			}
			waitFor(t, 5*time.Minute, "every sleeper to wait", func() bool { return count("waiting") == int64(n) })
			if r := count("running"); r != 0 {
				t.Fatalf("%d runs hold a worker while sleeping", r)
			}
			start := time.Now()
			quick := s.Must(200, "POST", "/api/v1/projects/ops/flows/quick/runs?wait=30s", map[string]any{"environment": "development"})
			took := time.Since(start)
			if quick["status"] != "succeeded" {
				t.Fatalf("run queued beside %d sleepers: %v", n, quick)
			}
			t.Logf("%d runs sleeping; a run queued meanwhile finished in %s", n, took.Round(time.Millisecond))
			if count("waiting") != int64(n) {
				t.Fatalf("sleepers woke early")
			}

			// A waiting run is canceled at once.
			c := s.Must(200, "POST", "/api/v1/runs/"+ids[0]+"/cancel", nil)
			if c["status"] != "canceled" {
				t.Fatalf("cancel a waiting run: %v", c)
			}
			clock.Advance(61 * time.Second)
			waitFor(t, 5*time.Minute, "every sleeper to finish", func() bool { return count("succeeded") == int64(n) })
			for _, i := range []int{1, n / 2, n - 1} {
				r := s.Must(200, "GET", "/api/v1/runs/"+ids[i], nil)
				if r["output"].(float64) != float64(2*i+1) || r["resumes"].(float64) != 0 {
					t.Errorf("run %d: %v", i, r)
				}
				evs := events(t, s, ids[i])
				checkSequence(t, ids[i], evs)
				types := eventTypes(evs)
				if strings.Count(types, "block_started:before") != 1 || !strings.Contains(types, "block_waiting:nap run_resumed: block_finished:nap") {
					t.Errorf("run %d events: %s", i, types)
				}
				for _, e := range evs {
					if e["type"] == "block_finished" && e["block"] == "nap" {
						if w := e["data"].(map[string]any)["output"].(map[string]any)["waited_ms"].(float64); w < 60000 {
							t.Errorf("run %d waited %v ms", i, w)
						}
					}
				}
			}
			if r := s.Must(200, "GET", "/api/v1/runs/"+ids[0], nil); r["status"] != "canceled" {
				t.Errorf("canceled sleeper: %v", r)
			}
			var left int64
			s.App.DB.Table("run_checkpoints").Count(&left)
			if left != 0 {
				t.Errorf("%d checkpoints left after every run ended", left)
			}
		})
	}
}

// A checkpoint holds a block's real output, which later blocks need, but
// never in clear at rest: while a run waits, no table holds the secret an
// API echoed back, in any encoding; when it resumes, the next block reads
// the real value.
func TestCheckpointsSealedAtRest(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			clock := &apptest.Clock{}
			s := serverOn(t, b.Config(t), func(c *app.Config) { c.Now = clock.Now })
			setup(t, s)
			srv, _ := target(t)
			s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
				"name": "echo", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"API": srv.URL},
				"blocks": []any{
					map[string]any{"id": "call", "type": "http", "config": map[string]any{
						"url": "`${env.API}/x`", "headers": "({Authorization: `Bearer ${secrets.API_TOKEN}`})"}},
					map[string]any{"id": "nap", "type": "delay", "timeout": "2m", "config": map[string]any{"duration": "'60s'"}},
					map[string]any{"id": "check", "type": "code", "config": map[string]any{
						"code": "return steps.call.output.body.echo_auth === 'Bearer ' + secrets.API_TOKEN"}},
				},
			})
			id := s.Must(202, "POST", "/api/v1/projects/billing/flows/echo/runs", map[string]any{"environment": "development"})["id"].(string)
			waitRun(t, s, id, "the run to wait", func(r map[string]any, _ string) bool { return r["status"] == "waiting" })
			var cps []struct {
				Block, State string
				Output       []byte
			}
			s.App.DB.Raw("SELECT block, state, output FROM run_checkpoints WHERE run_id = ? ORDER BY block", id).Scan(&cps)
			if len(cps) != 2 || cps[0].Block != "call" || cps[0].State != "done" || len(cps[0].Output) == 0 || cps[1].State != "sleeping" {
				t.Fatalf("checkpoints while waiting: %+v", cps)
			}
			apptest.AssertAbsent(t, "tables while a run waits", apptest.DumpTables(t, s.App.DB), apptest.Forms(canaryToken)...)
			clock.Advance(61 * time.Second)
			r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool { return r["status"] == "succeeded" || r["status"] == "failed" })
			if r["status"] != "succeeded" || r["output"] != true {
				t.Fatalf("resumed run: %v", r)
			}
		})
	}
}

// A long wait before a block's next attempt releases the worker too: the
// run waits in the database and takes up at that attempt (the clock is
// moved forward instead of waiting).
func TestDurableRetryWait(t *testing.T) {
	clock := &apptest.Clock{}
	s := serverOn(t, storetest.SQLiteConfig(t), func(c *app.Config) { c.Now = clock.Now })
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
	s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
		"name": "flaky", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "try", "type": "code", "retry": map[string]any{"attempts": 3, "backoff": "20s"},
			"config": map[string]any{"code": "throw new Error('not yet')"}}},
	})
	id := s.Must(202, "POST", "/api/v1/projects/ops/flows/flaky/runs", map[string]any{"environment": "development"})["id"].(string)
	waitRun(t, s, id, "the run to wait before attempt 2", func(r map[string]any, _ string) bool { return r["status"] == "waiting" })
	clock.Advance(21 * time.Second)
	waitRun(t, s, id, "the run to wait before attempt 3", func(r map[string]any, evs string) bool {
		return r["status"] == "waiting" && strings.Count(evs, "block_retry:try") == 2
	})
	clock.Advance(41 * time.Second) // the backoff doubled
	r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool { return r["status"] == "failed" })
	evs := events(t, s, id)
	checkSequence(t, id, evs)
	types := eventTypes(evs)
	if strings.Count(types, "block_started:try") != 1 || strings.Count(types, "run_resumed:") != 2 ||
		!strings.Contains(types, "block_retry:try block_waiting:try run_resumed: block_retry:try block_waiting:try run_resumed: block_failed:try run_finished:") {
		t.Errorf("events: %s", types)
	}
	for _, e := range evs {
		if e["type"] == "block_failed" && e["data"].(map[string]any)["attempt"].(float64) != 3 {
			t.Errorf("last attempt: %v", e["data"])
		}
		if e["type"] == "run_resumed" && !strings.Contains(e["data"].(map[string]any)["reason"].(string), "before its attempt") {
			t.Errorf("resume reason: %v", e["data"])
		}
	}
	if !strings.Contains(r["error"].(string), "not yet") || r["resumes"].(float64) != 0 {
		t.Errorf("run: %v", r)
	}
}

// Values a run learns after it starts (a secret read from another
// environment, a secrets.mask value) stay masked, and pinned, when the run
// resumes on a new claim: the checkpoints keep them, sealed, beside the
// outputs that may hold them.
func TestResumeKeepsLearntValues(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			hostB := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
			ln, err := net.Listen("tcp", "127.0.0.2:0")
			if err != nil {
				t.Skipf("listen on 127.0.0.2: %v", err)
			}
			hostB.Listener = ln
			hostB.Start()
			defer hostB.Close()
			clock := &apptest.Clock{}
			s := serverOn(t, b.Config(t), func(c *app.Config) { c.Now = clock.Now; c.HTTPAllow = "127.0.0.0/8" })
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			prod := "prod_" + strings.Repeat("Q7w", 8)
			s.Must(201, "POST", "/api/v1/secrets", map[string]any{"project": "ops", "environment": "production", "name": "P", "value": prod,
				"allowed_hosts": []string{"127.0.0.1"}})
			derived := "drv_" + strings.Repeat("x9Z", 8)
			reversed := []rune(derived)
			for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
				reversed[i], reversed[j] = reversed[j], reversed[i]
			}
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "learn", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{
					map[string]any{"id": "read", "type": "code", "config": map[string]any{"code": "return {p: await secrets.get('P', {environment: 'production'}), " +
						"m: secrets.mask(input.r.split('').reverse().join(''))}"}},
					map[string]any{"id": "nap", "type": "delay", "timeout": "2m", "config": map[string]any{"duration": "'60s'"}},
					map[string]any{"id": "show", "type": "code", "config": map[string]any{"code": "console.log(steps.read.output.p, steps.read.output.m); return steps.read.output"}},
					map[string]any{"id": "send", "type": "http", "config": map[string]any{"method": "'POST'", "url": "'" + hostB.URL + "/x'",
						"body": "({p: steps.read.output.p})", "timeout": "'2s'"}},
				},
			})
			id := s.Must(202, "POST", "/api/v1/projects/ops/flows/learn/runs",
				map[string]any{"environment": "development", "input": map[string]any{"r": string(reversed)}})["id"].(string)
			waitRun(t, s, id, "the run to wait", func(r map[string]any, _ string) bool { return r["status"] == "waiting" })
			clock.Advance(61 * time.Second)
			r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool {
				return r["status"] != "waiting" && r["status"] != "queued" && r["status"] != "running"
			})
			if r["status"] != "failed" || !strings.Contains(fmt.Sprint(r["error"]), "may only be sent to 127.0.0.1") {
				t.Errorf("the resumed run sent a production value pinned to 127.0.0.1 elsewhere: %v", r)
			}
			evs := events(t, s, id)
			all := fmt.Sprint(r, evs)
			for _, v := range []string{prod, derived} {
				if strings.Contains(all, v) {
					t.Errorf("the resumed run shows %q unmasked", v)
				}
			}
			if !strings.Contains(all, "[REDACTED:P]") {
				t.Errorf("no mask of P in the resumed run's events: %s", all)
			}
		})
	}
}
