package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// binary is the hushflow command, built once for the package.
func binary(t *testing.T) string { return apptest.Binary(t) }

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running `hushflow serve`.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	stdout *bytes.Buffer
	mu     *sync.Mutex
}

func startServe(t *testing.T, env ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = append(append(os.Environ(), "HUSHFLOW_ADDR="+addr), env...)
	out := &bytes.Buffer{}
	mu := &sync.Mutex{}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, addr: addr, stdout: out, mu: mu}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	apptest.Eventually(t, 30*time.Second, "the server to become ready", func() error {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return fmt.Errorf("%v; output:\n%s", err, p.output())
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d; output:\n%s", resp.StatusCode, p.output())
		}
		return nil
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, p.output())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

func (p *proc) request(t *testing.T, token, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+p.addr+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var tokenRE = regexp.MustCompile(`hf_[A-Za-z0-9_-]{43}`)

// The README's run command on an empty data dir: health, readiness, 401
// without a token, the printed admin token works, data survives a
// restart.
func TestServeFreshDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hushflow binary and starts it: skipped in -short mode")
	}
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, "HUSHFLOW_DATA_DIR="+dir)
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := p.request(t, "", "GET", path, ""); code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
	}
	code, body := p.request(t, "", "GET", "/api/v1/projects", "")
	if code != 401 || !strings.Contains(body, `"error":{"code":"unauthenticated"`) {
		t.Fatalf("no token: %d %s", code, body)
	}
	token := tokenRE.FindString(p.output())
	if token == "" {
		t.Fatalf("no admin token printed:\n%s", p.output())
	}
	if code, body := p.request(t, token, "POST", "/api/v1/projects", `{"name":"billing"}`); code != 201 {
		t.Fatalf("create project: %d %s", code, body)
	}
	if fi, err := os.Stat(filepath.Join(dir, "master.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	p.stop(t)

	// The startup line shows the effective settings: those set, and the
	// defaults of the others.
	p = startServe(t, "HUSHFLOW_DATA_DIR="+dir, "HUSHFLOW_RUN_LEASE=45s", "HUSHFLOW_WORKERS=12")
	if tokenRE.MatchString(p.output()) {
		t.Errorf("a second admin token was printed on restart")
	}
	if want := regexp.MustCompile(`msg="hushflow serving" .* rate_limit=100 workers=12 run_lease=45s shutdown_grace=30s max_resumes=10 max_concurrent_runs=10000 run_retention=30d audit_retention=365d sandbox_workers=\d+`); !want.MatchString(p.output()) {
		t.Errorf("startup line without the effective settings:\n%s", p.output())
	}
	code, body = p.request(t, token, "GET", "/api/v1/projects", "")
	if code != 200 || !strings.Contains(body, `"name":"billing"`) {
		t.Fatalf("after restart: %d %s", code, body)
	}
	p.stop(t)

	// A limit turned off says so (it said 100, the default).
	p = startServe(t, "HUSHFLOW_DATA_DIR="+dir, "HUSHFLOW_RATE_LIMIT=-1")
	if want := regexp.MustCompile(`msg="hushflow serving" .* rate_limit=off `); !want.MatchString(p.output()) {
		t.Errorf("startup line with the rate limit off:\n%s", p.output())
	}
	p.stop(t)
}

// The same on PostgreSQL: the tables are in PostgreSQL.
func TestServePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hushflow binary and starts it: skipped in -short mode")
	}
	if os.Getenv(storetest.EnvURL) == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set", storetest.EnvURL)
		}
		t.Skip("PostgreSQL not configured")
	}
	cfg := storetest.PostgresConfig(t)
	key := "HUSHFLOW_MASTER_KEY=k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	env := []string{"HUSHFLOW_DATABASE_URL=" + cfg.DatabaseURL, "HUSHFLOW_DATA_DIR=" + cfg.DataDir,
		"HUSHFLOW_ADMIN_TOKEN=hf_admin_for_test", key}
	p := startServe(t, env...)
	if code, body := p.request(t, "hf_admin_for_test", "POST", "/api/v1/projects", `{"name":"billing"}`); code != 201 {
		t.Fatalf("create project: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "hushflow.db")); err == nil {
		t.Fatal("an SQLite file was created although PostgreSQL was configured")
	}
	p.stop(t)
	p = startServe(t, env...)
	if code, body := p.request(t, "hf_admin_for_test", "GET", "/api/v1/projects", ""); !strings.Contains(body, "billing") {
		t.Fatalf("after restart: %d %s", code, body)
	}
	// PostgreSQL with no key refuses to start, saying what to set.
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = append(os.Environ(), "HUSHFLOW_DATABASE_URL="+cfg.DatabaseURL, "HUSHFLOW_ADDR="+freeAddr(t), "HUSHFLOW_MASTER_KEY=", "HUSHFLOW_MASTER_KEY_FILE=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "HUSHFLOW_MASTER_KEY is required") {
		t.Fatalf("no key on PostgreSQL: %v %s", err, out)
	}
}

