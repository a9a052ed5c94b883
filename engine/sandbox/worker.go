package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/dlclark/regexp2/v2"
	"golang.org/x/sys/unix"

	"github.com/hushflow/hushflow/engine/jsvm"
)

// Environment of a worker process, set by the pool.
const (
	EnvWorker = "HUSHFLOW_SANDBOX_WORKER" // "1" in a worker
	envMemory = "HUSHFLOW_SANDBOX_MEMORY" // memory limit in bytes
)

// WorkerMain is the sandbox worker: `hushflow sandbox-worker` calls it and
// exits with its result. It reads requests on stdin and answers on stdout
// until stdin closes. It sets its own limits first: an address-space
// rlimit of its current size plus the memory limit (so that an allocation
// over the limit fails and the Go runtime exits), a Go memory limit, no
// core dumps, and a match timeout for regular expressions.
func WorkerMain() int {
	limit, _ := strconv.ParseInt(os.Getenv(envMemory), 10, 64)
	if limit <= 0 {
		limit = DefaultMemoryLimit
	}
	if err := applyLimits(limit); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox worker:", err)
		return 1
	}
	// The server stops its workers (it closes their stdin, or kills them):
	// a stop signal sent to all of its processes at once (systemd's
	// KillMode=control-group, Ctrl-C in a terminal) must not end them
	// while the server drains its runs.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	stdin, stdout, err := frameFiles()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox worker:", err)
		return 1
	}
	in := bufio.NewReaderSize(stdin, 64<<10)
	out := bufio.NewWriterSize(stdout, 64<<10)
	w := &workerState{in: in, out: out, scripts: map[scriptKey]*jsvm.Script{}}
	// Every evaluation runs in a fresh runtime, prepared before the
	// request arrives: here, then after each reply.
	w.next = jsvm.NewRuntime()
	if err := w.send(&message{T: "ready"}); err != nil {
		return 1
	}
	for {
		var m message
		if err := readFrame(in, maxFrame, &m); err != nil {
			var bad badFrame
			if !errors.As(err, &bad) {
				return 0 // the server closed stdin
			}
			// A request that does not decode (checkDepth keeps the data
			// within encoding/json's depth) fails its evaluation, not
			// the worker.
			if err := w.sendError(&jsvm.Error{Code: jsvm.CodeInput, Message: bad.Error()}); err != nil {
				return 1
			}
			continue
		}
		if m.T != "eval" {
			fmt.Fprintln(os.Stderr, "sandbox worker: unexpected message", m.T)
			return 1
		}
		if err := w.eval(&m); err != nil {
			fmt.Fprintln(os.Stderr, "sandbox worker:", err)
			return 1
		}
		// The reply is sent: prepare the next evaluation's runtime while
		// the server reads it, off the next request's path.
		w.prepare()
	}
}

// frameFiles returns the pipes from and to the server, stdin and stdout,
// as copies of their descriptors in non-blocking mode, waited on through
// the Go runtime's poller (see rawPipe). Nothing but frames may reach the
// server's end: descriptor 1 becomes a copy of stderr. Descriptors that
// are not pipes (a worker started by hand, on a terminal, whose mode the
// shell shares) are read and written as they are.
func frameFiles() (in io.Reader, out io.Writer, err error) {
	if !isPipe(0) || !isPipe(1) {
		stdout := os.Stdout
		os.Stdout = os.Stderr
		return os.Stdin, stdout, nil
	}
	dup := func(fd int, name string) (*rawPipe, error) {
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := unix.SetNonblock(nfd, true); err != nil {
			unix.Close(nfd)
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rc, err := os.NewFile(uintptr(nfd), name).SyscallConn()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &rawPipe{rc}, nil
	}
	if in, err = dup(0, "stdin"); err != nil {
		return nil, nil, err
	}
	if out, err = dup(1, "stdout"); err != nil {
		return nil, nil, err
	}
	if err := unix.Dup2(2, 1); err != nil {
		return nil, nil, fmt.Errorf("stdout: %w", err)
	}
	return in, out, nil
}

// isPipe reports whether descriptor fd is a pipe.
func isPipe(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO
}

// rawPipe reads and writes a non-blocking pipe with raw system calls,
// and parks on the Go runtime's poller while the pipe is empty (or full).
// The worker is idle between requests, and its runtime then puts its
// monitor thread (sysmon) to sleep. A blocking read held the worker's
// P in a system call: the monitor polled, took the P back and woke a
// second thread for nothing. And any system call the runtime is told
// about (os.File's read and write) wakes the sleeping monitor, which then
// polls until the worker is idle again, at every request: about an
// eighth of the worker's CPU. A read or write of a non-blocking pipe
// returns at once, so the runtime need not know about it.
type rawPipe struct{ rc syscall.RawConn }

func (p *rawPipe) Read(b []byte) (n int, err error) {
	if len(b) == 0 {
		return 0, nil
	}
	werr := p.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch {
			case e == syscall.EAGAIN:
				return false
			case e == syscall.EINTR:
				continue
			case e != 0:
				err = e
			case r == 0:
				err = io.EOF
			default:
				n = int(r)
			}
			return true
		}
	})
	if err == nil {
		err = werr
	}
	return n, err
}

