package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hushflow/hushflow/engine/jsvm"
	"github.com/hushflow/hushflow/engine/ordered"
)

// Defaults of Config.
const (
	DefaultMemoryLimit = 512 << 20 // bytes of address space beyond the worker's start
	DefaultGrace       = 250 * time.Millisecond
	DefaultStartup     = 10 * time.Second
)

// Config configures a Pool.
type Config struct {
	// Path and Args start a worker: a program whose main calls WorkerMain,
	// for example os.Executable() with Args ["sandbox-worker"].
	Path string
	Args []string
	// Workers is the number of worker processes (default GOMAXPROCS). A
	// Run waits for an idle worker.
	Workers int
	// MemoryLimit is the memory a worker may use, in bytes (default 512
	// MiB). A worker over it dies and is replaced.
	MemoryLimit int64
	// Grace is how long past a script's deadline the pool waits for the
	// worker's own interrupt before it kills the worker (default 250ms).
	// Builtins that goja cannot interrupt end at deadline + Grace.
	Grace time.Duration
	// Env is extra environment for workers. Workers do not inherit the
	// server's environment, which may hold credentials.
	Env []string
}

// Pool is a pool of sandbox worker processes. It is safe for concurrent
// use and implements engine.Sandbox.
type Pool struct {
	cfg Config
	// idle holds the workers that wait for a request, the last one back
	// on top, and ready a token for each: at a low rate of requests one
	// worker takes them all, warm, while the others sleep.
	idleMu sync.Mutex
	idle   []*worker
	ready  chan struct{}
	closed atomic.Bool
	wg     sync.WaitGroup // replacement goroutines

	mu  sync.Mutex // guards all
	all map[*worker]struct{}

	started atomic.Int64 // workers started, for tests and metrics
}

// New starts the pool's workers and waits until they are ready.
func New(cfg Config) (*Pool, error) {
	if cfg.Path == "" {
		return nil, errors.New("sandbox: no worker executable")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.MemoryLimit <= 0 {
		cfg.MemoryLimit = DefaultMemoryLimit
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	p := &Pool{cfg: cfg, ready: make(chan struct{}, cfg.Workers), all: map[*worker]struct{}{}}
	errs := make(chan error, cfg.Workers)
	for range cfg.Workers {
		go func() {
			w, err := p.start()
			if err == nil {
				p.put(w)
			}
			errs <- err
		}()
	}
	var first error
	for range cfg.Workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		p.Close()
		return nil, first
	}
	return p, nil
}

// Started returns how many worker processes the pool has started,
// replacements included.
func (p *Pool) Started() int { return int(p.started.Load()) }

// Close kills every worker. Runs in progress fail.
func (p *Pool) Close() error {
	p.closed.Store(true)
	p.mu.Lock()
	for w := range p.all {
		w.kill(killClosed)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// worker is one process.
type worker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	in     *bufio.Writer
	out    *bufio.Reader
	stderr *tail
	done   chan struct{} // closed when the process was reaped
	// why says why the pool killed the worker (killTimeout...), 0 if not.
	why atomic.Int32
}

const (
	killTimeout int32 = iota + 1
	killCanceled
	killClosed
	killBroken
)

func (p *Pool) start() (*worker, error) {
	cmd := exec.Command(p.cfg.Path, p.cfg.Args...)
	cmd.Env = append([]string{
		EnvWorker + "=1",
		envMemory + "=" + strconv.FormatInt(p.cfg.MemoryLimit, 10),
		// Two processors: while a script runs on one, its deadline
		// timer (jsvm's watch, armed as the evaluation starts, which has
		// the runtime wake a thread to wait for it) and regexp2's clock
		// fire on the other. With one, only the runtime's monitor thread
		// could preempt the script, and the worker had to wake the
		// monitor at every evaluation (docs/performance.md, "eleventh
		// round").
		"GOMAXPROCS=2",
		"GOTRACEBACK=none",
	}, p.cfg.Env...)
	cmd.Dir = "/"
	w := &worker{cmd: cmd, stderr: &tail{max: 4 << 10}, done: make(chan struct{})}
	cmd.Stderr = w.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sandbox: start worker: %w", err)
	}
	p.started.Add(1)
	w.stdin = stdin
	w.in = bufio.NewWriterSize(stdin, 64<<10)
	w.out = bufio.NewReaderSize(stdout, 64<<10)
	go func() {
		_ = cmd.Wait()
		close(w.done)
	}()
	p.mu.Lock()
	if p.closed.Load() {
		p.mu.Unlock()
		w.kill(killClosed)
		return nil, errors.New("sandbox: pool closed")
	}
	p.all[w] = struct{}{}
	p.mu.Unlock()
	ready := make(chan error, 1)
	go func() {
		var m message
		err := readFrame(w.out, 1<<10, &m)
		if err == nil && m.T != "ready" {
			err = fmt.Errorf("unexpected %q", m.T)
		}
		ready <- err
	}()
	t := time.NewTimer(DefaultStartup)
	defer t.Stop()
	select {
	case err = <-ready:
	case <-t.C:
		err = errors.New("timed out")
	}
	if err != nil {
		w.kill(killBroken)
		<-w.done
		p.forget(w)
		return nil, fmt.Errorf("sandbox: worker did not start: %v: %s", err, strings.TrimSpace(w.stderr.String()))
	}
	return w, nil
}

func (w *worker) kill(why int32) {
	w.why.CompareAndSwap(0, why)
	if w.cmd.Process != nil {
		_ = w.cmd.Process.Kill()
	}
}

func (p *Pool) forget(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.all, w)
}

