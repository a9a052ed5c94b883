package exec_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/blocks/blockstest"
	"github.com/hushflow/hushflow/blocks/exec"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/redact"
)

// TestMain lets the test binary serve as the exec launcher and as the
// sandbox worker of the end-to-end tests.
func TestMain(m *testing.M) { apptest.Main(m) }

// Canary secrets: high-entropy values with characters every encoding
// treats specially, and a multi-line file.
const (
	canaryToken = `tok_Zq81&x<W>"4%yK\pT6vB2mN9`
	canaryCert  = "-----BEGIN TEST CERT-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm\n-----END TEST CERT-----\n"
)

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func enabled(t *testing.T) *blocks.Env {
	return &blocks.Env{ScratchDir: t.TempDir()}
}

func harness(t *testing.T) *blockstest.Harness {
	h := blockstest.NewHarness(t, map[string]string{"TOKEN": canaryToken, "CERT": canaryCert}, blockstest.Options{})
	// The harness has no Input.Secret yet: resolve as the executor does
	// (the value joins the run's redactor before it is returned).
	h.In.Secret = func(_ context.Context, name string) (string, error) {
		v, ok := h.Secrets[name]
		if !ok {
			return "", fmt.Errorf("secret %q is not defined in project p, environment development", name)
		}
		h.Red.Add(name, v)
		return v, nil
	}
	return h
}

// checkScript exits 0 when $TOKEN and the mounted CERT hold the expected
// bytes (compared by hash), 3 otherwise; it prints the secrets directory,
// the token and the certificate.
const checkScript = `#!/bin/sh
echo "dir=$HUSHFLOW_SECRETS_DIR"
echo "token=$TOKEN"
cat "$HUSHFLOW_SECRETS_DIR/CERT"
echo "$TOKEN" >&2
[ "$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)" = "$WANT_TOKEN" ] || exit 3
[ "$(sha256sum < "$HUSHFLOW_SECRETS_DIR/CERT" | cut -d' ' -f1)" = "$WANT_CERT" ] || exit 4
[ "$(stat -c %a "$HUSHFLOW_SECRETS_DIR")" = 700 ] || exit 5
[ "$(stat -c %a "$HUSHFLOW_SECRETS_DIR/CERT")" = 400 ] || exit 6
exit 0
`

func TestContract(t *testing.T) { blockstest.Run(t, exec.Info()) }

// secretsDir finds the "dir=" line the commands print.
func secretsDir(t *testing.T, out map[string]any) string {
	t.Helper()
	for _, l := range strings.Split(out["stdout"].(string), "\n") {
		if d, ok := strings.CutPrefix(l, "dir="); ok && d != "" {
			return d
		}
	}
	t.Fatalf("no dir= line in %q", out["stdout"])
	return ""
}

func assertGone(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("secrets directory %s still exists (%v)", dir, err)
	}
}

func assertMasked(t *testing.T, h *blockstest.Harness, out any) {
	t.Helper()
	data, _ := json.Marshal(out)
	h.AssertNoLeak(string(data))
	// The block's own output and events carry masks, before the run's
	// redactor sees them.
	raw, _ := json.Marshal(map[string]any{"out": out, "events": h.Events()})
	apptest.AssertAbsent(t, "block output and events", string(raw), canaryToken, canaryCert, strings.Split(canaryCert, "\n")[1])
}

// The shell case: sh -c 'echo $TOKEN; cat $HUSHFLOW_SECRETS_DIR/CERT'.
func TestShellWithSecrets(t *testing.T) {
	h := harness(t)
	out, err := h.Run(context.Background(), exec.Info(), map[string]any{
		"command": []any{`echo "dir=$HUSHFLOW_SECRETS_DIR"; echo $TOKEN; cat $HUSHFLOW_SECRETS_DIR/CERT; [ "$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)" = "$WANT_TOKEN" ] && [ "$(sha256sum < $HUSHFLOW_SECRETS_DIR/CERT | cut -d' ' -f1)" = "$WANT_CERT" ] || exit 3`},
		"shell":   true,
		"secrets": []any{map[string]any{"key": "TOKEN", "as_env_var": "TOKEN"}, map[string]any{"key": "CERT", "mount": true}},
		"env":     map[string]any{"WANT_TOKEN": sum(canaryToken), "WANT_CERT": sum(canaryCert)},
	}, enabled(t))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	m := out.(map[string]any)
	if m["exit_code"] != 0 {
		t.Fatalf("exit code %v (3: the values did not reach the command): %v", m["exit_code"], m)
	}
	if !strings.Contains(m["stdout"].(string), "[REDACTED:TOKEN]") || !strings.Contains(m["stdout"].(string), "[REDACTED:CERT]") {
		t.Errorf("stdout lacks the masks: %q", m["stdout"])
	}
	if len(h.EventsOf("log")) < 3 {
		t.Errorf("want log events per line, got %v", h.Events())
	}
	// Log events have the shape of every other log event (level,
	// message), so that the inspector and `run logs` show the line (issue
	// 18 item 1: they showed raw JSON and "[info] null").
	for _, e := range h.EventsOf("log") {
		if msg, ok := e.Data["message"].(string); !ok || msg == "" || e.Data["stream"] == nil || e.Data["level"] == nil {
			t.Errorf("log event %v: want level, stream and a message", e.Data)
		}
	}
	assertMasked(t, h, out)
	assertGone(t, secretsDir(t, m))
}