func (p *rawPipe) Write(b []byte) (n int, err error) {
	werr := p.rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
			switch {
			case e == syscall.EAGAIN:
				return false
			case e == syscall.EINTR:
				continue
			case e != 0:
				err = e
				return true
			}
			n += int(r)
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}

func applyLimits(limit int64) error {
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}); err != nil {
		return fmt.Errorf("rlimit core: %w", err)
	}
	size, err := vmSize()
	if err != nil {
		return err
	}
	as := uint64(size + limit)
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: as, Max: as}); err != nil {
		return fmt.Errorf("rlimit address space: %w", err)
	}
	debug.SetMemoryLimit(limit)
	return nil
}

// vmSize is the process's current virtual memory size in bytes.
func vmSize() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmSize in /proc/self/status")
}

type scriptKey struct {
	kind jsvm.Kind
	src  string
}

// maxWorkerScripts bounds the worker's compiled-script cache.
const maxWorkerScripts = 512

// maxPreparedScripts is how many of its last distinct scripts a worker
// instantiates ahead in the next runtime (jsvm.Runtime.Prepare: about
// 0.5-0.75 us of the worker's CPU each, between evaluations).
const maxPreparedScripts = 4

type workerState struct {
	in      *bufio.Reader
	out     *bufio.Writer
	scripts map[scriptKey]*jsvm.Script
	// next is the fresh runtime the next evaluation runs in; nil once an
	// evaluation has taken it.
	next *jsvm.Runtime
	// recent are the last distinct scripts run, the latest first; their
	// wrapper functions are instantiated ahead in next.
	recent []*jsvm.Script
}

// prepare makes sure a fresh runtime waits for the next evaluation, with
// the wrapper functions of the last scripts run instantiated in it
// (nothing of their source runs: see jsvm.Runtime.Prepare). A runtime runs
// one evaluation only: one run's globals and prototype changes are never
// visible to another.
func (w *workerState) prepare() {
	if w.next == nil {
		w.next = jsvm.NewRuntime()
		for _, s := range w.recent {
			w.next.Prepare(s)
		}
	}
}

// runtime hands the prepared runtime to one evaluation.
func (w *workerState) runtime() *jsvm.Runtime {
	rt := w.next
	if rt == nil {
		rt = jsvm.NewRuntime()
	}
	w.next = nil
	return rt
}

// ran puts s first among the recent scripts.
func (w *workerState) ran(s *jsvm.Script) {
	i := slices.Index(w.recent, s)
	switch {
	case i >= 0:
		copy(w.recent[1:i+1], w.recent[:i])
	case len(w.recent) < maxPreparedScripts:
		w.recent = append(w.recent, nil)
		copy(w.recent[1:], w.recent)
	default:
		copy(w.recent[1:], w.recent[:len(w.recent)-1])
	}
	w.recent[0] = s
}