// discard kills w and starts a replacement in the background.
func (p *Pool) discard(w *worker, why int32) {
	w.kill(why)
	p.forget(w)
	if p.closed.Load() {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		<-w.done
		for delay := 10 * time.Millisecond; !p.closed.Load(); delay = min(2*delay, 5*time.Second) {
			nw, err := p.start()
			if err == nil {
				p.put(nw)
				return
			}
			time.Sleep(delay)
		}
	}()
}

// Workers is the number of worker processes the pool keeps.
func (p *Pool) Workers() int { return p.cfg.Workers }

// Run evaluates a script in a worker. It implements engine.Sandbox; errors
// are *jsvm.Error.
func (p *Pool) Run(ctx context.Context, kind jsvm.Kind, src string, g jsvm.Globals, host jsvm.Host, lim jsvm.Limits) (any, error) {
	if lim.Timeout <= 0 {
		lim.Timeout = jsvm.DefaultTimeout
	}
	if lim.MaxOutput <= 0 {
		lim.MaxOutput = jsvm.DefaultMaxOutput
	}
	req := &message{T: "eval", Kind: kind, Src: src, TimeoutNS: int64(lim.Timeout),
		MaxOutput: lim.MaxOutput, MaxStack: lim.MaxCallStack, MaxLog: lim.MaxLogBytes, Ordered: lim.Ordered,
		Failure: g.Failure}
	var err error
	for _, f := range []struct {
		name string
		dst  *json.RawMessage
		v    any
	}{{"input", &req.Input, g.Input}, {"steps", &req.Steps, g.Steps}, {"run", &req.Run, g.Run}, {"env", &req.Env, g.Env}} {
		if *f.dst, err = json.Marshal(f.v); err != nil {
			return nil, &jsvm.Error{Code: jsvm.CodeInternal, Message: "sandbox: globals are not JSON: " + err.Error()}
		}
		if err := checkDepth(f.name, *f.dst); err != nil {
			return nil, err
		}
	}
	if g.Each != nil {
		i := g.Each.Index
		req.EachIndex = &i
		if req.Item, err = json.Marshal(g.Each.Item); err != nil {
			return nil, &jsvm.Error{Code: jsvm.CodeInternal, Message: "sandbox: item is not JSON: " + err.Error()}
		}
		if err := checkDepth("item", req.Item); err != nil {
			return nil, err
		}
	}
	for try := 1; ; try++ {
		start := time.Now()
		w, err := p.take(ctx, lim)
		if err != nil {
			return nil, err
		}
		// The deadline counts from when the worker starts, plus the grace for
		// the worker's own interrupt; the caller's context ends it too.
		timer := time.AfterFunc(lim.Timeout+p.cfg.Grace, func() { w.kill(killTimeout) })
		stopCtx := context.AfterFunc(ctx, func() { w.kill(killCanceled) })
		v, err := p.exchange(w, req, host, lim)
		timer.Stop()
		stopCtx()
		if err == nil {
			// The deadline or the caller's cancel may have killed the
			// worker as it answered: a dying worker is not reused.
			if why := w.why.Load(); why != 0 {
				p.discard(w, why)
			} else {
				p.put(w)
			}
			return v, nil
		}
		var je *jsvm.Error
		if errors.As(err, &je) && w.why.Load() == 0 {
			p.put(w) // the script failed, the worker is fine
			return nil, err
		}
		external := w.why.Load() == 0 // not killed by the pool
		p.discard(w, killBroken)
		// A worker that died before the request reached it, or that a
		// signal the pool did not send killed (the kernel's OOM killer, an
		// operator, a stop signal meant for the server; several workers at
		// once, maybe), says nothing of the script, which is evaluated
		// again in another worker, at most once per worker and one more:
		// evaluations are safe to repeat.
		if external && errors.Is(err, errNotSent) && try <= p.cfg.Workers && ctx.Err() == nil {
			continue
		}
		f := p.failure(w, err, lim, time.Since(start))
		if !external || f.Code != jsvm.CodeCrash || !signaled(w) || try > p.cfg.Workers || ctx.Err() != nil {
			return nil, f
		}
	}
}

