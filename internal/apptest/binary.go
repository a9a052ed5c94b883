package apptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var binary struct {
	once sync.Once
	path string
	err  error
}

// Binary builds ./cmd/hushflow once per test binary, for tests that run
// real `hushflow serve` processes (killed, restarted, several replicas).
// The file is removed when the package's tests end (see Main).
func Binary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "hushflow-bin-")
		if err != nil {
			binary.err = err
			return
		}
		AtExit(func() { os.RemoveAll(dir) })
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		binary.path = filepath.Join(dir, "hushflow")
		cmd := exec.Command("go", "build", "-o", binary.path, "./cmd/hushflow")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("go build ./cmd/hushflow: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}
