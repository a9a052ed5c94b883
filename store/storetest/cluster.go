package storetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hushflow/hushflow/store"
	"github.com/jackc/pgx/v5"
)

// Cluster is a PostgreSQL server of a test's own (initdb into a temporary
// directory, its own port), for tests that stop and restart the database:
// the shared server of the other tests is never touched.
type Cluster struct {
	t       testing.TB
	bin     string // the directory of initdb and pg_ctl
	dir     string // data directory
	port    int
	asUser  string // run the server as this user ("" = the current one)
	logFile string
}

// PrivatePostgres initdbs and starts a cluster for t, stopped and removed
// when the test ends. It skips the test when PostgreSQL's server programs
// are not installed (make test installs them; in CI their absence fails).
func PrivatePostgres(t testing.TB) *Cluster {
	t.Helper()
	bin := serverBinDir()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("initdb and pg_ctl not found (looked in /usr/lib/postgresql/*/bin and PATH): run the tests with `make test`")
		}
		t.Skip("initdb and pg_ctl not found: this test starts a PostgreSQL server of its own")
	}
	c := &Cluster{t: t, bin: bin}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: the cluster belongs to the
		// postgres user, which the server's package creates.
		if _, err := user.Lookup("postgres"); err != nil {
			t.Skip("running as root and there is no postgres user to run a private cluster")
		}
		c.asUser = "postgres"
	}
	dir, err := os.MkdirTemp("", "hushflow-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if c.asUser != "" {
		u, _ := user.Lookup(c.asUser)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	c.dir = filepath.Join(dir, "data")
	c.logFile = filepath.Join(dir, "server.log")
	c.port = freePort(t)
	if out, err := c.command("initdb", "-D", c.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.Start()
	t.Cleanup(func() { _ = c.command("pg_ctl", "stop", "-D", c.dir, "-m", "immediate", "-w").Run() })
	return c
}

func (c *Cluster) command(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, prog)
	if c.asUser == "" {
		return exec.Command(path, args...)
	}
	return exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
}

// URL is an administrative URL of the cluster (database postgres).
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Database creates a fresh database on the cluster and returns its config.
func (c *Cluster) Database(t testing.TB) store.Config {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.URL())
	if err != nil {
		t.Fatalf("connect to the private cluster: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE hushflow"); err != nil {
		t.Fatal(err)
	}
	return store.Config{DatabaseURL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/hushflow?sslmode=disable", c.port), DataDir: t.TempDir()}
}

// Stop stops the server (fast shutdown: connections are terminated, as in
// a restart or a failover) and waits until it is down.
func (c *Cluster) Stop() {
	c.t.Helper()
	if out, err := c.command("pg_ctl", "stop", "-D", c.dir, "-m", "fast", "-w").CombinedOutput(); err != nil {
		c.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", c.port, filepath.Dir(c.dir))
	cmd := c.command("pg_ctl", "start", "-D", c.dir, "-o", opts, "-l", c.logFile, "-w", "-t", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(c.logFile)
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// serverBinDir finds the newest /usr/lib/postgresql/N/bin holding initdb,
// else the directory of initdb on PATH.
func serverBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(filepath.Dir(binDir)), "/"))
	return n
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