// errNotSent wraps the error of a request that did not reach its worker
// (which had died): the script did not run there.
var errNotSent = errors.New("the request did not reach the worker")

// put makes w idle.
func (p *Pool) put(w *worker) {
	p.idleMu.Lock()
	p.idle = append(p.idle, w)
	p.idleMu.Unlock()
	p.ready <- struct{}{}
}

// take returns an idle worker that is still alive: one that died while
// idle is replaced, and the next one taken.
func (p *Pool) take(ctx context.Context, lim jsvm.Limits) (*worker, error) {
	for {
		select {
		case <-p.ready:
		case <-ctx.Done():
			return nil, ctxErr(ctx.Err(), lim)
		}
		p.idleMu.Lock()
		w := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		p.idleMu.Unlock()
		if p.closed.Load() {
			p.discard(w, killClosed)
			return nil, &jsvm.Error{Code: jsvm.CodeUnavailable, Message: "sandbox: pool closed"}
		}
		select {
		case <-w.done:
			p.discard(w, killBroken)
		default:
			return w, nil
		}
	}
}

// signaled reports whether w's process was ended by a signal.
func signaled(w *worker) bool {
	select {
	case <-w.done: // reaped: its state is set
	default:
		return false
	}
	st := w.cmd.ProcessState
	if st == nil {
		return false
	}
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// exchange sends req and serves the worker's requests until its answer.
// A *jsvm.Error is the script's; any other error is the worker's.
func (p *Pool) exchange(w *worker, req *message, host jsvm.Host, lim jsvm.Limits) (any, error) {
	if err := writeFrame(w.in, req); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotSent, err)
	}
	if err := w.in.Flush(); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotSent, err)
	}
	limit := 2*lim.MaxOutput + 64<<10
	var secretErr error
	var m message
	for {
		if err := readFrame(w.out, limit, &m); err != nil {
			return nil, err
		}
		switch m.T {
		case "secret":
			resp := &message{T: "secret"}
			if host == nil {
				resp.Err = fmt.Sprintf("secret %q is not defined: no secrets are available here", m.Name)
			} else if v, err := host.Resolve(m.Name, m.Scope); err != nil {
				secretErr, resp.Err = err, err.Error()
			} else {
				resp.Value = v
			}
			if err := p.reply(w, resp); err != nil {
				return nil, err
			}
		case "names":
			resp := &message{T: "names"}
			if host != nil {
				names, err := host.Names()
				if err != nil {
					resp.Err = err.Error()
				}
				resp.Names = names
			}
			if err := p.reply(w, resp); err != nil {
				return nil, err
			}
		case "log":
			if host != nil {
				host.Log(m.Level, m.Message)
			}
		case "mask":
			if host != nil {
				host.Mask(m.Value)
			}
		case "result":
			if lim.Ordered {
				v, err := ordered.DecodeNumbers(m.Result, number)
				if err != nil {
					return nil, fmt.Errorf("sandbox: bad result: %w", err)
				}
				return v, nil
			}
			return decodeResult(m.Result)
		case "error":
			if m.Error == nil {
				return nil, errors.New("sandbox: empty error")
			}
			if m.Error.Code == jsvm.CodeSecret && secretErr != nil {
				m.Error.Err = secretErr
			}
			return nil, m.Error
		default:
			return nil, fmt.Errorf("sandbox: unexpected message %q", m.T)
		}
	}
}

func (p *Pool) reply(w *worker, m *message) error {
	if err := writeFrame(w.in, m); err != nil {
		return err
	}
	return w.in.Flush()
}

