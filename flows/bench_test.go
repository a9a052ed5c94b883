package flows_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
)

// TestFlowThroughput measures end-to-end runs per second of a 3-block
// flow (two code blocks driven by expressions, the second with an `if`,
// and a log block whose message resolves a secret) on PostgreSQL, with
// every event stored and redacted. Runs are queued through the HTTP API by
// concurrent clients while the workers execute them; the clock stops when
// the last run ends. Latency is queue-to-finish (finished_at - queued_at).
//
//	HUSHFLOW_BENCH=1 go test -run TestFlowThroughput -v ./flows/
//
// HUSHFLOW_BENCH_RUNS (default 2000), HUSHFLOW_BENCH_WORKERS (default 64, the server default),
// HUSHFLOW_BENCH_CLIENTS (default 16) and HUSHFLOW_BENCH_RATE (runs queued
// per second; default: as fast as the clients can) tune it. `make bench`
// runs it.
func TestFlowThroughput(t *testing.T) {
	if os.Getenv("HUSHFLOW_BENCH") != "1" {
		t.Skip("benchmark: set HUSHFLOW_BENCH=1 (and HUSHFLOW_TEST_DATABASE_URL) to run it")
	}
	if os.Getenv(storetest.EnvURL) == "" {
		t.Skipf("the flow benchmark runs on PostgreSQL: set %s", storetest.EnvURL)
	}
	n := envInt("HUSHFLOW_BENCH_RUNS", 2000)
	workers := envInt("HUSHFLOW_BENCH_WORKERS", 64)
	clients := envInt("HUSHFLOW_BENCH_CLIENTS", 16)
	s := apptest.Start(t, storetest.PostgresConfig(t), func(c *app.Config) {
		c.Workers, c.RateLimit = workers, -1
		if n := envInt("HUSHFLOW_BENCH_SANDBOX", 0); n > 0 {
			c.SandboxWorkers = n
		}
	})
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "bench"})
	s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": "tok_bench_9fK2xQ7zLmW3pR8vN1", "project": "bench"})
	s.Must(201, "POST", "/api/v1/projects/bench/flows", map[string]any{
		"name": "three", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{
			map[string]any{"id": "score", "type": "code", "config": map[string]any{
				"code": "return {score: input.n * 2, even: input.n % 2 == 0}"}},
			map[string]any{"id": "label", "type": "code", "if": "steps.score.output.score >= 0", "config": map[string]any{
				"code": "return {label: (steps.score.output.even ? 'even-' : 'odd-') + steps.score.output.score}"}},
			map[string]any{"id": "report", "type": "log", "config": map[string]any{
				"message": "`${steps.label.output.label} with ${secrets.API_TOKEN}`"}},
		},
	})
	// Warm up (plan cache, sandbox, connections), then measure.
	s.Must(200, "POST", "/api/v1/projects/bench/flows/three/runs?wait=30s", map[string]any{"environment": "development", "input": map[string]any{"n": 0}})
	db := s.App.DB
	var dbName string
	db.Raw("SELECT current_database()").Scan(&dbName)
	type pgStats struct{ XactCommit, TupInserted, TupUpdated, TupFetched, Sessions int64 }
	stats := func() pgStats {
		var st pgStats
		db.Raw("SELECT xact_commit, tup_inserted, tup_updated, tup_fetched, sessions FROM pg_stat_database WHERE datname = ?", dbName).Scan(&st)
		return st
	}
	time.Sleep(1100 * time.Millisecond) // let backends flush their statistics
	before := stats()
	counts := countStatements(t, db.DB)

	start := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan int)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := s.Do("POST", "/api/v1/projects/bench/flows/three/runs", map[string]any{"environment": "development", "input": map[string]any{"n": i}})
				if r.Status != 202 {
					t.Errorf("queue: %d %s", r.Status, r.Body)
				}
			}
		}()
	}
	// HUSHFLOW_BENCH_RATE paces the clients (runs queued per second) to
	// measure latency below saturation; 0 queues as fast as they can. Run i
	// is due at start + i/rate (a ticker would drop ticks and offer less).
	rate := envInt("HUSHFLOW_BENCH_RATE", 0)
	for i := 1; i <= n; i++ {
		if rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i-1) * time.Second / time.Duration(rate))))
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	queued := time.Since(start)
	apptest.Eventually(t, 5*time.Minute, "every run to end", func() error {
		var open int64
		db.Raw("SELECT COUNT(*) FROM runs WHERE status IN ('queued','running')").Scan(&open)
		if open > 0 {
			return fmt.Errorf("%d runs open", open)
		}
		return nil
	})
	elapsed := time.Since(start)
	stmts := counts()
	// An idle PostgreSQL backend reports its statistics within 10 s.
	time.Sleep(11 * time.Second)
	after := stats()

	var rows []struct {
		Status     string
		QueuedAt   time.Time
		StartedAt  time.Time
		FinishedAt time.Time
	}
	db.Raw("SELECT status, queued_at, started_at, finished_at FROM runs WHERE input <> ?", `{"n":0}`).Scan(&rows)
	if len(rows) != n {
		t.Fatalf("%d runs, want %d", len(rows), n)
	}
	lat := make([]time.Duration, 0, n)
	wait := make([]time.Duration, 0, n)
	exec := make([]time.Duration, 0, n)
	first, last := rows[0].QueuedAt, rows[0].FinishedAt
	for _, r := range rows {
		if r.Status != "succeeded" {
			t.Fatalf("run %+v", r)
		}
		lat = append(lat, r.FinishedAt.Sub(r.QueuedAt))
		wait = append(wait, r.StartedAt.Sub(r.QueuedAt))
		exec = append(exec, r.FinishedAt.Sub(r.StartedAt))
		if r.QueuedAt.Before(first) {
			first = r.QueuedAt
		}
		if r.FinishedAt.After(last) {
			last = r.FinishedAt
		}
	}
	var events int64
	db.Raw("SELECT COUNT(*) FROM events").Scan(&events)
	span := last.Sub(first)
	per := func(v int64) float64 { return float64(v) / float64(n) }
	t.Logf("machine: %d CPUs (GOMAXPROCS %d), %s", runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel())
	t.Logf("%d runs, %d workers, %d API clients: queued in %s (%.0f/s); first queued to last finished %s: %.0f runs/s end to end (wall %s)",
		n, workers, clients, queued.Round(time.Millisecond), float64(n)/queued.Seconds(), span.Round(time.Millisecond),
		float64(n)/span.Seconds(), elapsed.Round(time.Millisecond))
	t.Logf("queue-to-finish latency: p50 %s, p90 %s, p99 %s, max %s", pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100))
	t.Logf("  of which waiting in the queue: p50 %s, p99 %s; executing (claim to finish): p50 %s, p99 %s",
		pct(wait, 50), pct(wait, 99), pct(exec, 50), pct(exec, 99))
	t.Logf("per run: %.1f events stored; PostgreSQL %.1f committed transactions, %.1f rows inserted, %.1f rows updated",
		float64(events)/float64(n+1), per(after.XactCommit-before.XactCommit), per(after.TupInserted-before.TupInserted),
		per(after.TupUpdated-before.TupUpdated))
	t.Logf("database sessions opened during the run: %d", after.Sessions-before.Sessions)
	t.Logf("SQL statements per run, by kind (this process; the wait loop of this test excluded):")
	type kv struct {
		k string
		v int
	}
	var list []kv
	total := 0
	for k, v := range stmts {
		if strings.Contains(k, "COUNT(*) FROM runs WHERE status IN") {
			continue
		}
		list = append(list, kv{k, v})
		total += v
	}
	sort.Slice(list, func(i, j int) bool { return list[i].v > list[j].v })
	for _, e := range list {
		if float64(e.v)/float64(n) >= 0.05 {
			t.Logf("  %5.2f  %s", float64(e.v)/float64(n), e.k)
		}
	}
	t.Logf("  %5.2f  total", float64(total)/float64(n))
}