// An unreachable database: one line naming the host, no password, exit 1.
func TestServeUnreachableDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hushflow binary and starts it: skipped in -short mode")
	}
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = append(os.Environ(), "HUSHFLOW_ADDR="+freeAddr(t),
		"HUSHFLOW_DATABASE_URL=postgres://alice:Sup3rS3cretPw@127.0.0.1:1/hushflow?connect_timeout=2",
		"HUSHFLOW_MASTER_KEY=k1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want code 1; stderr %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "127.0.0.1:1/hushflow") || !strings.HasPrefix(last, "hushflow: ") {
		t.Errorf("error line %q does not name the host", last)
	}
	if strings.Contains(stderr.String(), "Sup3rS3cretPw") || strings.Contains(stderr.String(), "alice") {
		t.Errorf("stderr leaks credentials: %s", stderr.String())
	}
}

// A start refused for a missing key changes nothing: the next start with
// the key still creates and prints the admin token.
func TestServePostgresRefusedStartWritesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hushflow binary and starts it: skipped in -short mode")
	}
	if os.Getenv(storetest.EnvURL) == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set", storetest.EnvURL)
		}
		t.Skip("PostgreSQL not configured")
	}
	cfg := storetest.PostgresConfig(t)
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = append(os.Environ(), "HUSHFLOW_DATABASE_URL="+cfg.DatabaseURL, "HUSHFLOW_ADDR="+freeAddr(t),
		"HUSHFLOW_MASTER_KEY=", "HUSHFLOW_MASTER_KEY_FILE=", "HUSHFLOW_ADMIN_TOKEN=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "HUSHFLOW_MASTER_KEY is required") {
		t.Fatalf("no key: %v %s", err, out)
	}
	key := "HUSHFLOW_MASTER_KEY=k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
	p := startServe(t, "HUSHFLOW_DATABASE_URL="+cfg.DatabaseURL, "HUSHFLOW_DATA_DIR="+cfg.DataDir, "HUSHFLOW_ADMIN_TOKEN=", key)
	token := tokenRE.FindString(p.output())
	if token == "" {
		t.Fatalf("no admin token printed after a refused start:\n%s", p.output())
	}
	if code, body := p.request(t, token, "GET", "/api/v1/projects", ""); code != 200 {
		t.Fatalf("token: %d %s", code, body)
	}
}

// A setting given wrong stops the start with a message naming it and its
// rule, as a bad lease or grace did; before, a bad HUSHFLOW_WORKERS,
// HUSHFLOW_RATE_LIMIT or HUSHFLOW_MAX_CONCURRENT_RUNS meant the default,
// and HUSHFLOW_EXEC=yes meant off, in silence.
func TestServeRefusesBadSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hushflow binary and starts it: skipped in -short mode")
	}
	for _, c := range []struct{ env, want string }{
		{"HUSHFLOW_WORKERS=abc", `HUSHFLOW_WORKERS must be a number of at least 1 (runs executed at once), such as 64, not "abc"`},
		{"HUSHFLOW_WORKERS=0", `HUSHFLOW_WORKERS must be a number of at least 1`},
		{"HUSHFLOW_MAX_CONCURRENT_RUNS=-5", `HUSHFLOW_MAX_CONCURRENT_RUNS must be a number of at least 1, such as 10000, not "-5"`},
		{"HUSHFLOW_RATE_LIMIT=off", `HUSHFLOW_RATE_LIMIT must be API requests per second per token, such as 100, or a negative number to turn the limit off, not "off"`},
		{"HUSHFLOW_RATE_LIMIT=0", `HUSHFLOW_RATE_LIMIT must be API requests per second`},
		{"HUSHFLOW_EXEC=yes", `HUSHFLOW_EXEC must be on or off, not "yes"`},
		{"HUSHFLOW_TRACEPARENT=true", `HUSHFLOW_TRACEPARENT must be on or off, not "true"`},
		{"HUSHFLOW_HTTP_ALLOW=10.0.0.0/33", `hushflow: HUSHFLOW_HTTP_ALLOW: "10.0.0.0/33" is not a CIDR prefix`},
		{"HUSHFLOW_TIMER_SLACK=fast", `HUSHFLOW_TIMER_SLACK must be a duration from 0 (the slack the process started with) to 100ms, such as 5ms, not "fast"`},
		{"HUSHFLOW_TIMER_SLACK=1s", `HUSHFLOW_TIMER_SLACK must be a duration from 0`},
		{"HUSHFLOW_RUN_RETENTION=30 days", `HUSHFLOW_RUN_RETENTION must be how long a run is kept after it ended, in days (30d) or as a duration of at least 1h (36h), up to 36500d, or off, not "30 days"`},
		{"HUSHFLOW_RUN_RETENTION=10m", `HUSHFLOW_RUN_RETENTION must be how long a run is kept`},
		{"HUSHFLOW_RUN_RETENTION=0d", `HUSHFLOW_RUN_RETENTION must be how long a run is kept`},
		{"HUSHFLOW_AUDIT_RETENTION=1y", `HUSHFLOW_AUDIT_RETENTION must be how long the secrets audit keeps the records of reads, in days (365d) or as a duration of at least 1h (36h), up to 36500d, or off, not "1y"`},
	} {
		cmd := exec.Command(binary(t), "serve")
		cmd.Env = append(os.Environ(), "HUSHFLOW_ADDR="+freeAddr(t), "HUSHFLOW_DATABASE_URL=", "HUSHFLOW_DATA_DIR="+t.TempDir(), c.env)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%s: %v; stderr %s", c.env, err, stderr.String())
		}
	}
}