// Plain argv: a script run directly (no shell line), with the values
// checked by hash in the command.
func TestArgvWithSecrets(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "check.sh")
	if err := os.WriteFile(script, []byte(checkScript), 0o755); err != nil {
		t.Fatal(err)
	}
	h := harness(t)
	env := enabled(t)
	out, err := h.Run(context.Background(), exec.Info(), map[string]any{
		"command": []any{script, "a b", "$TOKEN"},
		"secrets": []any{map[string]any{"key": "TOKEN", "as_env_var": "TOKEN"}, map[string]any{"key": "CERT", "mount": true}},
		"env":     map[string]any{"WANT_TOKEN": sum(canaryToken), "WANT_CERT": sum(canaryCert)},
	}, env)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	m := out.(map[string]any)
	if m["exit_code"] != 0 {
		t.Fatalf("exit code %v: %v", m["exit_code"], m)
	}
	if !strings.Contains(m["stderr"].(string), "[REDACTED:TOKEN]") {
		t.Errorf("stderr %q", m["stderr"])
	}
	assertMasked(t, h, out)
	d := secretsDir(t, m)
	assertGone(t, d)
	if !strings.HasPrefix(d, "/dev/shm/") {
		t.Logf("secrets directory not on /dev/shm: %s", d)
	}
	// The scratch directory is empty again.
	ents, _ := os.ReadDir(filepath.Join(env.ScratchDir, "hushflow-exec"))
	if len(ents) != 0 {
		t.Errorf("scratch directories left: %v", ents)
	}
}

