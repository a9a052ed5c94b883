package exec_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/hushflow/hushflow/blocks/all"
	"github.com/hushflow/hushflow/blocks/exec"
	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

func execOn(c *app.Config) { c.Exec = true }

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// setup creates project billing with TOKEN (a value) and CERT (a file
// secret, created from bytes as `secret create --from-file` does).
func setup(s *apptest.Server) {
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
	s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "TOKEN", "value": canaryToken, "project": "billing"})
	s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "CERT", "file_base64": base64.StdEncoding.EncodeToString([]byte(canaryCert)), "project": "billing"})
}

var dirLine = regexp.MustCompile(`dir=(/[^"\\\s]+)`)

// Through the real server: the shell case, the argv case and a byte-at-a-
// time writer, with every surface scanned for the canaries.
func TestExecEndToEnd(t *testing.T) {
	apptest.SkipShort(t)
	script := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(script, []byte(checkScript), 0o755); err != nil {
		t.Fatal(err)
	}
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(s)
		secrets := []any{map[string]any{"key": "TOKEN", "as_env_var": "TOKEN"}, map[string]any{"key": "CERT", "mount": true}}
		want := map[string]any{"WANT_TOKEN": sum(canaryToken), "WANT_CERT": sum(canaryCert)}
		flow := map[string]any{
			"name": "deploy", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "shell", "type": "exec", "config": map[string]any{
					"command": []any{`echo "dir=$HUSHFLOW_SECRETS_DIR"; echo $TOKEN; cat $HUSHFLOW_SECRETS_DIR/CERT; [ "$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)" = "$WANT_TOKEN" ] && [ "$(sha256sum < $HUSHFLOW_SECRETS_DIR/CERT | cut -d' ' -f1)" = "$WANT_CERT" ] || exit 3`},
					"shell":   true, "secrets": secrets, "env": want}},
				map[string]any{"id": "argv", "type": "exec", "config": map[string]any{
					"command": []any{script}, "secrets": secrets, "env": want}},
				map[string]any{"id": "drip", "type": "exec", "config": map[string]any{
					"command": []any{`printf '%s' "$TOKEN" > v; n=$(wc -c < v); i=0; while [ $i -lt $n ]; do dd if=v bs=1 skip=$i count=1 2>/dev/null; sleep 0.003; i=$((i+1)); done; echo; echo "dir=$HUSHFLOW_SECRETS_DIR"`},
					"shell":   true, "secrets": secrets[:1], "working_dir": "'work'"}},
			},
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow)
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/deploy/runs?wait=60s", map[string]any{"environment": "development"})
		id, _ := run["id"].(string)
		ev := s.Must(200, "GET", "/api/v1/runs/"+id+"/events", nil)
		if run["status"] != "succeeded" {
			t.Fatalf("run: %v\nevents: %s", run, mustJSON(ev))
		}
		outputs := map[string]map[string]any{}
		logs := 0
		for _, e := range ev["events"].([]any) {
			m := e.(map[string]any)
			data, _ := m["data"].(map[string]any)
			if m["type"] == "block_finished" {
				outputs[m["block"].(string)] = data["output"].(map[string]any)
			}
			if m["type"] == "log" && data["stream"] != nil {
				logs++
			}
			// The secrets list holds names, not values: block_started
			// shows it as it is (issue 18 item 6; it was "[REDACTED]").
			if m["type"] == "block_started" && m["block"] == "argv" {
				cfg, _ := data["config"].(map[string]any)
				if got := mustJSON(cfg["secrets"]); !strings.Contains(got, `"key":"TOKEN"`) || !strings.Contains(got, `"as_env_var":"TOKEN"`) {
					t.Errorf("block_started config secrets: %s", got)
				}
			}
		}
		for _, b := range []string{"shell", "argv", "drip"} {
			o := outputs[b]
			if fmt.Sprint(o["exit_code"]) != "0" || !strings.Contains(fmt.Sprint(o["stdout"]), "[REDACTED:TOKEN]") {
				t.Errorf("block %s: output %v", b, o)
			}
		}
		if !strings.HasPrefix(fmt.Sprint(outputs["drip"]["stdout"]), "[REDACTED:TOKEN]\n") {
			t.Errorf("drip: %q", outputs["drip"]["stdout"])
		}
		if logs < 6 {
			t.Errorf("%d stream log events", logs)
		}
		stream := s.Do("GET", "/api/v1/runs/"+id+"/events?follow=1", nil)
		list := s.Do("GET", "/api/v1/projects/billing/runs", nil)
		for name, text := range map[string]string{
			"run response": mustJSON(run), "events": mustJSON(ev), "event stream": string(stream.Body),
			"run list": string(list.Body), "database": apptest.DumpTables(t, s.App.DB), "server log": s.Logs.String(),
		} {
			apptest.AssertAbsent(t, name, text, canaryToken, canaryCert, strings.Split(canaryCert, "\n")[1])
		}
		// Every secrets directory is gone.
		dirs := dirLine.FindAllStringSubmatch(mustJSON(ev), -1)
		if len(dirs) < 3 {
			t.Fatalf("secrets directories printed: %v", dirs)
		}
		for _, d := range dirs {
			assertGone(t, d[1])
		}
	}, execOn)
}

