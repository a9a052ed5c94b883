// Package exec is the "exec" block: it runs a command-line tool (a deploy
// CLI, psql, curl, a script of the flow's repository) with secrets handed
// to it as environment variables or as files, the way Flyte hands secrets
// to task code.
//
// The block is disabled unless the server enables it (HUSHFLOW_EXEC=on);
// HUSHFLOW_EXEC_ALLOW can restrict it to a list of command paths. The
// command runs without a shell (unless shell: true), in a clean
// environment (PATH, HUSHFLOW_SECRETS_DIR and what the block declares), in
// its own process group, which is killed on timeout and cancel, under
// resource limits set by a launcher (see [LauncherMain]). Mounted secrets
// are files of mode 0400 in a directory of mode 0700 made for this
// execution (on tmpfs when /dev/shm is usable) and removed when the block
// ends; [CleanStale] removes what a killed server left behind.
//
// stdout and stderr are read as streams through a redacting writer that
// knows the values this block resolved, so that a value written in pieces
// is masked before any of it becomes a log event.
//
// Anyone who can edit a flow with an exec block can read the secrets it
// uses: see docs/exec.md.
package exec

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/redact"
)

func init() { blocks.MustRegister(Info()) }

// Limits of the block; see docs/exec.md.
const (
	// DefaultMaxOutput is the default number of bytes of stdout, and of
	// stderr, kept in the output and logged as events.
	DefaultMaxOutput = 1 << 20
	// MaxMaxOutput bounds max_output.
	MaxMaxOutput = 8 << 20
	// MaxTimeout bounds the timeout field; the block's timeout in the
	// flow (30s by default) bounds it too.
	MaxTimeout = time.Hour
	// MemoryLimit is the address-space limit (RLIMIT_AS) of the command.
	MemoryLimit = 1 << 30
	// FileLimit is the open-file limit (RLIMIT_NOFILE) of the command.
	FileLimit = 256
	// WaitDelay bounds how long the block waits for the command's pipes
	// to close after it exited or was killed.
	WaitDelay = 2 * time.Second
	// ShellPath is the shell used with shell: true.
	ShellPath = "/bin/sh"
	// DefaultPath is the command's PATH when the server has none.
	DefaultPath = "/usr/local/bin:/usr/bin:/bin"
	// EnvSecretsDir names the variable holding the mounted secrets'
	// directory.
	EnvSecretsDir = "HUSHFLOW_SECRETS_DIR"
)

// Info describes the exec block.
func Info() blocks.Info {
	return blocks.Info{ID: "exec", Spec: spec(), New: func() blocks.Block { return new(Exec) }}
}

var (
	_ blocks.Block       = (*Exec)(nil)
	_ blocks.Provisioner = (*Exec)(nil)
	_ blocks.Validator   = (*Exec)(nil)
	_ blocks.Repeatable  = (*Exec)(nil)
)

// Exec is the configuration of an exec block.
type Exec struct {
	// Command is the argv: the program (a path, or a name looked up in
	// PATH) and its arguments. With Shell it is a script for /bin/sh -c,
	// followed by the script's positional parameters.
	Command Argv `json:"command"`
	// Shell runs Command[0] with /bin/sh -c.
	Shell bool `json:"shell"`
	// Secrets lists the secrets handed to the command.
	Secrets []SecretRef `json:"secrets"`
	// Env holds non-secret environment variables.
	Env map[string]string `json:"env"`
	// Stdin is written to the command's standard input.
	Stdin string `json:"stdin"`
	// Timeout bounds the command (the block's own timeout bounds it too).
	Timeout blocks.Dur `json:"timeout"`
	// WorkingDir is a relative directory inside the execution's scratch
	// directory.
	WorkingDir string `json:"working_dir"`
	// MaxOutput is the number of bytes of each of stdout and stderr kept.
	MaxOutput int `json:"max_output"`
	// AllowFailure makes a non-zero exit status an output rather than an
	// error.
	AllowFailure bool `json:"allow_failure"`
	// RetrySafe says the command may run again when a run interrupted
	// while it ran resumes (it is idempotent: a migration that checks its
	// state, a read-only query).
	RetrySafe bool `json:"retry_safe"`

	env *blocks.Env
}