// The environment is exactly PATH, HUSHFLOW_SECRETS_DIR and what the
// block declares; argv reaches the program without shell expansion.
func TestCleanEnvAndArgv(t *testing.T) {
	t.Setenv("HUSHFLOW_LEAK_CHECK", "server-only")
	h := harness(t)
	out, err := h.Run(context.Background(), exec.Info(), map[string]any{
		"command": []any{"env"},
		"env":     map[string]any{"A": "1"},
		"secrets": []any{map[string]any{"key": "TOKEN", "as_env_var": "T"}},
	}, enabled(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out.(map[string]any)["stdout"].(string)), "\n") {
		k, _, _ := strings.Cut(l, "=")
		names = append(names, k)
	}
	if got := strings.Join(sorted(names), ","); got != "A,HUSHFLOW_SECRETS_DIR,PATH,T" {
		t.Errorf("environment: %s", got)
	}
	out, err = h.Run(context.Background(), exec.Info(), map[string]any{
		"command": []any{"printf", "%s|", "$HOME", "a b", "`id`", ";"}}, enabled(t))
	if err != nil || out.(map[string]any)["stdout"] != "$HOME|a b|`id`|;|" {
		t.Errorf("argv: %v %v", out, err)
	}
	out, err = h.Run(context.Background(), exec.Info(), map[string]any{
		"command": []any{"cat"}, "stdin": "from stdin", "working_dir": "sub/dir"}, enabled(t))
	if err != nil || out.(map[string]any)["stdout"] != "from stdin" {
		t.Errorf("stdin: %v %v", out, err)
	}
	out, err = h.Run(context.Background(), exec.Info(), map[string]any{
		"command": "pwd", "working_dir": "sub/dir"}, enabled(t))
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out.(map[string]any)["stdout"].(string)), "/sub/dir") {
		t.Errorf("working_dir: %v %v", out, err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// A command that writes the value one byte at a time, each byte its own
// write (a dd process) with a pause between: masked in every event.
func TestByteAtATime(t *testing.T) {
	h := harness(t)
	out, err := h.Run(context.Background(), exec.Info(), map[string]any{
		"command": []any{`printf '%s' "$TOKEN" > v; n=$(wc -c < v); i=0; printf 'start:'; while [ $i -lt $n ]; do dd if=v bs=1 skip=$i count=1 2>/dev/null; sleep 0.003; i=$((i+1)); done; printf ':end'`},
		"shell":   true,
		"secrets": []any{map[string]any{"key": "TOKEN", "as_env_var": "TOKEN"}},
	}, enabled(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := out.(map[string]any)["stdout"]; got != "start:[REDACTED:TOKEN]:end" {
		t.Errorf("stdout %q", got)
	}
	assertMasked(t, h, out)
}

// The streaming writer sees every split: written one byte per Write with
// an event check after each.
func TestStreamOneByteWrites(t *testing.T) {
	for _, v := range []string{canaryToken, canaryCert} {
		red := redact.New()
		red.Add("K", v)
		var evs []blocks.Event
		s := exec.NewStreamForTest("stdout", red, 1<<20, func(e blocks.Event) { evs = append(evs, e) })
		text := "before " + v + " middle " + v + " after\n"
		for i := 0; i < len(text); i++ {
			s.Write([]byte{text[i]})
		}
		s.Close()
		all, _ := json.Marshal(evs)
		apptest.AssertAbsent(t, "events", string(all)+s.Output(), v)
		if strings.Count(s.Output(), "[REDACTED:K]") < 2 {
			t.Errorf("output %q", s.Output())
		}
	}
}

// Timeout and cancel kill the whole process group, a sleep grandchild
// included.
func TestTimeoutAndCancelKillTheGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for two 2 s timeouts: skipped in -short mode")
	}
	for _, mode := range []string{"timeout", "cancel", "block timeout"} {
		t.Run(mode, func(t *testing.T) {
			h := harness(t)
			pidFile := filepath.Join(t.TempDir(), "pid")
			cfg := map[string]any{
				// sh starts sleep in the background (a grandchild of the
				// launcher's pid after exec), records its pid, and waits.
				"command": []any{`sleep 30 & echo $! > "$1"; wait`, pidFile},
				"shell":   true,
			}
			env := enabled(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			switch mode {
			case "timeout":
				cfg["timeout"] = "2s"
			case "block timeout":
				ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
			}
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, err := h.Run(ctx, exec.Info(), cfg, env)
				done <- err
			}()
			pid := readPid(t, pidFile) // the command has started
			if mode == "cancel" {
				cancel()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("the block still runs after %s", time.Since(start))
			}
			if err == nil {
				t.Fatalf("the block succeeded after %s", time.Since(start))
			}
			want := "timed out"
			if mode == "cancel" {
				want = "cancelled"
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "process group was killed") {
				t.Errorf("error: %v", err)
			}
			apptest.Eventually(t, 5*time.Second, fmt.Sprintf("the sleep grandchild %d to die", pid), func() error { return gone(pid) })
		})
	}
}

// readPid waits for the command to write its pid into file p and returns
// it.
func readPid(t *testing.T, p string) int {
	t.Helper()
	var pid int
	apptest.Eventually(t, 10*time.Second, "the command to write its pid to "+p, func() error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("pid file: %w", err)
		}
		return nil
	})
	return pid
}

// gone returns nil when process pid is dead or a zombie (dead, waiting for
// a reaper that is not this test), and an error while it runs.
func gone(pid int) error {
	if syscall.Kill(pid, 0) == nil && !zombie(pid) {
		return fmt.Errorf("process %d is still running", pid)
	}
	return nil
}

// zombie reports whether pid is a zombie (dead, waiting for a reaper that
// is not this test).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func TestExitStatus(t *testing.T) {
	h := harness(t)
	_, err := h.Run(context.Background(), exec.Info(), map[string]any{
		"command": []any{`echo "bad $TOKEN" >&2; exit 7`}, "shell": true,
		"secrets": []any{map[string]any{"key": "TOKEN", "as_env_var": "TOKEN"}}}, enabled(t))
	if err == nil || !strings.Contains(err.Error(), "status 7") || !strings.Contains(err.Error(), "[REDACTED:TOKEN]") {
		t.Errorf("error %v", err)
	}
	out, err := h.Run(context.Background(), exec.Info(), map[string]any{
		"command": []any{"exit 7"}, "shell": true, "allow_failure": true}, enabled(t))
	if err != nil || out.(map[string]any)["exit_code"] != 7 {
		t.Errorf("allow_failure: %v %v", out, err)
	}
}