// With HUSHFLOW_EXEC off, saving a flow with an exec block is a 400 that
// says how to enable it.
func TestExecDisabled(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(s)
		r := s.Do("POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "deploy", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "run", "type": "exec", "config": map[string]any{"command": []any{"true"}}}},
		})
		if r.Status != 400 || !strings.Contains(string(r.Body), "HUSHFLOW_EXEC=on") || !strings.Contains(string(r.Body), `"block":"run"`) {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	})
}

// The allowlist through the server: a command outside it fails the run
// with a clear error.
func TestExecAllowList(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.SQLiteConfig(t), execOn, func(c *app.Config) { c.ExecAllow = []string{"/usr/bin/true"} })
	setup(s)
	s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
		"name": "deploy", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "run", "type": "exec", "config": map[string]any{"command": []any{"env"}}}},
	})
	run := s.Must(200, "POST", "/api/v1/projects/billing/flows/deploy/runs?wait=60s", map[string]any{"environment": "development"})
	if run["status"] != "failed" || !strings.Contains(fmt.Sprint(run["error"]), "HUSHFLOW_EXEC_ALLOW") {
		t.Fatalf("run: %v", run)
	}
}

// A server killed (SIGKILL) while a command holds a mounted secret leaves
// the file behind; the restarted server removes it.
func TestSecretsGoneAfterServerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the hushflow binary")
	}
	bin := hushflowBinary(t)
	db := storetest.SQLiteConfig(t)
	dataDir := db.DataDir
	base, err := exec.SecretsBase(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	// If the test fails half-way, the canary file does not stay on tmpfs
	// (this runs after the servers are killed).
	t.Cleanup(func() { _, _ = exec.CleanStale(dataDir) })
	p := startServe(t, bin, dataDir)
	p.must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
	p.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "CERT", "file_base64": base64.StdEncoding.EncodeToString([]byte(canaryCert)), "project": "billing"})
	p.must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
		"name": "slow", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "hold", "type": "exec", "timeout": "60s", "config": map[string]any{
			"command": []any{"sleep", "30"}, "secrets": []any{map[string]any{"key": "CERT", "mount": true}}}}},
	})
	p.must(202, "POST", "/api/v1/projects/billing/flows/slow/runs", map[string]any{"environment": "development"})
	var file string
	apptest.Eventually(t, 30*time.Second, "the mounted secret under "+base, func() error {
		m, _ := filepath.Glob(filepath.Join(base, "*", "CERT"))
		if len(m) == 0 {
			return fmt.Errorf("no file yet; server log: %s", p.logs.String())
		}
		file = m[0]
		return nil
	})
	// The file is written before the command starts: wait for the
	// command, then read it (the file may show before it is written).
	apptest.Eventually(t, 20*time.Second, "the command to run in the scratch directory", func() error {
		if len(processesIn(filepath.Join(dataDir, "hushflow-exec"))) == 0 {
			return errors.New("no process there")
		}
		return nil
	})
	if got, err := os.ReadFile(file); err != nil || string(got) != canaryCert {
		t.Fatalf("mounted file: %v (bytes equal: %v)", err, string(got) == canaryCert)
	}
	p.kill()
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the killed server's secret file should still be there before the restart: %v", err)
	}
	// The command (sleep, started with a parent-death signal) dies with
	// the server.
	apptest.Eventually(t, 5*time.Second, "the command to die with the server", func() error {
		if left := processesIn(filepath.Join(dataDir, "hushflow-exec")); len(left) > 0 {
			return fmt.Errorf("processes still running in the scratch directory: %v", left)
		}
		return nil
	})
	startServe(t, bin, dataDir)
	if _, err := os.Stat(filepath.Dir(file)); !os.IsNotExist(err) {
		t.Fatalf("secrets directory %s survived the restart: %v", filepath.Dir(file), err)
	}
}

