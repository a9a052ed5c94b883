package flows_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
	"github.com/jackc/pgx/v5"
)

// These tests do to `hushflow serve` processes what operators and
// infrastructure do: rolling restarts (SIGTERM), killed replicas
// (SIGKILL), connections terminated by PostgreSQL, and a PostgreSQL
// restart, while a stream of runs flows. Every run's side effects are
// counted at a local HTTP server by run id.

// durableFlow is code -> http GET -> 200 ms delay -> log.
func durableFlow(fx string) map[string]any {
	return map[string]any{
		"name": "steady", "trigger": map[string]any{"type": "webhook"}, "env": map[string]string{"FX": fx},
		"blocks": []any{
			map[string]any{"id": "prepare", "type": "code", "config": map[string]any{"code": "return {n: input.n}"}},
			map[string]any{"id": "fetch", "type": "http", "config": map[string]any{"url": "`${env.FX}/fetch?run=${run.id}`"}},
			map[string]any{"id": "pause", "type": "delay", "config": map[string]any{"duration": "'200ms'"}},
			map[string]any{"id": "report", "type": "log", "config": map[string]any{"message": "`done ${steps.prepare.output.n}`"}},
		},
	}
}

// cluster is the replicas of a test, some of which may be down.
type cluster struct {
	t     *testing.T
	mu    sync.Mutex // guards procs
	procs []*proc
	cfg   []serveConfig
}