func TestLimits(t *testing.T) {
	h := harness(t)
	// Output over max_output is cut and flagged; the events stop too.
	out, err := h.Run(context.Background(), exec.Info(), map[string]any{
		"command": []any{`i=0; while [ $i -lt 200 ]; do echo "line $i"; i=$((i+1)); done`}, "shell": true, "max_output": 100}, enabled(t))
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	if m["truncated"] != true || len(m["stdout"].(string)) > 100 || len(h.EventsOf("log")) > 20 {
		t.Errorf("truncation: %v, %d events", m, len(h.EventsOf("log")))
	}
	// rlimits as the command sees them.
	out, err = h.Run(context.Background(), exec.Info(), map[string]any{
		"command": []any{`echo "$(ulimit -n) $(ulimit -v) $(ulimit -c) $(ulimit -t)"`}, "shell": true, "timeout": "5s"}, enabled(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.(map[string]any)["stdout"].(string)); got != fmt.Sprintf("256 %d 0 6", exec.MemoryLimit/1024) {
		t.Errorf("limits (nofile as_kib core cpu_s): %q", got)
	}
}

func TestRefusals(t *testing.T) {
	h := harness(t)
	run := func(cfg map[string]any, env *blocks.Env) error {
		_, err := h.Run(context.Background(), exec.Info(), cfg, env)
		return err
	}
	cases := []struct {
		name string
		cfg  map[string]any
		env  *blocks.Env
		want string
	}{
		{"not allowed", map[string]any{"command": []any{"true"}}, &blocks.Env{ExecAllow: []string{"/usr/bin/env"}}, "not allowed"},
		{"shell not allowed", map[string]any{"command": []any{"true"}, "shell": true}, &blocks.Env{ExecAllow: []string{"/usr/bin/true"}}, "/bin/sh in HUSHFLOW_EXEC_ALLOW"},
		{"absolute dir", map[string]any{"command": []any{"true"}, "working_dir": "/etc"}, enabled(t), "relative path"},
		{"escape dir", map[string]any{"command": []any{"true"}, "working_dir": "a/../../x"}, enabled(t), "relative path"},
		{"PATH", map[string]any{"command": []any{"true"}, "env": map[string]any{"PATH": "/tmp"}}, enabled(t), "set by the server"},
		{"LD_PRELOAD", map[string]any{"command": []any{"true"}, "env": map[string]any{"LD_PRELOAD": "/x.so"}}, enabled(t), "LD_PRELOAD"},
		{"neither", map[string]any{"command": []any{"true"}, "secrets": []any{map[string]any{"key": "TOKEN"}}}, enabled(t), "as_env_var"},
		{"bad key", map[string]any{"command": []any{"true"}, "secrets": []any{map[string]any{"key": "../x", "mount": true}}}, enabled(t), "not a secret name"},
		{"unknown secret", map[string]any{"command": []any{"true"}, "secrets": []any{map[string]any{"key": "NOPE", "mount": true}}}, enabled(t), "NOPE"},
		{"unknown item field", map[string]any{"command": []any{"true"}, "secrets": []any{map[string]any{"key": "TOKEN", "mount": true, "mode": 1}}}, enabled(t), "unknown field"},
		{"not found", map[string]any{"command": []any{"ls -la"}}, enabled(t), "not a shell line"},
		{"empty", map[string]any{}, enabled(t), "command is required"},
		{"number arg", map[string]any{"command": []any{"echo", 1}}, enabled(t), "must be a string"},
	}
	for _, c := range cases {
		if err := run(c.cfg, c.env); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	// Allowed: by path and through symbolic links (/bin -> /usr/bin).
	if err := run(map[string]any{"command": []any{"true"}, "shell": false}, &blocks.Env{ExecAllow: []string{"/bin/true", "/usr/bin/true"}}); err != nil {
		t.Errorf("allowed command: %v", err)
	}
	if err := run(map[string]any{"command": []any{"true"}, "shell": true}, &blocks.Env{ExecAllow: []string{"/bin/sh"}}); err != nil {
		t.Errorf("allowed shell: %v", err)
	}
}

// CleanStale removes directories of dead servers and keeps those of live
// ones.
func TestCleanStale(t *testing.T) {
	scratch := t.TempDir()
	base, err := exec.SecretsBase(scratch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(base) })
	dead := filepath.Join(base, "999999999-run-b-00")
	live := filepath.Join(base, fmt.Sprintf("%d-run-b-00", os.Getpid()))
	for _, d := range []string{dead, live} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "K"), []byte("x"), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	defer os.RemoveAll(live)
	n, err := exec.CleanStale(scratch)
	if err != nil || n != 1 {
		t.Fatalf("CleanStale: %d %v", n, err)
	}
	assertGone(t, dead)
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live server's directory was removed: %v", err)
	}
}