// RepeatSafe: only a command the flow marks retry_safe is run again.
func (e *Exec) RepeatSafe(context.Context, *blocks.Input) (bool, string, error) {
	if e.RetrySafe {
		return true, "", nil
	}
	return false, "an exec block's command may have changed something, and exec commands are run again only when the block sets retry_safe: true (do so if running the command twice is harmless)", nil
}

// SecretRef hands one secret to the command.
type SecretRef struct {
	// Key is the secret's name, resolved in the run's scope.
	Key string `json:"key"`
	// AsEnvVar names the environment variable holding the value.
	AsEnvVar string `json:"as_env_var,omitempty"`
	// Mount writes the value to $HUSHFLOW_SECRETS_DIR/<Key>.
	Mount bool `json:"mount,omitempty"`
}

// Argv is a command line: a JSON array of strings, or one string (a
// one-element argv, which is a script when shell is true).
type Argv []string

// UnmarshalJSON accepts ["prog", "arg"] or "prog".
func (a *Argv) UnmarshalJSON(b []byte) error {
	var v any
	if err := blocks.StrictUnmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		*a = nil
	case string:
		*a = Argv{x}
	case []any:
		out := make(Argv, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("command[%d] is %T; every argument must be a string", i, e)
			}
			out[i] = s
		}
		*a = out
	default:
		return fmt.Errorf("command must be an array of strings, such as [\"psql\", \"-c\", \"select 1\"]")
	}
	return nil
}

func spec() blocks.Spec {
	return blocks.Spec{
		Summary: "Run a command (no shell unless shell is true) with secrets as environment variables or files; the output is {exit_code, stdout, stderr, truncated}. Disabled unless the server sets HUSHFLOW_EXEC=on.",
		Fields: []blocks.Field{
			{Name: "command", Type: blocks.Array, Required: true, Doc: "The argv: program (a path or a name found in PATH) and arguments. With shell: true, the first element is a /bin/sh script and the others its $1, $2, ...", Example: `["psql", "-c", "select 1"]`},
			{Name: "shell", Type: blocks.Bool, Doc: "Run the command with /bin/sh -c. Off by default: arguments are passed as they are, with no shell expansion.", Default: false},
			{Name: "secrets", Type: blocks.Array, SecretNames: true, Doc: "Secrets handed to the command, by name: {key, as_env_var: \"NAME\"} sets an environment variable, {key, mount: true} writes the file $HUSHFLOW_SECRETS_DIR/<key> (mode 0400), removed when the block ends.", Example: `[{"key": "PGPASSWORD", "as_env_var": "PGPASSWORD"}, {"key": "CA_CERT", "mount": true}]`},
			{Name: "env", Type: blocks.Object, Doc: "Non-secret environment variables. The command gets these, the as_env_var secrets, PATH and HUSHFLOW_SECRETS_DIR, nothing else.", Example: "({PGHOST: env.DB_HOST})"},
			{Name: "stdin", Type: blocks.String, Doc: "Text written to the command's standard input (empty by default)."},
			{Name: "timeout", Type: blocks.Duration, Doc: "Kill the command's process group after this long (at most 1h; the block's timeout also applies).", Example: "'2m'", Max: MaxTimeout},
			{Name: "working_dir", Type: blocks.String, Doc: "A relative directory inside the execution's scratch directory (created; removed when the block ends)."},
			{Name: "max_output", Type: blocks.Number, Doc: "Bytes of stdout, and of stderr, kept in the output and logged (default 1 MiB, at most 8 MiB); the rest is dropped and truncated is true.", Default: DefaultMaxOutput},
			{Name: "allow_failure", Type: blocks.Bool, Doc: "Return a non-zero exit status as output instead of failing the block.", Default: false},
			{Name: "retry_safe", Type: blocks.Bool, Doc: "The command is safe to run twice: a run interrupted while it ran (a replica stopped or died) runs it again when it resumes, instead of failing.", Default: false},
		},
	}
}

var (
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	keyRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
)

// Provision keeps the server's configuration.
func (e *Exec) Provision(env *blocks.Env) error {
	if env == nil {
		env = &blocks.Env{}
	}
	e.env = env
	return nil
}