func (c *cluster) up() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*proc
	for _, p := range c.procs {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

func (c *cluster) set(i int, p *proc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.procs[i] = p
}

func (c *cluster) any() *proc {
	var p *proc
	waitFor(c.t, 60*time.Second, "a replica to be up", func() bool {
		if ps := c.up(); len(ps) > 0 {
			p = ps[0]
		}
		return p != nil
	})
	return p
}

// stream posts runs (by webhook and by the API, in turn) to the replicas
// that are up, about rate a second, until stop is closed. A request that
// fails (a replica going down, a 503) is retried on the next replica: a
// run is counted only once it was accepted. It returns the accepted ids
// and the 503 answers seen (with their Retry-After).
type stream struct {
	mu        sync.Mutex // guards ids, unavailable
	ids       []string
	refused   int // 503 answers
	retryHdr  int // of which carried Retry-After
	errs      int // connection errors (a replica going down)
	stop      chan struct{}
	done      chan struct{}
	anyAnswer atomic.Int64
}

func startStream(c *cluster, rate int) *stream {
	st := &stream{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(st.done)
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		n := 0
		for {
			select {
			case <-st.stop:
				return
			case <-t.C:
			}
			n++
			st.post(c, n)
		}
	}()
	return st
}

func (st *stream) post(c *cluster, n int) {
	for try := 0; try < 100; try++ {
		select {
		case <-st.stop:
			return
		default:
		}
		ps := c.up()
		if len(ps) == 0 {
			// No replica up: try again as a client would, a moment later.
			select {
			case <-st.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		p := ps[(n+try)%len(ps)]
		var status int
		var m map[string]any
		var hdr http.Header
		if n%2 == 0 {
			status, m, hdr = p.doRaw("POST", "/hooks/ops/steady", map[string]any{"n": n})
		} else {
			status, m, hdr = p.doRaw("POST", "/api/v1/projects/ops/flows/steady/runs", map[string]any{"environment": "development", "input": map[string]any{"n": n}})
		}
		st.anyAnswer.Add(1)
		st.mu.Lock()
		switch {
		case status == 202:
			st.ids = append(st.ids, m["id"].(string))
			st.mu.Unlock()
			return
		case status == 503:
			st.refused++
			if hdr.Get("Retry-After") != "" && strings.Contains(fmt.Sprint(m), "database_unavailable") {
				st.retryHdr++
			}
		case status == 0:
			st.errs++
		default:
			st.mu.Unlock()
			c.t.Errorf("queue run %d: status %d: %v", n, status, m)
			return
		}
		st.mu.Unlock()
		// Refused: retry as a client would after Retry-After, sooner.
		select {
		case <-st.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (st *stream) end() []string {
	close(st.stop)
	<-st.done
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.ids...)
}

// doRaw is do without failing the test on a connection error (status 0).
func (p *proc) doRaw(method, path string, body any) (int, map[string]any, http.Header) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, p.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+procToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := rawClient.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &m)
	return resp.StatusCode, m, resp.Header
}

var rawClient = &http.Client{Timeout: 30 * time.Second}

// signal sends sig to the process and waits for it to exit.
func (p *proc) signal(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Errorf("process %d did not stop on %v", p.cmd.Process.Pid, sig)
	}
}

// settle waits until none of ids is queued, running or waiting, and
// returns the runs by id (read from the database).
func settle(t *testing.T, db *store.DB, ids []string, within time.Duration) map[string]runRow {
	t.Helper()
	var rows map[string]runRow
	apptest.Eventually(t, within, "every run to end", func() error {
		var rs []runRow
		if err := db.Raw("SELECT id, status, error, resumes FROM runs WHERE id IN ?", ids).Scan(&rs).Error; err != nil {
			return err
		}
		rows = map[string]runRow{}
		open := 0
		for _, r := range rs {
			rows[r.ID] = r
			if r.Status == "queued" || r.Status == "running" || r.Status == "waiting" {
				open++
			}
		}
		if open > 0 || len(rows) != len(ids) {
			return fmt.Errorf("%d of %d runs open, %d found", open, len(ids), len(rows))
		}
		return nil
	})
	return rows
}

type runRow struct {
	ID      string
	Status  string
	Error   string
	Resumes int
}

// checkRuns fails for every run that did not succeed, whose stored events
// have a gap, a repeat or not exactly one run_finished, or whose fetch
// block called the service other than once (twice is allowed only for a
// run that resumed from that very block: a GET is safe to repeat). It
// returns the number of resumed runs.
func checkRuns(t *testing.T, db *store.DB, fx *effects, rows map[string]runRow) (resumed int) {
	t.Helper()
	failed := 0
	for id, r := range rows {
		if r.Status != "succeeded" {
			failed++
			if failed <= 5 {
				t.Errorf("run %s: %s: %s", id, r.Status, r.Error)
			}
		}
		if r.Resumes > 0 {
			resumed++
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d runs did not succeed", failed, len(rows))
	}
	ids := make([]string, 0, len(rows))
	for id := range rows {
		ids = append(ids, id)
	}
	var evs []struct {
		RunID string
		Seq   int
		Type  string
		Block string
		Data  string
	}
	if err := db.Raw("SELECT run_id, seq, type, block, data FROM events WHERE run_id IN ? ORDER BY run_id, seq", ids).Scan(&evs).Error; err != nil {
		t.Fatal(err)
	}
	byRun := map[string][]int{}
	finished := map[string]int{}
	fromFetch := map[string]bool{}
	for _, e := range evs {
		byRun[e.RunID] = append(byRun[e.RunID], e.Seq)
		if e.Type == "run_finished" {
			finished[e.RunID]++
		}
		if e.Type == "run_resumed" && strings.Contains(e.Data, `"from_block":"fetch"`) {
			fromFetch[e.RunID] = true
		}
	}
	bad := 0
	for _, id := range ids {
		seqs := byRun[id]
		ok := finished[id] == 1
		for i, s := range seqs {
			ok = ok && s == i+2 // seq 1 is the run row itself
		}
		if !ok {
			bad++
			if bad <= 5 {
				t.Errorf("run %s: event seqs %v, %d run_finished", id, seqs, finished[id])
			}
		}
		n := fx.count("/fetch", id)
		if n != 1 && !(n == 2 && fromFetch[id]) {
			t.Errorf("run %s: the fetch block called the service %d times (resumed from it: %v)", id, n, fromFetch[id])
		}
	}
	if bad > 0 {
		t.Errorf("%d runs with a gap, a repeat or not one run_finished in their events", bad)
	}
	return resumed
}

func setupSteady(t *testing.T, p *proc, fx *effects) {
	p.must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
	p.must(201, "POST", "/api/v1/projects/ops/flows", durableFlow(fx.URL))
}

// startCluster starts n replicas of `hushflow serve` on db (each with a
// data dir of its own when there are several), with extra environment.
func startCluster(t *testing.T, db store.Config, n int, extra ...string) *cluster {
	bin := hushflowBinary(t)
	c := &cluster{t: t, procs: make([]*proc, n)}
	for i := 0; i < n; i++ {
		dir := db.DataDir
		if n > 1 {
			dir = t.TempDir()
		}
		c.cfg = append(c.cfg, serveConfig{bin: bin, db: db, dataDir: dir, extra: extra})
		c.set(i, startServe(t, c.cfg[i]))
	}
	return c
}

// replicas is 2 on PostgreSQL, 1 on SQLite (an embedded database is one
// process's file: the test restarts that one).
func replicas(b storetest.Backend) int {
	if b.Name == "postgres" {
		return 2
	}
	return 1
}

// Rolling restart: each replica gets SIGTERM and is started again, in
// turn, while runs flow. No run fails or stays open, each HTTP call is
// made once.
func TestRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hushflow serve processes")
	}
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Config(t)
			fx := newEffects(t, "")
			n := replicas(b)
			c := startCluster(t, db, n, "HUSHFLOW_SHUTDOWN_GRACE=20s")
			setupSteady(t, c.any(), fx)
			st := startStream(c, 40)
			waitFor(t, 30*time.Second, "runs to flow", func() bool { return st.anyAnswer.Load() > 20 })
			for round := 0; round < 2; round++ {
				for i := 0; i < n; i++ {
					p := c.up()[0]
					for _, q := range c.up() {
						if q == c.procs[i] {
							p = q
						}
					}
					c.set(i, nil)
					p.signal(syscall.SIGTERM)
					c.set(i, startServe(t, c.cfg[i]))
					before := st.anyAnswer.Load()
					waitFor(t, 30*time.Second, "runs to flow again", func() bool { return st.anyAnswer.Load() > before+20 })
				}
			}
			ids := st.end()
			sql := storetest.Open(t, db, nil)
			rows := settle(t, sql, ids, 60*time.Second)
			resumed := checkRuns(t, sql, fx, rows)
			t.Logf("%d runs through %d rolling restarts of %d replicas: %d failed, %d resumed", len(ids), 2*n, n, countFailed(rows), resumed)
		})
	}
}

