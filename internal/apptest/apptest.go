// Package apptest starts a real Hushflow server (internal/app) for tests:
// real database (SQLite, or a fresh PostgreSQL database), real sandbox
// processes, real HTTP. Test packages that use it call apptest.Main from
// their TestMain, so that the test binary can serve as the sandbox worker.
package apptest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	execblock "github.com/hushflow/hushflow/blocks/exec"
	"github.com/hushflow/hushflow/engine/sandbox"
	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
)

// Main runs the tests, or a sandbox worker when the test binary was
// started as one.
func Main(m interface{ Run() int }) {
	if os.Getenv(sandbox.EnvWorker) == "1" {
		os.Exit(sandbox.WorkerMain())
	}
	if os.Getenv(execblock.EnvLauncher) == "1" {
		os.Exit(execblock.LauncherMain())
	}
	code := m.Run()
	atExit.Lock()
	for _, f := range atExit.fs {
		f()
	}
	atExit.Unlock()
	os.Exit(code)
}

var atExit struct {
	sync.Mutex // guards fs
	fs         []func()
}

// AtExit registers f to run after all tests of the package (removing
// files shared by several tests, such as a built binary).
func AtExit(f func()) {
	atExit.Lock()
	defer atExit.Unlock()
	atExit.fs = append(atExit.fs, f)
}

// Server is a running Hushflow server.
type Server struct {
	t     testing.TB
	URL   string
	Token string
	App   *app.App
	Logs  *SyncBuffer // everything the server logged
	stop  func()
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes.
type SyncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Each runs f with a server on every database backend.
func Each(t *testing.T, f func(t *testing.T, s *Server), opts ...func(*app.Config)) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, Start(t, b.Config(t), opts...)) })
	}
}

// Start starts a server over the database of dbc with loopback allowed
// for HTTP blocks; it stops when the test ends.
func Start(t testing.TB, dbc store.Config, opts ...func(*app.Config)) *Server {
	t.Helper()
	logs := &SyncBuffer{}
	cfg := app.Config{
		DataDir: dbc.DataDir, DatabaseURL: dbc.DatabaseURL, LogOutput: logs, LogFormat: "json",
		HTTPAllow: "127.0.0.1/32,::1/128", Workers: 8, SandboxWorkers: 2,
		// Stopping a test server releases its runs in progress soon.
		ShutdownGrace: 2 * time.Second,
		AdminToken:    "hf_test_admin_" + strings.ReplaceAll(t.Name(), "/", "_"),
	}
	if dbc.DatabaseURL != "" {
		cfg.MasterKey = "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	}
	cfg.SandboxPath = os.Args[0]
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	srv := &Server{t: t, URL: "http://" + ln.Addr().String(), Token: cfg.AdminToken, App: a, Logs: logs}
	srv.stop = sync.OnceFunc(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop")
		}
		a.Close()
	})
	t.Cleanup(srv.stop)
	return srv
}

// Stop shuts the server down (its workers too) before the test ends, for
// tests that start another server on the same database.
func (s *Server) Stop() { s.stop() }

// Clock is a clock for app.Config.Now that tests move forward (to end a
// durable wait without waiting for it). It starts at the real time and
// runs with it.
type Clock struct {
	mu  sync.Mutex // guards off
	off time.Duration
}

// Now is the real time plus what Advance added.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// Response is an HTTP response, read whole.
type Response struct {
	Status int
	Body   []byte
	Header http.Header
}

// JSON decodes the body as an object.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %.300q", r.Status, r.Body)
	}
	return m
}

// Do sends a request with the admin token; body is JSON-encoded unless it
// is a string or []byte.
func (s *Server) Do(method, path string, body any) Response {
	return s.DoToken(s.Token, method, path, body)
}

// DoToken sends a request with token.
func (s *Server) DoToken(token, method, path string, body any) Response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: data, Header: resp.Header}
}

// Must sends a request and fails the test unless the status is want.
func (s *Server) Must(want int, method, path string, body any) map[string]any {
	s.t.Helper()
	r := s.Do(method, path, body)
	if r.Status != want {
		s.t.Fatalf("%s %s: status %d, want %d: %.500s", method, path, r.Status, want, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.JSON(s.t)
}

// Forms returns the forms of a secret value that must never appear in
// any output: the value, its base64 (std, URL, raw), hex, URL-escaped,
// JSON-escaped and HTML-escaped forms. Forms shorter than 8 bytes are
// left out (they would match by chance).
func Forms(v string) []string {
	j, _ := json.Marshal(v)
	forms := []string{v,
		base64.StdEncoding.EncodeToString([]byte(v)), base64.URLEncoding.EncodeToString([]byte(v)),
		base64.RawStdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)),
		hex.EncodeToString([]byte(v)), strings.ToUpper(hex.EncodeToString([]byte(v))),
		url.QueryEscape(v), url.PathEscape(v), string(j[1 : len(j)-1]), html.EscapeString(v)}
	var out []string
	seen := map[string]bool{}
	for _, f := range forms {
		if len(f) >= 8 && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// AssertAbsent fails the test if any form of any value occurs in text;
// where names the surface.
func AssertAbsent(t testing.TB, where, text string, values ...string) {
	t.Helper()
	for _, v := range values {
		for _, f := range Forms(v) {
			if i := strings.Index(text, f); i >= 0 {
				lo, hi := max(0, i-80), min(len(text), i+len(f)+80)
				t.Errorf("%s contains a secret form %q: ...%s...", where, f[:min(len(f), 12)]+"…", strings.ReplaceAll(text[lo:hi], f, "<<LEAK>>"))
				return
			}
		}
	}
}

// DumpTables returns every row of every table of db as text.
func DumpTables(t testing.TB, db *store.DB) string {
	t.Helper()
	var tables []string
	var err error
	if db.Dialect == store.Postgres {
		err = db.Raw("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").Scan(&tables).Error
	} else {
		err = db.Raw("SELECT name FROM sqlite_master WHERE type = 'table'").Scan(&tables).Error
	}
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tb := range tables {
		rows, err := db.Raw(fmt.Sprintf("SELECT * FROM %q", tb)).Rows()
		if err != nil {
			t.Fatalf("dump %s: %v", tb, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s:", tb)
			for _, v := range vals {
				switch x := v.(type) {
				case []byte:
					fmt.Fprintf(&b, " %s", x)
				default:
					fmt.Fprintf(&b, " %v", x)
				}
			}
			b.WriteByte('\n')
		}
		rows.Close()
	}
	return b.String()
}

// SkipShort skips t in -short mode. A test that starts whole servers
// (Start, Each: the app on a fresh database with its sandbox worker
// processes) calls it first when it takes a second or more, so that
// `go test -short ./...` stays the inner loop; make test runs everything.
func SkipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Hushflow servers with their sandbox workers: skipped in -short mode")
	}
}
