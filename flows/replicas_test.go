package flows_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
)

// The tests in this file and crash_test.go run the real binary: `hushflow
// serve` processes sharing one database, killed and restarted.

const procToken = "hf_test_admin_replicas_0123456789"

// hushflowBinary is the hushflow command, built once for the package.
func hushflowBinary(t *testing.T) string { return apptest.Binary(t) }

// proc is one `hushflow serve` process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	URL  string
	Logs *apptest.SyncBuffer
	done chan struct{}
}

// serveConfig is what a serve process is started with.
type serveConfig struct {
	bin     string // the hushflow binary (hushflowBinary)
	db      store.Config
	dataDir string
	addr    string // empty: a free port
	extra   []string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe starts `hushflow serve` and waits until it answers /readyz.
// The process (and its sandbox workers: it runs in its own process
// group) is killed when the test ends.
func startServe(t *testing.T, c serveConfig) *proc {
	t.Helper()
	if c.addr == "" {
		c.addr = freeAddr(t)
	}
	cmd := exec.Command(c.bin, "serve")
	cmd.Env = append(os.Environ(),
		"HUSHFLOW_DATABASE_URL="+c.db.DatabaseURL,
		"HUSHFLOW_DATA_DIR="+c.dataDir,
		"HUSHFLOW_ADMIN_TOKEN="+procToken,
		"HUSHFLOW_HTTP_ALLOW=127.0.0.1/32",
		"HUSHFLOW_ADDR="+c.addr,
		"HUSHFLOW_LOG_FORMAT=json",
		// These tests queue runs faster than the default per-token API
		// rate limit allows; the limit has its own tests.
		"HUSHFLOW_RATE_LIMIT=-1",
	)
	if c.db.DatabaseURL != "" {
		cmd.Env = append(cmd.Env, "HUSHFLOW_MASTER_KEY=k1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	}
	cmd.Env = append(cmd.Env, c.extra...)
	logs := &apptest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, URL: "http://" + c.addr, Logs: logs, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	apptest.Eventually(t, 30*time.Second, "hushflow serve to be ready", func() error {
		select {
		case <-p.done:
			t.Fatalf("hushflow serve exited at start: %s", logs.String())
		default:
		}
		resp, err := http.Get(p.URL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/readyz answered %d", resp.StatusCode)
		}
		return nil
	})
	return p
}

// kill sends SIGKILL to the process group and waits for the process.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("process %d did not die", p.cmd.Process.Pid)
	}
}

// do sends an authenticated JSON request and decodes the response.
// interrupt stops the process as Ctrl-C would (SIGINT) and waits for it.
func (p *proc) interrupt() {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		p.t.Errorf("process %d did not stop on SIGINT", p.cmd.Process.Pid)
	}
}

func (p *proc) do(method, path string, body any) (int, map[string]any) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+procToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &m)
	if m == nil {
		m = map[string]any{"raw": string(data)}
	}
	return resp.StatusCode, m
}

func (p *proc) must(want int, method, path string, body any) map[string]any {
	p.t.Helper()
	st, m := p.do(method, path, body)
	if st != want {
		p.t.Fatalf("%s %s: status %d, want %d: %v", method, path, st, want, m)
	}
	return m
}

// Two serve processes on one PostgreSQL database share 1,000 queued runs:
// each executes exactly once, none is lost, both replicas work.
func TestReplicasShareQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hushflow serve processes")
	}
	if os.Getenv(storetest.EnvURL) == "" {
		t.Skipf("replicas share a queue on PostgreSQL only (SQLite is one process's file): set %s to run this test", storetest.EnvURL)
	}
	const n = 1000
	db := storetest.PostgresConfig(t)
	bin := hushflowBinary(t)
	a := startServe(t, serveConfig{bin: bin, db: db, dataDir: t.TempDir()})
	b := startServe(t, serveConfig{bin: bin, db: db, dataDir: t.TempDir()})

	var mu sync.Mutex
	hits := map[string]int{}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Query().Get("run")]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer target.Close()

	a.must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
	b.must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
		"name": "ping", "trigger": map[string]any{"type": "manual"},
		"env": map[string]string{"TARGET": target.URL},
		"blocks": []any{map[string]any{"id": "call", "type": "http", "config": map[string]any{
			"method": "'POST'", "url": "`${env.TARGET}/hit?run=${run.id}`", "body": "({n: input.n})"}}},
	})

	start := time.Now()
	ids := make([]string, n)
	var wg sync.WaitGroup
	jobs := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				p := a
				if i%2 == 1 {
					p = b
				}
				st, m := p.do("POST", "/api/v1/projects/ops/flows/ping/runs", map[string]any{"environment": "development", "input": map[string]any{"n": i}})
				if st != 202 && st != 200 {
					t.Errorf("queue run %d: %d %v", i, st, m)
					continue
				}
				ids[i], _ = m["id"].(string)
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	queued := time.Since(start)

	// Wait until no run is queued or running.
	sql := storetest.Open(t, db, nil)
	apptest.Eventually(t, 90*time.Second, "every run to end", func() error {
		var open int64
		if err := sql.Raw("SELECT COUNT(*) FROM runs WHERE status IN ('queued','running')").Scan(&open).Error; err != nil {
			return err
		}
		if open > 0 {
			return fmt.Errorf("%d runs open", open)
		}
		return nil
	})
	elapsed := time.Since(start)

	var statuses []struct {
		Status string
		N      int
	}
	sql.Raw("SELECT status, COUNT(*) AS n FROM runs GROUP BY status").Scan(&statuses)
	for _, s := range statuses {
		if s.Status != "succeeded" || s.N != n {
			t.Errorf("runs by status: %+v, want %d succeeded", statuses, n)
			break
		}
	}
	mu.Lock()
	for i, id := range ids {
		if hits[id] != 1 {
			t.Errorf("run %d (%s) hit the target %d times, want 1", i, id, hits[id])
		}
	}
	if len(hits) != n {
		t.Errorf("target saw %d distinct run ids, want %d", len(hits), n)
	}
	mu.Unlock()

	// Which replica ran each run: the run_started event names its worker.
	var workers []struct {
		Worker string
		N      int
	}
	err := sql.Raw(`SELECT data::json->>'worker' AS worker, COUNT(*) AS n FROM events WHERE type = 'run_started' GROUP BY 1`).Scan(&workers).Error
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, w := range workers {
		total += w.N
	}
	if len(workers) != 2 || total != n {
		t.Errorf("run_started events by worker: %+v, want %d runs spread over 2 workers", workers, n)
	}
	var started int64
	sql.Raw("SELECT COUNT(*) FROM (SELECT run_id FROM events WHERE type = 'run_started' GROUP BY run_id HAVING COUNT(*) > 1) x").Scan(&started)
	if started != 0 {
		t.Errorf("%d runs were started more than once", started)
	}
	t.Logf("%d runs: queued through the API in %s, all finished after %s (%.0f runs/s end to end); by worker: %+v",
		n, queued.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), workers)
	for _, p := range []*proc{a, b} {
		if strings.Contains(p.Logs.String(), `"level":"ERROR"`) {
			t.Errorf("server logged errors: %.2000s", p.Logs.String())
		}
	}
}
