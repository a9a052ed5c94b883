package web_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBrowser runs the browser test web/e2e/run.mjs (playwright-core
// driving the system's headless Chromium) against a real `hushflow serve`
// over a fresh SQLite database: sign in, create a project secret, build a
// flow whose http block sends `Bearer ${secrets.X}` to a local server, run
// it, open the run inspector, and check that the secret's value is in no
// page, network response or console message. Screenshots go to
// test-output/screenshots. Without node, Chromium or web/e2e/node_modules
// the test is skipped, unless CI is set: then it fails.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	missing := func(why string) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("browser test prerequisites missing on CI: %s (run scripts/test.sh)", why)
		}
		t.Skipf("browser test skipped: %s (make test installs it)", why)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found")
	}
	chromium := os.Getenv("HUSHFLOW_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing("no Chromium at " + chromium)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "web/e2e/node_modules/playwright-core")); err != nil {
		missing("web/e2e/node_modules is not installed (cd web/e2e && npm ci)")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "hushflow")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/hushflow")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/hushflow: %v\n%s", err, out)
	}

	token := "hf_e2e_" + randomHex(t, 24)
	// The secret the browser plants: high entropy plus & < > " % \ so
	// that every escaping of it differs from the raw value.
	secret := "cnry_" + randomHex(t, 12) + `&<>"%\x'`
	srv := exec.CommandContext(ctx, bin, "serve")
	srv.Env = append(os.Environ(),
		"HUSHFLOW_ADDR=127.0.0.1:0",
		"HUSHFLOW_DATA_DIR="+filepath.Join(dir, "data"),
		"HUSHFLOW_ADMIN_TOKEN="+token,
		"HUSHFLOW_HTTP_ALLOW=127.0.0.1/32",
		"HUSHFLOW_RATE_LIMIT=-1",
		"HUSHFLOW_EXEC=on", // the exec block, for its log lines in the inspector
		"HUSHFLOW_DATABASE_URL=",
	)
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	srv.Stdout = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = srv.Process.Kill()
		}
	})
	addrRE := regexp.MustCompile(`msg="hushflow serving" addr=(http://[0-9.:]+)`)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			if m := addrRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	var url string
	select {
	case url = <-addr:
	case <-time.After(60 * time.Second):
		t.Fatalf("the server did not start:\n%s", logs.String())
	}

	shots := filepath.Join(root, "test-output", "screenshots")
	cmd := exec.CommandContext(ctx, node, filepath.Join(root, "web/e2e/run.mjs"))
	cmd.Env = append(os.Environ(),
		"HUSHFLOW_URL="+url,
		"HUSHFLOW_TOKEN="+token,
		"HUSHFLOW_CHROMIUM="+chromium,
		"HUSHFLOW_E2E_SECRET="+secret,
		"HUSHFLOW_SCREENSHOTS="+shots,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("web/e2e/run.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("browser test failed: %v (screenshots in %s)", err, shots)
	}
	// The server's own log holds no trace of the value either.
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), secret[:29]) {
		t.Fatal("the secret's value is in the server log")
	}
	for _, name := range []string{"editor.png", "secrets.png", "run-inspector.png", "editor-graph.png", "editor-graph-status.png", "run-inspector-iterations.png", "run-inspector-child.png"} {
		if st, err := os.Stat(filepath.Join(shots, name)); err != nil || st.Size() == 0 {
			t.Errorf("screenshot %s missing: %v", name, err)
		}
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)