// The server starts over once with the timer slack of
// HUSHFLOW_TIMER_SLACK (5ms unset), under the process id it was started
// with: every thread of it and of its sandbox workers has that slack; 0
// keeps the slack the process was started with.
func TestServeTimerSlack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hushflow binary and starts it: skipped in -short mode")
	}
	if runtime.GOOS != "linux" {
		t.Skip("only Linux has a timer slack")
	}
	slackOf := func(tid string) string {
		b, err := os.ReadFile("/proc/" + tid + "/timerslack_ns")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	own := slackOf("self")
	for _, c := range []struct{ env, want, shown string }{
		{"", "5000000", "timer_slack=5ms"},
		{"HUSHFLOW_TIMER_SLACK=7ms", "7000000", "timer_slack=7ms"},
		{"HUSHFLOW_TIMER_SLACK=0", own, ""},
	} {
		env := []string{"HUSHFLOW_DATABASE_URL=", "HUSHFLOW_DATA_DIR=" + t.TempDir()}
		if c.env != "" {
			env = append(env, c.env)
		}
		p := startServe(t, env...)
		pid := strconv.Itoa(p.cmd.Process.Pid)
		// The server's threads, then its children (the sandbox workers,
		// started with the server).
		var tids []string
		tasks, err := os.ReadDir("/proc/" + pid + "/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tasks {
			tids = append(tids, e.Name())
		}
		workers := 0
		procs, _ := os.ReadDir("/proc")
		for _, e := range procs {
			stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			s := string(stat)
			if f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]); len(f) > 1 && f[1] == pid {
				tids = append(tids, e.Name())
				workers++
			}
		}
		if workers == 0 {
			t.Errorf("%q: no sandbox worker under the server", c.env)
		}
		for _, tid := range tids {
			if got := slackOf(tid); got != c.want {
				t.Errorf("%q: thread %s of the server or its workers has a timer slack of %s ns, want %s", c.env, tid, got, c.want)
			}
		}
		// Started over from the binary's path, it keeps the binary's name.
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		if got, want := strings.TrimSpace(string(comm)), filepath.Base(binary(t)); got != want {
			t.Errorf("%q: the server's process is named %q, want %q", c.env, got, want)
		}
		if c.shown != "" && !strings.Contains(p.output(), c.shown) {
			t.Errorf("%q: the startup line does not say %s:\n%s", c.env, c.shown, p.output())
		}
		p.stop(t)
	}
}

// HUSHFLOW_RUN_RETENTION takes whole days, a duration of at least an
// hour, or off.
func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 720 * time.Hour, "1d": 24 * time.Hour, "36h": 36 * time.Hour, "36500d": 876000 * time.Hour,
		"90m": 90 * time.Minute, "off": 0, "0": 0} {
		if got, err := parseRetention(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "30", "-1d", "0d", "+5d", "59m", "1w", "30 d", "100000d", "36501d", "876001h", "OFF"} {
		if got, err := parseRetention(in); err == nil {
			t.Errorf("%q: %v, want an error", in, got)
		}
	}
}
