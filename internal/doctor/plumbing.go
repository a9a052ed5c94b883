package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hushflow/hushflow/flows"
)

// LogTap is the server log's writer: it passes every write on, and copies
// it to the captures of self-tests in progress, so that a self-test sees
// exactly what the server log received (after its redacting handler).
type LogTap struct {
	next io.Writer
	mu   sync.Mutex // guards caps
	caps map[*logCapture]bool
}

// NewLogTap returns a tap writing to next.
func NewLogTap(next io.Writer) *LogTap {
	return &LogTap{next: next, caps: map[*logCapture]bool{}}
}

// maxCapture bounds what one self-test keeps of the server log.
const maxCapture = 8 << 20

type logCapture struct {
	b strings.Builder
}

func (t *LogTap) Write(p []byte) (int, error) {
	n, err := t.next.Write(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.caps {
		if c.b.Len()+len(p) <= maxCapture {
			c.b.Write(p)
		}
	}
	return n, err
}

// capture starts copying the log; stop ends it and returns what was
// written meanwhile.
func (t *LogTap) capture() (stop func() string) {
	c := &logCapture{}
	t.mu.Lock()
	t.caps[c] = true
	t.mu.Unlock()
	return func() string {
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(t.caps, c)
		return c.b.String()
	}
}

// Egress routes the HTTP requests of runs: a request of a self-test's
// run to that self-test's echo listener goes to it directly; every other
// request goes to next (the egress policy's transport) unchanged. The
// decision is the server's: the listener's exact address and port are
// registered while the self-test runs, and a request reaches it only when
// the run that sends it belongs to the self-test's throwaway flow (looked
// up by the run id the executor puts in the request's context). The
// policy is not widened for anyone: another run asking for the same
// address goes through next, which refuses loopback unless
// HUSHFLOW_HTTP_ALLOW allows it.
type Egress struct {
	next   http.RoundTripper
	flowOf func(ctx context.Context, runID string) (flowID string, err error)
	mu     sync.RWMutex // guards echo
	echo   map[string]allowance
}

type allowance struct {
	flowID string
	rt     http.RoundTripper
}

// NewEgress returns the router over next; flowOf gives the flow of a run.
func NewEgress(next http.RoundTripper, flowOf func(ctx context.Context, runID string) (string, error)) *Egress {
	return &Egress{next: next, flowOf: flowOf, echo: map[string]allowance{}}
}

// RoundTrip implements http.RoundTripper.
func (e *Egress) RoundTrip(req *http.Request) (*http.Response, error) {
	e.mu.RLock()
	a, ok := e.echo[req.URL.Host]
	e.mu.RUnlock()
	if ok && req.URL.Scheme == "http" {
		if id := flows.RunID(req.Context()); id != "" {
			if f, err := e.flowOf(req.Context(), id); err == nil && f == a.flowID {
				return a.rt.RoundTrip(req)
			}
		}
	}
	return e.next.RoundTrip(req)
}

// allow lets the runs of flowID reach exactly hostport until release.
func (e *Egress) allow(hostport, flowID string) (release func()) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	rt := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != hostport {
				return nil, fmt.Errorf("egress refused: the self-test's route reaches only its echo listener")
			}
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives:     true,
		ResponseHeaderTimeout: 10 * time.Second,
	}
	e.mu.Lock()
	e.echo[hostport] = allowance{flowID: flowID, rt: rt}
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		delete(e.echo, hostport)
		e.mu.Unlock()
		rt.CloseIdleConnections()
	}
}

// echoHeader is the request header the echo listener sends back.
const echoHeader = "X-Hushflow-Doctor"

// echoServer is a loopback HTTP server that answers a request to its
// path with the request's body and its X-Hushflow-Doctor header: an
// outside service that reflects what it was sent.
type echoServer struct {
	ln   net.Listener
	srv  *http.Server
	path string
}

func startEcho() (*echoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start the echo listener: %w", err)
	}
	e := &echoServer{ln: ln, path: "/echo/" + randomToken(8)}
	mux := http.NewServeMux()
	mux.HandleFunc(e.path, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		w.Header().Set(echoHeader, r.Header.Get(echoHeader))
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		_, _ = w.Write(body)
	})
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return
		}
	}()
	return e, nil
}

func (e *echoServer) hostport() string { return e.ln.Addr().String() }
func (e *echoServer) url() string      { return "http://" + e.hostport() + e.path }
func (e *echoServer) close()           { _ = e.srv.Close() }