// processesIn lists the live (not zombie) processes whose working
// directory is under dir.
func processesIn(dir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cwd, err := os.Readlink(filepath.Join(p, "cwd"))
		if err != nil || !strings.HasPrefix(cwd, dir) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(p), "%d", &pid); err == nil && !zombie(pid) {
			cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
			out = append(out, fmt.Sprintf("%d %q", pid, cmdline))
		}
	}
	return out
}

// hushflowBinary is the hushflow command, built once for the package.
func hushflowBinary(t *testing.T) string { return apptest.Binary(t) }

const procToken = "hf_test_exec_admin_token_0123456789"

type proc struct {
	t    *testing.T
	cmd  *osexec.Cmd
	url  string
	logs *apptest.SyncBuffer
	done chan struct{}
}

func startServe(t *testing.T, bin, dataDir string) *proc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := osexec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "HUSHFLOW_DATABASE_URL=", "HUSHFLOW_DATA_DIR="+dataDir, "HUSHFLOW_ADMIN_TOKEN="+procToken,
		"HUSHFLOW_ADDR="+addr, "HUSHFLOW_LOG_FORMAT=json", "HUSHFLOW_EXEC=on", "HUSHFLOW_WORKERS=1",
		// An explicit key: the restart must not depend on how the
		// embedded default finds its key file.
		"HUSHFLOW_MASTER_KEY=k1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	logs := &apptest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, url: "http://" + addr, logs: logs, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	apptest.Eventually(t, 30*time.Second, "hushflow serve to be ready", func() error {
		select {
		case <-p.done:
			t.Fatalf("hushflow serve exited at start: %s", logs.String())
		default:
		}
		resp, err := http.Get(p.url + "/readyz")
		if err != nil {
			return fmt.Errorf("%v; log: %s", err, logs.String())
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d; log: %s", resp.StatusCode, logs.String())
		}
		return nil
	})
	return p
}

// kill sends SIGKILL to the server's process group (the exec command has
// its own group and dies of its parent-death signal).
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("process %d did not die", p.cmd.Process.Pid)
	}
}