// A replica killed with SIGKILL: its runs resume elsewhere (on the other
// replica, or on the restarted one with SQLite) once their lease expires;
// the blocks they finished before the kill are not run again.
func TestKilledReplicaResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hushflow serve processes")
	}
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Config(t)
			fx := newEffects(t, "")
			n := replicas(b)
			c := startCluster(t, db, n, "HUSHFLOW_RUN_LEASE=2s")
			setupSteady(t, c.any(), fx)
			st := startStream(c, 40)
			waitFor(t, 30*time.Second, "runs to flow", func() bool { return st.anyAnswer.Load() > 40 })
			victim := c.procs[0]
			c.set(0, nil)
			killed := time.Now()
			victim.kill()
			if n == 1 {
				c.set(0, startServe(t, c.cfg[0]))
			}
			before := st.anyAnswer.Load()
			waitFor(t, 30*time.Second, "runs to flow again", func() bool { return st.anyAnswer.Load() > before+40 })
			ids := st.end()
			sql := storetest.Open(t, db, nil)
			rows := settle(t, sql, ids, 60*time.Second)
			resumed := checkRuns(t, sql, fx, rows)
			if resumed == 0 {
				t.Errorf("no run was in progress on the killed replica")
			}
			var resumes []struct{ At time.Time }
			sql.Raw("SELECT at FROM events WHERE type = 'run_resumed' AND run_id IN ?", ids).Scan(&resumes)
			var last time.Time
			for _, r := range resumes {
				if r.At.After(last) {
					last = r.At
				}
			}
			t.Logf("%d runs, one replica of %d killed: %d failed, %d resumed, the last of them %s after the kill (lease 2s)",
				len(ids), n, countFailed(rows), resumed, last.Sub(killed).Round(10*time.Millisecond))
		})
	}
}