// Validate checks the configuration. Fields left empty (an expression
// not evaluated yet) are not checked here; Run checks the command.
func (e *Exec) Validate() error {
	if e.Timeout < 0 || e.Timeout.D() > MaxTimeout {
		return fmt.Errorf("timeout must be between 0 and %s", MaxTimeout)
	}
	if e.MaxOutput < 0 || e.MaxOutput > MaxMaxOutput {
		return fmt.Errorf("max_output must be between 0 and %d bytes", MaxMaxOutput)
	}
	if e.WorkingDir != "" && !filepath.IsLocal(e.WorkingDir) {
		return fmt.Errorf("working_dir %q must be a relative path inside the scratch directory (no leading '/', no '..')", e.WorkingDir)
	}
	if e.Shell && len(e.Command) == 0 {
		return errors.New("command: with shell: true, give the script as the first element")
	}
	vars := map[string]string{}
	for k := range e.Env {
		if err := checkEnvName(k); err != nil {
			return fmt.Errorf("env: %w", err)
		}
		vars[k] = "env"
	}
	keys := map[string]bool{}
	for i, s := range e.Secrets {
		where := fmt.Sprintf("secrets[%d]", i)
		if !keyRE.MatchString(s.Key) {
			return fmt.Errorf("%s: key %q is not a secret name", where, s.Key)
		}
		if s.AsEnvVar == "" && !s.Mount {
			return fmt.Errorf("%s (%s): give as_env_var: \"NAME\" or mount: true", where, s.Key)
		}
		if s.AsEnvVar != "" {
			if err := checkEnvName(s.AsEnvVar); err != nil {
				return fmt.Errorf("%s (%s): %w", where, s.Key, err)
			}
			if prev, dup := vars[s.AsEnvVar]; dup {
				return fmt.Errorf("%s (%s): variable %s is already set by %s", where, s.Key, s.AsEnvVar, prev)
			}
			vars[s.AsEnvVar] = where
		}
		if s.Mount {
			if keys[s.Key] {
				return fmt.Errorf("%s: %s is mounted twice", where, s.Key)
			}
			keys[s.Key] = true
		}
	}
	return nil
}

func checkEnvName(k string) error {
	switch {
	case !envNameRE.MatchString(k):
		return fmt.Errorf("%q is not a variable name (letters, digits, '_')", k)
	case k == "PATH" || strings.HasPrefix(k, "HUSHFLOW_"):
		return fmt.Errorf("%s is set by the server", k)
	case loaderVar(k):
		return fmt.Errorf("%s may not be set: it changes what a program loads or how it interprets what it runs, "+
			"which would let a flow run any code through an allowed command", k)
	}
	return nil
}

// Variables that make a program (the dynamic loader, a shell, an
// interpreter, a tool that starts others) load or run code other than its
// own: with any of them a flow could turn an allowed command into any
// command.
var loaderVars = map[string]bool{
	"GCONV_PATH": true, "GLIBC_TUNABLES": true, "HOSTALIASES": true, "LOCPATH": true, "NLSPATH": true,
	"BASH_ENV": true, "ENV": true, "SHELLOPTS": true, "BASHOPTS": true, "PS4": true, "PROMPT_COMMAND": true,
	"IFS": true, "CDPATH": true, "GLOBIGNORE": true,
	"NODE_OPTIONS": true, "NODE_PATH": true, "PERL5OPT": true, "PERL5LIB": true, "PERLLIB": true, "PERL5DB": true,
	"RUBYOPT": true, "RUBYLIB": true, "JAVA_TOOL_OPTIONS": true, "_JAVA_OPTIONS": true, "JDK_JAVA_OPTIONS": true,
	"PSQLRC": true, "LESSOPEN": true, "LESSCLOSE": true, "EDITOR": true, "VISUAL": true, "PAGER": true, "BROWSER": true,
	"GIT_SSH": true, "GIT_SSH_COMMAND": true, "GIT_EXEC_PATH": true, "GIT_ASKPASS": true, "SSH_ASKPASS": true,
}

var loaderPrefixes = []string{"LD_", "DYLD_", "MALLOC_", "PYTHON", "GIT_CONFIG", "BASH_FUNC_"}