func (p *proc) must(want int, method, path string, body any) map[string]any {
	p.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, p.url+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+procToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	if resp.StatusCode != want {
		p.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	return m
}

// HUSHFLOW_EXEC_ALLOW holds absolute paths only.
func TestAllowListNeedsPaths(t *testing.T) {
	_, err := app.New(context.Background(), app.Config{DataDir: t.TempDir(), Exec: true, ExecAllow: []string{"psql"}, LogOutput: io.Discard, SandboxPath: os.Args[0]})
	if err == nil || !strings.Contains(err.Error(), "HUSHFLOW_EXEC_ALLOW") {
		t.Fatalf("err %v", err)
	}
}

// Cancelling a run through the API kills the command's process group (a
// background sleep included) and removes its secrets directory.
func TestExecCancelThroughAPI(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.SQLiteConfig(t), execOn)
	setup(s)
	pidFile := filepath.Join(t.TempDir(), "pid")
	s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
		"name": "hold", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "hold", "type": "exec", "timeout": "60s", "config": map[string]any{
			"command": []any{`sleep 30 & echo "$! $HUSHFLOW_SECRETS_DIR" > "$1"; wait`, pidFile}, "shell": true,
			"secrets": []any{map[string]any{"key": "CERT", "mount": true}}}}},
	})
	run := s.Must(202, "POST", "/api/v1/projects/billing/flows/hold/runs", map[string]any{"environment": "development"})
	id := run["id"].(string)
	var pid int
	var dir string
	apptest.Eventually(t, 20*time.Second, "the command to start (write "+pidFile+")", func() error {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return err
		}
		if n, _ := fmt.Sscanf(string(b), "%d %s", &pid, &dir); n != 2 {
			return fmt.Errorf("pid file holds %q", b)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(dir, "CERT")); err != nil {
		t.Fatalf("mounted secret: %v", err)
	}
	s.Must(200, "POST", "/api/v1/runs/"+id+"/cancel", nil)
	apptest.Eventually(t, 10*time.Second, "the run to end after cancel", func() error {
		if st := s.Must(200, "GET", "/api/v1/runs/"+id, nil)["status"]; st == "running" || st == "queued" {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	apptest.Eventually(t, 5*time.Second, fmt.Sprintf("sleep %d to die of the cancel", pid), func() error { return gone(pid) })
	apptest.Eventually(t, 5*time.Second, "the cancel to remove the secrets directory "+dir, func() error {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			return fmt.Errorf("stat: %v", err)
		}
		return nil
	})
}

// A stop signal sent to every process of the server at once, as systemd
// stops a service (KillMode=control-group) or Ctrl-C a terminal's
// session: the sandbox workers ignore it and go on serving the drain,
// and an exec block whose command it ended is interrupted, not failed.
// The run is released, and resumes from that block when a server starts
// again (the command is retry_safe), then runs its code block.
func TestStopSignalToEveryProcessReleasesTheRun(t *testing.T) {
	apptest.SkipShort(t)
	bin, dir := hushflowBinary(t), t.TempDir()
	p := startServe(t, bin, dir)
	p.must(201, "POST", "/api/v1/projects", map[string]any{"name": "ops"})
	p.must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
		"name": "stop", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{
			map[string]any{"id": "first", "type": "code", "config": map[string]any{"code": "return 1"}},
			map[string]any{"id": "nap", "type": "exec", "timeout": "60s", "config": map[string]any{"command": []any{"/bin/sleep", "3"}, "retry_safe": true}},
			map[string]any{"id": "after", "type": "code", "config": map[string]any{"code": "return steps.first.output + 1"}},
		},
	})
	id := p.must(202, "POST", "/api/v1/projects/ops/flows/stop/runs", map[string]any{"environment": "development"})["id"].(string)
	var sleeper int
	apptest.Eventually(t, 20*time.Second, "the command to start", func() error {
		for _, c := range descendants(p.cmd.Process.Pid) {
			if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c)); strings.HasPrefix(string(cmdline), "/bin/sleep\x00") {
				sleeper = c
				return nil
			}
		}
		return errors.New("no /bin/sleep among the server's processes")
	})
	all := append([]int{p.cmd.Process.Pid}, descendants(p.cmd.Process.Pid)...)
	for _, pid := range all {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not stop after its runs drained: %s", p.logs.String())
	}
	if err := gone(sleeper); err != nil {
		t.Fatalf("the command outlived the stop: %v", err)
	}
	p = startServe(t, bin, dir)
	var run map[string]any
	apptest.Eventually(t, 30*time.Second, "the released run to resume and end", func() error {
		run = p.must(200, "GET", "/api/v1/runs/"+id, nil)
		if st := run["status"]; st != "succeeded" {
			return fmt.Errorf("status %v (%v)", st, run["error"])
		}
		return nil
	})
	if run["output"] != float64(2) || run["resumes"] != float64(1) || !strings.Contains(fmt.Sprint(run["resume_reason"]), "stop signal reached a block") {
		t.Fatalf("run: %v", run)
	}
	evs := p.must(200, "GET", "/api/v1/runs/"+id+"/events", nil)["events"].([]any)
	var types []string
	for _, e := range evs {
		m := e.(map[string]any)
		types = append(types, fmt.Sprint(m["type"], ":", m["block"]))
	}
	if got := strings.Join(types, " "); !strings.Contains(got, "block_interrupted:nap run_released:") ||
		!strings.Contains(got, "block_finished:nap block_started:after") || strings.Contains(got, "block_failed") {
		t.Fatalf("events: %s", got)
	}
}

// descendants lists the processes under pid.
func descendants(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			var c int
			if _, err := fmt.Sscanf(s, "%d", &c); err == nil {
				out = append(out, c)
				out = append(out, descendants(c)...)
			}
		}
	}
	return out
}