// BenchmarkTrue is the cost of one exec block around `true`: directories,
// launcher (a re-exec of the binary), process group, streams.
func BenchmarkTrue(b *testing.B) {
	h := blockstest.NewHarness(b, nil, blockstest.Options{})
	env := &blocks.Env{ScratchDir: b.TempDir()}
	for b.Loop() {
		if _, err := h.Run(context.Background(), exec.Info(), map[string]any{"command": []any{"true"}}, env); err != nil {
			b.Fatal(err)
		}
	}
}

// Issue 15: a command runs again after an interruption only when the
// block says retry_safe, and the executor hears of it (Input.Effect)
// before the command starts: a refusal there means it does not start.
func TestRetrySafeAndEffect(t *testing.T) {
	h := harness(t)
	for _, safe := range []bool{false, true} {
		b, err := h.Decode(exec.Info(), map[string]any{"command": []any{"true"}, "retry_safe": safe}, enabled(t))
		if err != nil {
			t.Fatal(err)
		}
		got, why, err := b.(blocks.Repeatable).RepeatSafe(context.Background(), h.In)
		if err != nil || got != safe || (!safe && !strings.Contains(why, "retry_safe: true")) {
			t.Errorf("retry_safe %v: %v %q %v", safe, got, why, err)
		}
	}
	dir := t.TempDir()
	mark := filepath.Join(dir, "ran")
	var effects int
	h.In.Effect = func(context.Context) error { effects++; return errors.New("the database did not answer") }
	_, err := h.Run(context.Background(), exec.Info(), map[string]any{"command": []any{"touch", mark}}, enabled(t))
	if err == nil || !strings.Contains(err.Error(), "the database did not answer") || effects != 1 {
		t.Fatalf("refused effect: %v (effects %d)", err, effects)
	}
	if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the command ran although its effect was refused")
	}
	h.In.Effect = func(context.Context) error { effects++; return nil }
	if _, err := h.Run(context.Background(), exec.Info(), map[string]any{"command": []any{"touch", mark}}, enabled(t)); err != nil || effects != 2 {
		t.Fatalf("allowed effect: %v (effects %d)", err, effects)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatalf("the command did not run: %v", err)
	}
}

// Issue 16, case 45: variables that make a program load or run other code
// (the loader, shells, interpreters, tools that start editors or pagers)
// are refused in env, so that an allowed command stays that command.
func TestLoaderVariablesRefused(t *testing.T) {
	h := harness(t)
	for _, k := range []string{"LD_PRELOAD", "LD_LIBRARY_PATH", "GCONV_PATH", "GLIBC_TUNABLES", "BASH_ENV", "ENV", "BASH_FUNC_ls%%",
		"NODE_OPTIONS", "PYTHONPATH", "PYTHONSTARTUP", "PERL5OPT", "RUBYOPT", "JAVA_TOOL_OPTIONS", "PSQLRC", "PAGER",
		"GIT_SSH_COMMAND", "GIT_CONFIG_COUNT", "MALLOC_CHECK_"} {
		_, err := h.Run(context.Background(), exec.Info(), map[string]any{"command": []any{"true"}, "env": map[string]any{k: "/tmp/x"}}, enabled(t))
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("env %s: %v, want a refusal naming it", k, err)
		}
	}
	// Ordinary variables stay allowed.
	if _, err := h.Run(context.Background(), exec.Info(), map[string]any{"command": []any{"true"}, "env": map[string]any{"PGHOST": "db", "LANG": "C"}}, enabled(t)); err != nil {
		t.Errorf("ordinary variables: %v", err)
	}
}