// PostgreSQL terminates every Hushflow connection three times under load:
// no run fails, none has a gap in its events.
func TestTerminatedConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hushflow serve processes")
	}
	if os.Getenv(storetest.EnvURL) == "" {
		t.Skipf("PostgreSQL only: set %s", storetest.EnvURL)
	}
	db := storetest.PostgresConfig(t)
	fx := newEffects(t, "")
	c := startCluster(t, db, 2)
	setupSteady(t, c.any(), fx)
	st := startStream(c, 60)
	conn, err := pgx.Connect(context.Background(), db.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	killedConns := 0
	for i := 0; i < 3; i++ {
		before := st.anyAnswer.Load()
		waitFor(t, 30*time.Second, "runs to flow", func() bool { return st.anyAnswer.Load() > before+30 })
		var n int
		err := conn.QueryRow(context.Background(), `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		killedConns += n
	}
	before := st.anyAnswer.Load()
	waitFor(t, 30*time.Second, "runs to flow", func() bool { return st.anyAnswer.Load() > before+30 })
	ids := st.end()
	sql := storetest.Open(t, db, nil)
	rows := settle(t, sql, ids, 60*time.Second)
	resumed := checkRuns(t, sql, fx, rows)
	st.mu.Lock()
	t.Logf("%d runs, %d connections terminated in 3 rounds: %d failed, %d resumed, %d requests answered 503 and retried",
		len(ids), killedConns, countFailed(rows), resumed, st.refused)
	st.mu.Unlock()
	for _, p := range c.up() {
		if strings.Contains(p.Logs.String(), "store run events\"") && strings.Contains(p.Logs.String(), "dropped") {
			t.Errorf("events dropped")
		}
	}
}

// A PostgreSQL restart under load: the API and webhooks answer 503 with
// Retry-After while it is down, and no run fails. The cluster is the
// test's own.
func TestPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster and hushflow serve processes")
	}
	pg := storetest.PrivatePostgres(t)
	db := pg.Database(t)
	fx := newEffects(t, "")
	c := startCluster(t, db, 2)
	setupSteady(t, c.any(), fx)
	st := startStream(c, 40)
	waitFor(t, 30*time.Second, "runs to flow", func() bool { return st.anyAnswer.Load() > 40 })
	pg.Stop()
	down := time.Now()
	// Down until both replicas have refused requests for a while.
	waitFor(t, 60*time.Second, "503 answers while PostgreSQL is down", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.refused >= 150
	})
	pg.Start()
	outage := time.Since(down)
	before := st.anyAnswer.Load()
	waitFor(t, 60*time.Second, "runs to flow again", func() bool { return st.anyAnswer.Load() > before+40 })
	ids := st.end()
	sql := storetest.Open(t, db, nil)
	rows := settle(t, sql, ids, 90*time.Second)
	resumed := checkRuns(t, sql, fx, rows)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.retryHdr != st.refused {
		t.Errorf("%d of %d 503 answers lacked Retry-After or the database_unavailable code", st.refused-st.retryHdr, st.refused)
	}
	t.Logf("PostgreSQL down for %s under load: %d requests answered 503 with Retry-After; %d runs: %d failed, %d resumed",
		outage.Round(100*time.Millisecond), st.refused, len(ids), countFailed(rows), resumed)
}

func countFailed(rows map[string]runRow) int {
	n := 0
	for _, r := range rows {
		if r.Status != "succeeded" {
			n++
		}
	}
	return n
}

// A client following a run's events (hushflow run logs --follow) across a
// restart of the replica serving its stream: the replica ends the stream
// when it begins to shut down (/readyz answers 503 meanwhile), the CLI
// follows again from the last event it printed, and it ends with the run,
// every event printed once.
func TestFollowAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hushflow serve processes")
	}
	db := storetest.SQLiteConfig(t)
	bin := hushflowBinary(t)
	cfg := serveConfig{bin: bin, db: db, dataDir: db.DataDir, addr: freeAddr(t), extra: []string{"HUSHFLOW_SHUTDOWN_GRACE=1s"}}
	p := startServe(t, cfg)
	p.must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
	p.must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
		"name": "slow", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{
			map[string]any{"id": "first", "type": "log", "config": map[string]any{"message": "'one'"}},
			map[string]any{"id": "wait", "type": "delay", "config": map[string]any{"duration": "'3s'"}},
			map[string]any{"id": "last", "type": "log", "config": map[string]any{"message": "'two'"}},
		},
	})
	id := p.must(202, "POST", "/api/v1/projects/ops/flows/slow/runs", map[string]any{"environment": "development"})["id"].(string)
	cli := exec.Command(bin, "run", "logs", id, "--follow")
	cli.Env = append(os.Environ(), "HUSHFLOW_ADDR="+p.URL, "HUSHFLOW_TOKEN="+procToken)
	var out bytes.Buffer
	cli.Stdout, cli.Stderr = &out, &out
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the run to reach its delay", func() bool {
		_, ev := p.do("GET", "/api/v1/runs/"+id+"/events", nil)
		return strings.Contains(eventList(ev), "block_started:wait")
	})
	// While it drains, the replica says it is not ready.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, 10*time.Second, "/readyz to answer 503 while the replica drains", func() bool {
		resp, err := http.Get(p.URL + "/readyz")
		if err != nil {
			t.Fatalf("the draining replica stopped answering before /readyz said 503: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode == 503
	})
	<-p.done
	p = startServe(t, cfg)
	done := make(chan error, 1)
	go func() { done <- cli.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run logs --follow: %v\n%s", err, out.String())
		}
	case <-time.After(90 * time.Second):
		_ = cli.Process.Kill()
		t.Fatalf("run logs --follow did not end:\n%s", out.String())
	}
	text := out.String()
	for _, want := range []string{"run_resumed", "status=succeeded"} {
		if !strings.Contains(text, want) {
			t.Errorf("follow output lacks %s:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "block_finished     first"); n != 1 {
		t.Errorf("block_finished of first printed %d times:\n%s", n, text)
	}
}

// A replica killed with SIGKILL in the middle of a 100-item loop
// (concurrency 10): on the restarted replica the run resumes the loop,
// and no iteration whose checkpoint was stored before the kill is run
// again; the iterations in flight at the kill (at most 10) are, being
// GETs. The output holds the 100 responses in order.
func TestKilledDuringLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hushflow serve processes")
	}
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Config(t)
			// A peer that answers each item after 20 ms, so that the
			// loop is still running when the replica is killed.
			peer := newSlowPeer(t, func(string) time.Duration { return 20 * time.Millisecond })
			distinct := func() int { return len(peer.counts()) }
			c := startCluster(t, db, 1, "HUSHFLOW_RUN_LEASE=2s")
			p := c.any()
			p.must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			p.must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "loop", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"PEER": peer.URL},
				"blocks": []any{
					map[string]any{"id": "items", "type": "code", "config": map[string]any{"code": "return Array.from({length: 100}, (_, i) => i)"}},
					map[string]any{"id": "get", "type": "http", "each": "steps.items.output", "concurrency": 10,
						"config": map[string]any{"url": "`${env.PEER}/item/${item}`"}},
				},
			})
			id := p.must(202, "POST", "/api/v1/projects/ops/flows/loop/runs", map[string]any{"environment": "development"})["id"].(string)
			waitFor(t, 60*time.Second, "30 items to be requested", func() bool { return distinct() >= 30 })
			c.set(0, nil)
			p.kill()
			sql := storetest.Open(t, db, nil)
			var done []string
			if err := sql.Raw("SELECT block FROM run_checkpoints WHERE run_id = ? AND block LIKE 'get[%' AND state = 'done'", id).Scan(&done).Error; err != nil {
				t.Fatal(err)
			}
			before := distinct()
			if len(done) == 0 || len(done) >= 100 {
				t.Fatalf("%d iterations checkpointed at the kill: the kill did not land in the loop", len(done))
			}
			c.set(0, startServe(t, c.cfg[0]))
			rows := settle(t, sql, []string{id}, 120*time.Second)
			if rows[id].Status != "succeeded" {
				t.Fatalf("run after the kill: %+v", rows[id])
			}
			hits := peer.counts()
			again := 0
			for i := 0; i < 100; i++ {
				n := hits[fmt.Sprintf("/item/%d", i)]
				switch {
				case n == 0:
					t.Errorf("item %d was never requested", i)
				case n > 2:
					t.Errorf("item %d was requested %d times", i, n)
				case n == 2:
					again++
				}
			}
			for _, blk := range done {
				var i int
				fmt.Sscanf(blk, "get[%d]", &i)
				if n := hits[fmt.Sprintf("/item/%d", i)]; n != 1 {
					t.Errorf("item %d finished before the kill but was requested %d times", i, n)
				}
			}
			if again > 10 {
				t.Errorf("%d items requested twice; at most the 10 in flight should be", again)
			}
			var out string
			sql.Raw("SELECT output FROM runs WHERE id = ?", id).Scan(&out)
			var resp []map[string]any
			if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp) != 100 {
				t.Fatalf("output: %v %.200s", err, out)
			}
			for i, r := range resp {
				if body, _ := r["body"].(map[string]any); body["path"] != fmt.Sprintf("/item/%d", i) {
					t.Fatalf("output[%d] is %v", i, r["body"])
				}
			}
			t.Logf("killed after %d of 100 items were requested, %d checkpointed; after the resume %d were requested again (in flight at the kill)", before, len(done), again)
		})
	}
}

// A replica killed with SIGKILL while a sub-flow runs: on the restarted
// replica the parent resumes its flow block and follows the same child
// run (the block starts one child per attempt, and the attempt resumes),
// the child resumes too, and neither repeats what it finished: the
// parent's POST before the flow block and after it are each sent once.
func TestKilledDuringSubflow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hushflow serve processes")
	}
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Config(t)
			// The child's request is answered after 300 ms, so that the
			// kill lands while the child runs and the parent waits.
			peer := newSlowPeer(t, func(path string) time.Duration {
				if strings.HasPrefix(path, "/child/") {
					return 300 * time.Millisecond
				}
				return 0
			})
			count := func(prefix string) (n int) {
				for p, c := range peer.counts() {
					if strings.HasPrefix(p, prefix) {
						n += c
					}
				}
				return n
			}
			c := startCluster(t, db, 1, "HUSHFLOW_RUN_LEASE=2s")
			p := c.any()
			p.must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			env := map[string]string{"PEER": peer.URL}
			p.must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "work", "trigger": map[string]any{"type": "manual"}, "env": env,
				"blocks": []any{map[string]any{"id": "fetch", "type": "http", "config": map[string]any{"url": "`${env.PEER}/child/${run.id}`"}}},
			})
			p.must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "main", "trigger": map[string]any{"type": "manual"}, "env": env,
				"blocks": []any{
					map[string]any{"id": "before", "type": "http", "config": map[string]any{"method": "'POST'", "url": "`${env.PEER}/before/${run.id}`"}},
					map[string]any{"id": "sub", "type": "flow", "timeout": "2m", "config": map[string]any{"flow": "'work'", "input": "({n: 1})"}},
					map[string]any{"id": "after", "type": "http", "config": map[string]any{"method": "'POST'", "url": "`${env.PEER}/after/${run.id}`"}},
					map[string]any{"id": "out", "type": "code", "config": map[string]any{"code": "return steps.sub.output.body"}},
				},
			})
			id := p.must(202, "POST", "/api/v1/projects/ops/flows/main/runs", map[string]any{"environment": "development"})["id"].(string)
			waitFor(t, 60*time.Second, "the child's request", func() bool { return count("/child/") > 0 })
			c.set(0, nil)
			p.kill()
			sql := storetest.Open(t, db, nil)
			var children []string
			if err := sql.Raw("SELECT id FROM runs WHERE parent_run_id = ?", id).Scan(&children).Error; err != nil {
				t.Fatal(err)
			}
			if len(children) != 1 || count("/after/") != 0 {
				t.Fatalf("at the kill: children %v, after sent %d times: the kill did not land in the sub-flow", children, count("/after/"))
			}
			c.set(0, startServe(t, c.cfg[0]))
			rows := settle(t, sql, []string{id, children[0]}, 120*time.Second)
			if rows[id].Status != "succeeded" || rows[children[0]].Status != "succeeded" {
				t.Fatalf("after the kill: parent %+v, child %+v", rows[id], rows[children[0]])
			}
			var after []string
			sql.Raw("SELECT id FROM runs WHERE parent_run_id = ?", id).Scan(&after)
			if len(after) != 1 || after[0] != children[0] {
				t.Errorf("children after the resume: %v, want only %s", after, children[0])
			}
			if n := count("/before/" + id); n != 1 {
				t.Errorf("the POST before the flow block was sent %d times, want 1", n)
			}
			if n := count("/after/" + id); n != 1 {
				t.Errorf("the POST after the flow block was sent %d times, want 1", n)
			}
			if n := count("/child/" + children[0]); n < 1 || n > 2 {
				t.Errorf("the child's GET was sent %d times, want 1, or 2 (in flight at the kill)", n)
			}
			var out string
			sql.Raw("SELECT output FROM runs WHERE id = ?", id).Scan(&out)
			if !strings.Contains(out, "/child/"+children[0]) {
				t.Errorf("the parent's output %q does not hold its child's response", out)
			}
			if rows[id].Resumes == 0 && rows[children[0]].Resumes == 0 {
				t.Errorf("neither run was resumed: %+v %+v", rows[id], rows[children[0]])
			}
		})
	}
}

// slowPeer is a local service that counts its requests by path and
// answers each with {"path": ...} after delay(path) (less when the client
// goes away: a killed replica).
type slowPeer struct {
	*httptest.Server
	mu   sync.Mutex // guards hits
	hits map[string]int
}

func newSlowPeer(t *testing.T, delay func(path string) time.Duration) *slowPeer {
	p := &slowPeer{hits: map[string]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.hits[r.URL.Path]++
		p.mu.Unlock()
		if d := delay(r.URL.Path); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(p.Close)
	return p
}

// counts is a copy of the requests so far, by path.
func (p *slowPeer) counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.hits)
}

// A database away for longer than the lease makes a worker give up the
// run whose block's checkpoint it could not store; the events it could
// not store (here: the answer of the POST it had sent) go to the server
// log, redacted, instead of nowhere: the only record that the request
// went out and what it returned. The run resumes and, the POST not safe
// to repeat, fails saying so.
func TestGivenUpRunLogsItsEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster and a hushflow serve process")
	}
	pg := storetest.PrivatePostgres(t)
	db := pg.Database(t)
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		// The service echoes the secret header: the log must not show it.
		fmt.Fprintf(w, `{"charged":"ch_given_up_42","auth":%q}`, r.Header.Get("Authorization"))
	}))
	defer peer.Close()
	p := startServe(t, serveConfig{bin: hushflowBinary(t), db: db, dataDir: db.DataDir, extra: []string{"HUSHFLOW_RUN_LEASE=2s"}})
	p.must(201, "POST", "/api/v1/projects", map[string]any{"name": "pay"})
	const token = "sk_live_GivenUp7Qm2Lx9Vr4Tz"
	p.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "PAY_TOKEN", "value": token, "project": "pay"})
	p.must(201, "POST", "/api/v1/projects/pay/flows", map[string]any{
		"name": "charge", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"PEER": peer.URL},
		"blocks": []any{
			map[string]any{"id": "charge", "type": "http", "timeout": "60s", "config": map[string]any{"method": "'POST'", "url": "env.PEER", "body": "({amount: 42})",
				"headers": "({Authorization: `Bearer ${secrets.PAY_TOKEN}`})"}},
			map[string]any{"id": "after", "type": "code", "config": map[string]any{"code": "return steps.charge.output.status"}},
		},
	})
	id := p.must(202, "POST", "/api/v1/projects/pay/flows/charge/runs", map[string]any{"environment": "development"})["id"].(string)
	<-arrived
	pg.Stop()
	close(release) // the peer answers while the database is away
	// The checkpoint of charge is retried for as long as the lease would
	// hold, then the run is given up.
	waitFor(t, time.Minute, "the worker to give the run up", func() bool { return strings.Contains(p.Logs.String(), "gave up a run") })
	pg.Start()
	waitFor(t, time.Minute, "the run to end", func() bool {
		st, r := p.do("GET", "/api/v1/runs/"+id, nil)
		return st == 200 && r["status"] == "failed"
	})
	logs := p.Logs.String()
	if !strings.Contains(logs, "event of a run given up, not stored") || !strings.Contains(logs, "ch_given_up_42") {
		t.Fatalf("the given-up run's events are not in the log:\n%s", logs)
	}
	// The events logged are redacted like stored ones: the echoed token
	// shows masked, in no form.
	for _, form := range []string{token, base64.StdEncoding.EncodeToString([]byte(token)), hex.EncodeToString([]byte(token))} {
		if strings.Contains(logs, form) {
			t.Fatalf("the log of the given-up run's events holds the secret (%s):\n%s", form, logs)
		}
	}
	if !strings.Contains(logs, "[REDACTED:PAY_TOKEN]") {
		t.Fatalf("the echoed token is not masked in the log:\n%s", logs)
	}
}