func (w *workerState) send(m *message) error {
	if err := writeFrame(w.out, m); err != nil {
		return err
	}
	return w.out.Flush()
}

func (w *workerState) eval(m *message) error {
	k := scriptKey{m.Kind, m.Src}
	s, ok := w.scripts[k]
	if !ok {
		var err error
		s, err = jsvm.Compile(m.Kind, m.Src)
		if err != nil {
			return w.sendError(err)
		}
		if len(w.scripts) >= maxWorkerScripts {
			clear(w.scripts)
			// Keep the recent scripts: their functions are prepared.
			for _, r := range w.recent {
				w.scripts[scriptKey{r.Kind, r.Source}] = r
			}
		}
		w.scripts[k] = s
	}
	w.ran(s)
	// The server refuses data deeper than MaxDepth before it sends it;
	// a request that still holds some fails here, not in the builder.
	for i, d := range m.data() {
		if err := checkDepth(dataNames[i], *d); err != nil {
			return w.sendError(err)
		}
	}
	lim := jsvm.Limits{Timeout: time.Duration(m.TimeoutNS), MaxOutput: m.MaxOutput, MaxCallStack: m.MaxStack, MaxLogBytes: m.MaxLog, Ordered: m.Ordered}
	if lim.Timeout > 0 {
		regexp2.DefaultMatchTimeout = lim.Timeout
	}
	g := jsvm.Globals{Input: jsvm.JSON(m.Input), Steps: jsvm.JSON(m.Steps), Run: jsvm.JSON(m.Run), Env: jsvm.JSON(m.Env),
		Failure: m.Failure}
	if m.EachIndex != nil {
		g.Each = &jsvm.Each{Item: jsvm.JSON(m.Item), Index: *m.EachIndex}
	}
	h := &workerHost{w: w}
	v, err := s.RunIn(context.Background(), w.runtime(), g, h, lim)
	if h.err != nil {
		return h.err
	}
	if err != nil {
		return w.sendError(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return w.sendError(&jsvm.Error{Code: jsvm.CodeOutput, Message: "the result does not encode as JSON: " + err.Error()})
	}
	return w.send(&message{T: "result", Result: b})
}

func (w *workerState) sendError(err error) error {
	var e *jsvm.Error
	if !errors.As(err, &e) {
		e = &jsvm.Error{Code: jsvm.CodeInternal, Message: err.Error()}
	}
	return w.send(&message{T: "error", Error: e})
}

// workerHost asks the server for everything outside the script.
type workerHost struct {
	w   *workerState
	err error // a broken pipe: the worker exits
}

func (h *workerHost) ask(req *message) (*message, error) {
	if h.err != nil {
		return nil, h.err
	}
	if err := h.w.send(req); err != nil {
		h.err = err
		return nil, err
	}
	var resp message
	if err := readFrame(h.w.in, maxFrame, &resp); err != nil {
		h.err = err
		return nil, err
	}
	if resp.T != req.T {
		h.err = fmt.Errorf("expected %q, got %q", req.T, resp.T)
		return nil, h.err
	}
	return &resp, nil
}

func (h *workerHost) Resolve(name string, scope jsvm.Scope) (string, error) {
	resp, err := h.ask(&message{T: "secret", Name: name, Scope: scope})
	if err != nil {
		return "", err
	}
	if resp.Err != "" {
		return "", errors.New(resp.Err)
	}
	return resp.Value, nil
}

func (h *workerHost) Names() ([]string, error) {
	resp, err := h.ask(&message{T: "names"})
	if err != nil {
		return nil, err
	}
	if resp.Err != "" {
		return nil, errors.New(resp.Err)
	}
	return resp.Names, nil
}

func (h *workerHost) Mask(v string) {
	if h.err == nil {
		h.err = writeFrame(h.w.out, &message{T: "mask", Value: v})
	}
}

func (h *workerHost) Log(level, msg string) {
	if h.err == nil {
		h.err = writeFrame(h.w.out, &message{T: "log", Level: level, Message: msg})
	}
}