func loaderVar(k string) bool {
	if loaderVars[k] {
		return true
	}
	for _, p := range loaderPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// Run runs the command and returns {exit_code, stdout, stderr, truncated}.
func (e *Exec) Run(ctx context.Context, in *blocks.Input) (out any, err error) {
	if e.env == nil {
		_ = e.Provision(nil)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if len(e.Command) == 0 || e.Command[0] == "" {
		return nil, errors.New("command is required: an array such as [\"psql\", \"-c\", \"select 1\"]")
	}
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.Timeout.D())
		defer cancel()
	}
	maxOut := e.MaxOutput
	if maxOut == 0 {
		maxOut = DefaultMaxOutput
	}
	pathEnv := os.Getenv("PATH")
	if pathEnv == "" {
		pathEnv = DefaultPath
	}

	// The block's own redactor: the values it resolves (Input.Secret also
	// adds them to the run's redactor).
	red := redact.New()
	vars := []string{"PATH=" + pathEnv}
	for k, v := range e.Env {
		vars = append(vars, k+"="+v)
	}
	type mount struct{ key, value string }
	var mounts []mount
	for i, s := range e.Secrets {
		if in == nil || in.Secret == nil {
			return nil, fmt.Errorf("secrets[%d] (%s): no secret resolver", i, s.Key)
		}
		v, err := in.Secret(ctx, s.Key)
		if err != nil {
			return nil, fmt.Errorf("secrets[%d]: %w", i, err)
		}
		red.Add(s.Key, v)
		if s.AsEnvVar != "" {
			if strings.IndexByte(v, 0) >= 0 {
				return nil, fmt.Errorf("secrets[%d] (%s): the value holds a NUL byte and cannot be an environment variable; use mount: true", i, s.Key)
			}
			vars = append(vars, s.AsEnvVar+"="+v)
		}
		if s.Mount {
			mounts = append(mounts, mount{s.Key, v})
		}
	}

	scratch := ""
	runID, blockID := "run", "block"
	if in != nil {
		runID, blockID = in.RunID, in.BlockID
	}
	if e.env != nil {
		scratch = e.env.ScratchDir
	}
	// Directories of this execution; removed on every way out, panics
	// included.
	dirs, err := newDirs(scratch, runID, blockID)
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := dirs.remove(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	for _, m := range mounts {
		if err := writeSecretFile(dirs.secrets, m.key, m.value); err != nil {
			return nil, fmt.Errorf("mount secret %s: %w", m.key, err)
		}
	}
	vars = append(vars, EnvSecretsDir+"="+dirs.secrets)
	workDir := dirs.work
	if e.WorkingDir != "" {
		workDir = filepath.Join(dirs.work, e.WorkingDir)
		if err := os.MkdirAll(workDir, 0o700); err != nil {
			return nil, fmt.Errorf("working_dir: %w", err)
		}
	}

	argv := []string(e.Command)
	if e.Shell {
		argv = append([]string{"sh", "-c", e.Command[0], "sh"}, e.Command[1:]...)
	}
	var path string
	if e.Shell {
		path = ShellPath
	} else if path, err = lookPath(argv[0], pathEnv, workDir); err != nil {
		return nil, err
	}
	if allow := e.allowList(); len(allow) > 0 && !allowed(path, allow) {
		if e.Shell {
			return nil, fmt.Errorf("shell: true needs %s in HUSHFLOW_EXEC_ALLOW (allowed: %s)", ShellPath, strings.Join(allow, ", "))
		}
		return nil, fmt.Errorf("command %s is not allowed on this server (HUSHFLOW_EXEC_ALLOW: %s)", path, strings.Join(allow, ", "))
	}

	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	lim := Limits{AS: MemoryLimit, NoFile: FileLimit, CPU: cpuSeconds(timeout)}
	launcher, err := launcherPath()
	if err != nil {
		return nil, fmt.Errorf("exec launcher: %w", err)
	}
	largs := append([]string{launcherFlag, lim.String(), "--", path}, argv...)
	cmd := osexec.CommandContext(ctx, launcher, largs...)
	cmd.Args[0] = argv[0]
	cmd.Env = append(vars, EnvLauncher+"=1")
	cmd.Dir = workDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = WaitDelay
	if e.Stdin != "" {
		cmd.Stdin = strings.NewReader(e.Stdin)
	}
	emit := func(blocks.Event) {}
	if in != nil && in.Emit != nil {
		emit = in.Emit
	}
	stdout := newStream("stdout", red, maxOut, emit)
	stderr := newStream("stderr", red, maxOut, emit)
	cmd.Stdout, cmd.Stderr = stdout, stderr

	if in != nil && in.Effect != nil {
		if err := in.Effect(ctx); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	werr := cmd.Wait()
	// Whatever the command left running in its group goes too.
	_ = killGroup(cmd)
	stdout.Close()
	stderr.Close()
	// A secret the command printed is masked in its output and logs; it
	// is also an exposure alert.
	if in != nil && in.Exposed != nil {
		if names := append(stdout.rw.Found(), stderr.rw.Found()...); len(names) > 0 {
			in.Exposed(blocks.SinkExecOutput, names)
		}
	}
	elapsed := time.Since(start).Round(time.Millisecond)
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	res := map[string]any{
		"exit_code": code,
		"stdout":    stdout.Output(),
		"stderr":    stderr.Output(),
		"truncated": stdout.Truncated() || stderr.Truncated(),
	}
	if cerr := ctx.Err(); cerr != nil {
		what := "cancelled"
		if errors.Is(cerr, context.DeadlineExceeded) {
			what = "timed out"
		}
		return nil, fmt.Errorf("%s %s after %s; its process group was killed: %w", argv[0], what, elapsed, cerr)
	}
	var exitErr *osexec.ExitError
	if werr != nil && !errors.As(werr, &exitErr) && !errors.Is(werr, osexec.ErrWaitDelay) {
		return nil, fmt.Errorf("%s: %s", argv[0], red.String(werr.Error()))
	}
	if code != 0 && !e.AllowFailure {
		detail := lastLine(stderr.Output())
		if detail == "" {
			detail = lastLine(stdout.Output())
		}
		msg := fmt.Sprintf("%s exited with status %d", argv[0], code)
		if code == -1 && exitErr != nil {
			msg = fmt.Sprintf("%s: %s", argv[0], exitErr.ProcessState.String())
			if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() && stopSignals[ws.Signal()] != "" {
				// A stop meant for the server (systemd stops every process
				// of the service at once), or an operator's.
				return nil, fmt.Errorf("%w: %s was stopped by %s, a signal Hushflow did not send", blocks.ErrInterrupted, argv[0], stopSignals[ws.Signal()])
			}
		}
		if detail != "" {
			msg += ": " + detail
		}
		return nil, fmt.Errorf("%s (set allow_failure: true to get the output instead)", msg)
	}
	return res, nil
}

// stopSignals are the signals that stop a service or a terminal session.
var stopSignals = map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGHUP: "SIGHUP"}

func (e *Exec) allowList() []string {
	if e.env == nil {
		return nil
	}
	return e.env.ExecAllow
}

// allowed reports whether path is in allow, directly or once symbolic
// links are resolved on both sides.
func allowed(path string, allow []string) bool {
	real, _ := filepath.EvalSymlinks(path)
	for _, a := range allow {
		if a == path {
			return true
		}
		if ra, err := filepath.EvalSymlinks(a); err == nil && real != "" && ra == real {
			return true
		}
	}
	return false
}

// lookPath finds name as exec.LookPath would, but in pathEnv (the
// command's PATH, not the server's) and relative to dir.
func lookPath(name, pathEnv, dir string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			return "", fmt.Errorf("command %s: %w", name, err)
		}
		return p, nil
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	hint := ""
	if strings.ContainsAny(name, " \t") {
		hint = " (the command is an argv array, not a shell line: write [\"prog\", \"arg\"], or set shell: true)"
	}
	return "", fmt.Errorf("command %q not found in PATH %s%s", name, pathEnv, hint)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// killGroup kills the command's process group.
func killGroup(cmd *osexec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// cpuSeconds is the CPU-time limit for a command given timeout: its
// seconds rounded up plus one, or the longest timeout when there is none.
func cpuSeconds(timeout time.Duration) uint64 {
	if timeout <= 0 || timeout > MaxTimeout {
		timeout = MaxTimeout
	}
	return uint64(math.Ceil(timeout.Seconds())) + 1
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\r\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
