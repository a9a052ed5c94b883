package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/internal/buildinfo"
	"github.com/hushflow/hushflow/store/storetest"
)

func TestVersion(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.SQLiteConfig(t))
	t.Setenv("HUSHFLOW_ADDR", s.URL)
	t.Setenv("HUSHFLOW_TOKEN", s.Token)
	bi := buildinfo.Get()
	platform := runtime.GOOS + "/" + runtime.GOARCH

	// The API tells its build to a valid token only.
	got := s.Must(200, "GET", "/api/v1/version", nil)
	if got["version"] != bi.Version || got["go"] != runtime.Version() || got["platform"] != platform {
		t.Fatalf("GET /api/v1/version = %v, want %+v", got, bi)
	}
	if r := s.DoToken("", "GET", "/api/v1/version", nil); r.Status != 401 || strings.Contains(string(r.Body), runtime.Version()) {
		t.Fatalf("GET /api/v1/version without a token: %d %s", r.Status, r.Body)
	}

	c := &flowCLI{t: t}
	out := c.must("version")
	for _, want := range []string{
		"version: " + bi.Version + "\n",
		"go: " + runtime.Version() + " " + platform + "\n",
		"server: " + bi.Version + ", " + runtime.Version() + " " + platform + " (" + s.URL + ")\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
	if v := c.must("--version"); v != out {
		t.Errorf("--version differs from version:\n%s\n---\n%s", v, out)
	}

	// Whatever the server says, or if it says nothing, the exit status is 0.
	closed := closedAddr(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"closed port", nil, []string{"version", "--addr", closed}, "server: unreachable (" + closed + "): "},
		{"closed port in HUSHFLOW_ADDR", map[string]string{"HUSHFLOW_ADDR": closed}, []string{"--version"}, "server: unreachable (" + closed + "): "},
		{"no token", map[string]string{"HUSHFLOW_TOKEN": ""}, []string{"version"}, "server: unknown (" + s.URL + "): it answers, and tells its version to a valid token only: HUSHFLOW_TOKEN is not set"},
		{"wrong token", map[string]string{"HUSHFLOW_TOKEN": "hf_wrong"}, []string{"version"}, "server: unknown (" + s.URL + "): "},
		// HUSHFLOW_ADDR as the README's quick start sets it: host:port.
		{"host:port", map[string]string{"HUSHFLOW_ADDR": strings.TrimPrefix(s.URL, "http://")}, []string{"version"}, "server: " + bi.Version + ", "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c.t = t
			out, err := c.run(tc.args...)
			if err != nil || !strings.Contains(out, tc.want) || !strings.HasPrefix(out, "version: "+bi.Version+"\n") {
				t.Fatalf("hushflow %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			}
		})
	}
}

// TestVersionOfARelease builds hushflow as a release is built, with the
// version in -ldflags and the VCS revision stamped.
func TestVersionOfARelease(t *testing.T) {
	apptest.SkipShort(t)
	bin := filepath.Join(t.TempDir(), "hushflow")
	// -buildvcs=auto: stamp the revision when the checkout has one that
	// Go finds (not in a git worktree, whose .git is a file), whatever
	// GOFLAGS says.
	build := exec.Command("go", "build", "-o", bin, "-buildvcs=auto",
		"-ldflags", "-X github.com/hushflow/hushflow/internal/buildinfo.version=v9.8.7-test", "./cmd/hushflow")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	closed := closedAddr(t)
	cmd := exec.Command(bin, "version")
	cmd.Env = append(os.Environ(), "HUSHFLOW_ADDR="+closed)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "version: v9.8.7-test\n") || !strings.Contains(string(out), "\nserver: unreachable ("+closed+")") {
		t.Fatalf("hushflow version: %v\n%s", err, out)
	}
	// The revision is the one Go stamped, if any.
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "\nrevision: "
	if _, rest, ok := strings.Cut(string(info), "vcs.revision="); ok {
		want += strings.Fields(rest)[0]
	} else if strings.Contains(string(out), want) {
		t.Fatalf("hushflow version shows a revision Go did not record:\n%s", out)
	}
	if want != "\nrevision: " && !strings.Contains(string(out), want) {
		t.Fatalf("hushflow version lacks %q:\n%s", want, out)
	}
}