// failure explains why a worker did not answer.
func (p *Pool) failure(w *worker, err error, lim jsvm.Limits, took time.Duration) *jsvm.Error {
	switch w.why.Load() {
	case killTimeout:
		return &jsvm.Error{Code: jsvm.CodeTimeout, Message: fmt.Sprintf("evaluation exceeded its deadline of %s; the sandbox worker was killed", lim.Timeout)}
	case killCanceled:
		return &jsvm.Error{Code: jsvm.CodeCanceled, Message: "evaluation canceled; the sandbox worker was killed", Err: context.Canceled}
	case killClosed:
		return &jsvm.Error{Code: jsvm.CodeUnavailable, Message: "sandbox: pool closed"}
	}
	// The worker died on its own: wait for its exit status and last words.
	select {
	case <-w.done:
	case <-time.After(2 * time.Second):
	}
	last := w.stderr.String()
	if outOfMemory(last, w.cmd.ProcessState) {
		return &jsvm.Error{Code: jsvm.CodeMemory, Message: fmt.Sprintf("evaluation exceeded the sandbox memory limit (%d MiB); the worker was killed", p.cfg.MemoryLimit>>20)}
	}
	if strings.Contains(last, "goroutine stack exceeds") {
		return &jsvm.Error{Code: jsvm.CodeStackOverflow, Message: "evaluation exceeded the sandbox stack limit; the worker was killed"}
	}
	status := "unknown status"
	if w.cmd.ProcessState != nil {
		status = w.cmd.ProcessState.String()
	}
	return &jsvm.Error{Code: jsvm.CodeCrash, Message: fmt.Sprintf("sandbox worker died (%s) after %s: %v", status, took.Round(time.Millisecond), err)}
}

// outOfMemory tells a worker that died of its memory limit: the Go runtime
// says so on stderr (under -race, mmap failures read as address space
// collisions; ThreadSanitizer exits with status 66).
func outOfMemory(stderr string, st *os.ProcessState) bool {
	for _, s := range []string{"out of memory", "cannot allocate memory", "address space collisions", "ThreadSanitizer failed to allocate", "ThreadSanitizer: Out of memory"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	if st != nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Exited() && ws.ExitStatus() == 66 {
			return true
		}
	}
	return false
}

func ctxErr(err error, lim jsvm.Limits) *jsvm.Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &jsvm.Error{Code: jsvm.CodeTimeout, Message: fmt.Sprintf("evaluation exceeded its deadline of %s waiting for a sandbox worker", lim.Timeout), Err: err}
	}
	return &jsvm.Error{Code: jsvm.CodeCanceled, Message: "evaluation canceled: " + err.Error(), Err: err}
}

// decodeResult decodes a JSON result into plain values, integers as int64.
func decodeResult(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("sandbox: bad result: %w", err)
	}
	return numbers(v), nil
}

// number converts a number of a result as in process: integers a
// float64 holds exactly are int64; -0 is not an integer there either (it
// stays a float64).
func number(x json.Number) any {
	if i, err := strconv.ParseInt(string(x), 10, 64); err == nil && i >= -1<<53 && i <= 1<<53 && (i != 0 || x[0] != '-') {
		return i
	}
	f, _ := x.Float64()
	return f
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return number(x)
	case []any:
		for i := range x {
			x[i] = numbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbers(x[k])
		}
	}
	return v
}

// tail keeps the first and the last max/2 bytes written to it: a Go
// runtime's fatal error comes first, its traceback after.
type tail struct {
	mu   sync.Mutex // guards head and buf
	max  int
	head []byte
	buf  []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(b)
	if room := t.max/2 - len(t.head); room > 0 {
		k := min(room, len(b))
		t.head = append(t.head, b[:k]...)
		b = b[k:]
	}
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max/2 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max/2:]...)
	}
	return n, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.head) + string(t.buf)
}

// MaxDepth is how deeply the data a script is given (input, steps, env,
// item) may nest: the worker decodes a request with encoding/json, which
// refuses documents nested deeper than 10,000 levels, and the request
// wraps each global in one more.
const MaxDepth = 9_999

// checkDepth refuses a global nested deeper than MaxDepth, naming it
// (a webhook's body of 10,000 levels, a service's deep response), so
// that the block fails with that rather than with a worker that cannot
// read its request.
func checkDepth(name string, b []byte) error {
	if len(b) <= 2*MaxDepth {
		return nil // too short to nest that deep
	}
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > MaxDepth {
				return &jsvm.Error{Code: jsvm.CodeInput,
					Message: fmt.Sprintf("%s is nested deeper than %d levels, more than a code block takes", name, MaxDepth)}
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}