// countStatements counts the SQL statements db runs from now on, by their
// first words; the returned function stops counting and returns them.
func countStatements(t *testing.T, db *gorm.DB) func() map[string]int {
	var mu sync.Mutex
	on := true
	m := map[string]int{}
	rec := func(tx *gorm.DB) {
		sql := strings.Join(strings.Fields(tx.Statement.SQL.String()), " ")
		if i := strings.Index(sql, " WHERE "); i > 0 && i < 70 {
			sql = sql[:min(len(sql), i+40)]
		}
		mu.Lock()
		defer mu.Unlock()
		if on {
			m[sql[:min(len(sql), 90)]]++
		}
	}
	cb := db.Callback()
	name := "bench:count"
	for _, err := range []error{
		cb.Create().After("gorm:create").Register(name, rec),
		cb.Query().After("gorm:query").Register(name, rec),
		cb.Update().After("gorm:update").Register(name, rec),
		cb.Delete().After("gorm:delete").Register(name, rec),
		cb.Row().After("gorm:row").Register(name, rec),
		cb.Raw().After("gorm:raw").Register(name, rec),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		on = false
		return m
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := (len(ds)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	if i > len(ds) {
		i = len(ds)
	}
	return ds[i-1].Round(time.Millisecond)
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// TestFlowCPU measures the CPU time a `hushflow serve` process tree (the
// server and its sandbox workers) spends per run of a webhook -> http
// (secret header) -> code flow: offered 30 runs/s for 20 s, beside the
// same flow at saturation, and the CPU the server uses per second while
// idle. It runs on PostgreSQL and on SQLite.
//
//	HUSHFLOW_BENCH=1 go test -run TestFlowCPU -v ./flows/
//
// HUSHFLOW_BENCH_CPU_SECONDS (default 20) and HUSHFLOW_BENCH_CPU_RUNS (the
// saturated runs, default 3000) tune it. HUSHFLOW_BENCH_BASELINE, the
// path of another hushflow binary (an earlier commit's `go build`), runs
// that one beside this one, each on a database of its own: both idle
// together, then both are offered the same runs at the same moments,
// then each is saturated in turn. On a machine whose speed varies from
// one minute to the next (a shared VM: the same build measures 20% apart
// run to run), figures taken in the same window compare where figures
// taken minutes apart do not.
//
// On SQLite the floor (bench/floor's run mode: a bare Go server doing a
// run's I/O alone, on the same SQLite driver and settings) is offered the
// same runs at the same moments, so that the ratio of a run to its floor
// is taken in one window too.
func TestFlowCPU(t *testing.T) {
	if os.Getenv("HUSHFLOW_BENCH") != "1" {
		t.Skip("benchmark: set HUSHFLOW_BENCH=1 to run it")
	}
	secs := envInt("HUSHFLOW_BENCH_CPU_SECONDS", 20)
	satRuns := envInt("HUSHFLOW_BENCH_CPU_RUNS", 3000)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"items":[1,2,3]}`)
	}))
	defer target.Close()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			servers := []*cpuServer{newCPUServer(t, "this build", hushflowBinary(t), b, target.URL)}
			if base := os.Getenv("HUSHFLOW_BENCH_BASELINE"); base != "" {
				servers = append(servers, newCPUServer(t, "baseline "+base, base, b, target.URL))
			}
			posts := make([]func(int), len(servers))
			for i, s := range servers {
				posts[i] = func(n int) { s.post(t, n) }
			}
			var floor *floorServer
			if b.Name == "sqlite" {
				floor = startFloor(t, target.URL+"/items")
				posts = append(posts, floor.post)
			}
			for _, post := range posts {
				for i := 0; i < 50; i++ { // warm up
					post(-1)
				}
			}
			for _, s := range servers {
				s.settle(t)
			}
			// Idle: quiet servers for 10 s, measured to the nanosecond
			// (a few milliseconds of CPU a second are a few ticks of
			// /proc's 10 ms).
			for _, s := range servers {
				s.idle0, s.at = liveCPU(t, s.p), time.Now()
			}
			time.Sleep(10 * time.Second)
			for _, s := range servers {
				s.idle = (liveCPU(t, s.p) - s.idle0).Seconds() / time.Since(s.at).Seconds()
			}

			// 30 runs/s offered for secs seconds, to every server at the
			// same moments (taking turns at going first).
			n := 30 * secs
			for _, s := range servers {
				s.mark(t)
			}
			if floor != nil {
				floor.c0 = floor.cpu(t)
			}
			start := time.Now()
			for i := 0; i < n; i++ {
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / 30)))
				for j := range posts {
					posts[(i+j)%len(posts)](i)
				}
			}
			for _, s := range servers {
				s.settle(t)
				s.low = s.since(t)
				var rows []struct{ QueuedAt, FinishedAt time.Time }
				s.sql.Raw("SELECT queued_at, finished_at FROM runs WHERE queued_at >= ? AND status = 'succeeded'", start.UTC()).Scan(&rows)
				for _, r := range rows {
					s.lat = append(s.lat, r.FinishedAt.Sub(r.QueuedAt))
				}
			}

			if floor != nil {
				// Its last run's writes followed its answer by a fraction
				// of a millisecond; the servers settled meanwhile.
				floor.low = floor.cpu(t) - floor.c0
				t.Logf("the floor beside it on %s (bench/floor's run mode, offered the same runs at the same moments): %.2f ms per run at 30 runs/s; this build %.2f times it",
					b.Name, floor.low.Seconds()*1000/float64(n), servers[0].low.Seconds()/floor.low.Seconds())
			}

			// Saturated: satRuns runs from 16 clients as fast as they go,
			// one server after the other.
			for _, s := range servers {
				s.mark(t)
				satStart := time.Now()
				var wg sync.WaitGroup
				jobs := make(chan int)
				for c := 0; c < 16; c++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range jobs {
							s.post(t, i)
						}
					}()
				}
				for i := 0; i < satRuns; i++ {
					jobs <- i
				}
				close(jobs)
				wg.Wait()
				s.settle(t)
				sat := s.since(t)
				satTook := time.Since(satStart)
				what := "CPU of the serve process tree"
				if s.name != "this build" {
					what += " (" + s.name + ", side by side)"
				}
				t.Logf("%s on %s: %.2f ms per run at 30 runs/s offered for %ds (%d runs, p50 %s, p99 %s queue-to-finish); %.2f ms per run saturated (%d runs, %.0f runs/s); idle %.2f ms of CPU per second",
					what, b.Name, s.low.Seconds()*1000/float64(n), secs, len(s.lat), pct(s.lat, 50), pct(s.lat, 99),
					sat.Seconds()*1000/float64(satRuns), satRuns, float64(satRuns)/satTook.Seconds(), s.idle*1000)
			}
			if len(servers) == 2 {
				t.Logf("this build against the baseline on %s, side by side: %.2f against %.2f ms per run at 30 runs/s (%+.0f%%)",
					b.Name, servers[0].low.Seconds()*1000/float64(n), servers[1].low.Seconds()*1000/float64(n),
					100*(servers[0].low.Seconds()/servers[1].low.Seconds()-1))
			}
		})
	}
}

// floorServer is bench/floor's server in its run mode: per request, a
// commit and a 202, then a GET to the peer and three more commits.
type floorServer struct {
	url    string
	pid    int
	client *http.Client
	c0     time.Duration // CPU at the start of the measurement
	low    time.Duration // CPU of the paced runs
	t      *testing.T
}

// startFloor builds bench/floor and starts its server, whose GET goes to
// peer.
func startFloor(t *testing.T, peer string) *floorServer {
	t.Helper()
	dir := t.TempDir()
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "floor"), "./bench/floor")
	build.Dir = filepath.Join(filepath.Dir(file), "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./bench/floor: %v\n%s", err, out)
	}
	cmd := exec.Command(filepath.Join(dir, "floor"))
	cmd.Env = append(os.Environ(), "FLOOR_ROLE=server", "FLOOR_MODE=run", "FLOOR_PEER="+peer, "FLOOR_DB="+filepath.Join(dir, "floor.db"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("bench/floor: no address: %v", err)
	}
	return &floorServer{url: "http://" + strings.TrimSpace(addr) + "/hook", pid: cmd.Process.Pid,
		client: &http.Client{Timeout: 10 * time.Second}, t: t}
}

func (f *floorServer) post(i int) {
	resp, err := f.client.Post(f.url, "application/json", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
	if err != nil {
		f.t.Errorf("floor: %v", err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		f.t.Errorf("floor: status %d", resp.StatusCode)
	}
}

// cpu is the CPU time the floor's process has used (it has no children).
func (f *floorServer) cpu(t *testing.T) time.Duration { return pidCPU(t, strconv.Itoa(f.pid)) }

// cpuServer is one `hushflow serve` of TestFlowCPU, with the flow set up.
type cpuServer struct {
	name string
	p    *proc
	sql  *gorm.DB
	// c0 and at mark the start of a measurement (mark, since).
	c0    time.Duration
	at    time.Time
	idle0 time.Duration // liveCPU at the start of the idle measurement
	idle  float64       // CPU seconds per second
	low   time.Duration
	lat   []time.Duration
}

func newCPUServer(t *testing.T, name, bin string, b storetest.Backend, api string) *cpuServer {
	t.Helper()
	db := b.Config(t)
	p := startServe(t, serveConfig{bin: bin, db: db, dataDir: db.DataDir})
	p.must(201, "POST", "/api/v1/projects", map[string]string{"name": "bench"})
	p.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": "tok_bench_9fK2xQ7zLmW3pR8vN1", "project": "bench"})
	p.must(201, "POST", "/api/v1/projects/bench/flows", map[string]any{
		"name": "cpu", "trigger": map[string]any{"type": "webhook"}, "env": map[string]string{"API": api},
		"blocks": []any{
			map[string]any{"id": "call", "type": "http", "config": map[string]any{
				"url": "`${env.API}/items`", "headers": "({Authorization: `Bearer ${secrets.API_TOKEN}`})"}},
			map[string]any{"id": "sum", "type": "code", "config": map[string]any{
				"code": "return {n: input.n, total: steps.call.output.body.items.reduce((a, b) => a + b, 0)}"}},
		},
	})
	return &cpuServer{name: name, p: p, sql: storetest.Open(t, db, nil).DB}
}

func (s *cpuServer) post(t *testing.T, i int) {
	if st, m, _ := s.p.doRaw("POST", "/hooks/bench/cpu", map[string]any{"n": i}); st != 202 {
		t.Errorf("%s: webhook: %d %v", s.name, st, m)
	}
}

// settle waits for every run to end.
func (s *cpuServer) settle(t *testing.T) {
	t.Helper()
	apptest.Eventually(t, 5*time.Minute, s.name+": every run to end", func() error {
		var open int64
		s.sql.Raw("SELECT COUNT(*) FROM runs WHERE status IN ('queued','running','waiting')").Scan(&open)
		if open > 0 {
			return fmt.Errorf("%d runs open", open)
		}
		return nil
	})
}

func (s *cpuServer) mark(t *testing.T) { s.c0, s.at = treeCPU(t, s.p), time.Now() }

func (s *cpuServer) since(t *testing.T) time.Duration { return treeCPU(t, s.p) - s.c0 }

// procStat is the fields of /proc/<pid>/stat after the command's ")":
// state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14); nil
// when there is no such process.
func procStat(pid string) []string {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil
	}
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
}

// children is the stat fields of each live child of process root, by pid.
func children(root string) map[string][]string {
	out := map[string][]string{}
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		if f := procStat(e.Name()); len(f) > 1 && f[1] == root {
			out[e.Name()] = f
		}
	}
	return out
}

// liveCPU is the CPU time the threads of the process p and of its children
// that are alive now have used, in nanoseconds (schedstat); threads and
// children that ended are not counted (treeCPU counts them, in ticks).
func liveCPU(t *testing.T, p *proc) time.Duration {
	t.Helper()
	root := strconv.Itoa(p.cmd.Process.Pid)
	pids := []string{root}
	for pid := range children(root) {
		pids = append(pids, pid)
	}
	var total time.Duration
	for _, pid := range pids {
		tasks, _ := os.ReadDir("/proc/" + pid + "/task")
		for _, task := range tasks {
			data, err := os.ReadFile("/proc/" + pid + "/task/" + task.Name() + "/schedstat")
			if err != nil {
				continue
			}
			if f := strings.Fields(string(data)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				total += time.Duration(ns)
			}
		}
	}
	return total
}

// treeCPU is the CPU time (user + system) used so far by the process p
// and its children, live ones (sandbox workers) and reaped ones.
func treeCPU(t *testing.T, p *proc) time.Duration {
	t.Helper()
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	num := func(f []string, i int) time.Duration {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(v) * tick
	}
	root := strconv.Itoa(p.cmd.Process.Pid)
	total := pidCPU(t, root)
	for _, g := range children(root) {
		total += num(g, 11) + num(g, 12) + num(g, 13) + num(g, 14)
	}
	return total
}

// pidCPU is the CPU time (user + system) used so far by process pid and
// its reaped children.
func pidCPU(t *testing.T, pid string) time.Duration {
	t.Helper()
	f := procStat(pid)
	if f == nil {
		t.Fatalf("no /proc/%s/stat", pid)
	}
	total := time.Duration(0)
	for _, i := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		total += time.Duration(v) * 10 * time.Millisecond // USER_HZ is 100 on Linux
	}
	return total
}
