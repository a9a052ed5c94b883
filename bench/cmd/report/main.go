// Command report runs Hushflow's benchmarks beside their baselines, prints
// a summary table and writes it at the top of docs/performance.md (between
// the markers <!-- bench:begin --> and <!-- bench:end -->; the sections the
// parts' owners wrote below are kept). `make bench` runs it.
//
// Usage (from anywhere in the repository):
//
//	go run ./bench/cmd/report [-o docs/performance.md] [-n]
//
// The PostgreSQL figures need HUSHFLOW_TEST_DATABASE_URL (make bench
// provides a local server as make test does); without it they are marked
// as not run. Each figure and its baseline come from the same `go test`
// run, so a busy machine slows both.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// group is one `go test` invocation.
type group struct {
	pkg, pattern string
	args         []string
	// run and env run a test instead (a benchmark written as an
	// env-gated test that logs its figures; see parseTest).
	run string
	env []string
	// as names the test's figures in the results (default: the test).
	as string
}

// groups lists the benchmarks the table needs, with run lengths chosen to
// keep `make bench` within a few minutes on two cores.
var groups = []group{
	{"./redact/", `^BenchmarkRedact$/^values=(10|1000|10000)$/^(redact|replacer|copy|writer|writer-lines|dump)$`, []string{"-cpu", "1", "-benchtime", "8x"}, "", nil, ""},
	{"./redact/", `^BenchmarkBuild$/^values=10000$`, []string{"-benchtime", "3x", "-count", "3"}, "", nil, ""},
	{"./redact/", `^BenchmarkDeriver$/^(find|redact)-32MiB$`, []string{"-cpu", "1", "-benchtime", "8x"}, "", nil, ""},
	{"./redact/", `^BenchmarkDeriver$/^(find|redact)-log$`, []string{"-cpu", "1", "-benchtime", "0.3s", "-count", "3"}, "", nil, ""},
	{"./flows/executor/", `^BenchmarkCodeBlock$`, []string{"-cpu", "1", "-benchtime", "2000x", "-count", "3"}, "", nil, ""},
	{"./engine/", `^Benchmark(Template|Condition)$`, []string{"-cpu", "1", "-benchtime", "0.3s", "-count", "5"}, "", nil, ""},
	{"./engine/jsvm/", `^BenchmarkRunInPrepared(Fn)?CodeJSON$`, []string{"-cpu", "1", "-benchtime", "0.3s", "-count", "5"}, "", nil, ""},
	{"./engine/sandbox/", `^Benchmark(SandboxTrivialCode|SandboxFieldWithCall|InProcessTrivialCode)$`, []string{"-benchtime", "0.5s", "-count", "3"}, "", nil, ""},
	{"./secrets/", `^Benchmark(Resolve|Open)$`, []string{"-benchtime", "0.3s"}, "", nil, ""},
	{"./bench/", `^BenchmarkFlow$`, []string{"-benchtime", "1s", "-count", "2"}, "", nil, ""},
	{"./bench/", `^BenchmarkRunThroughput$`, []string{"-benchtime", "300x"}, "", nil, ""},
	{"./bench/", `^BenchmarkLoop$`, []string{"-benchtime", "5x"}, "", nil, ""},
	// CPU of a `hushflow serve` process tree per run, at a low offered
	// rate beside saturation, and idle (flows/bench_test.go). Before the
	// throughput tests: after their 18,000 runs PostgreSQL's checkpointer
	// and autovacuum work on for minutes on the same two CPUs (measured
	// after them: 26% more CPU per run at 30 runs/s on PostgreSQL, 9% on
	// SQLite, than the same test alone a few minutes later).
	// On SQLite it offers the same runs, at the same moments, to the floor
	// (bench/floor: what a run's I/O alone costs on this machine).
	{"./flows/", "", []string{"-v"}, "^TestFlowCPU$", []string{"HUSHFLOW_BENCH=1"}, "TestFlowCPU"},
	// The flows owners' throughput test (flows/bench_test.go), as fast as
	// the clients can queue (capacity) and offered 1,000 runs/s (latency at
	// the target rate); its log lines (statements per run) are passed
	// through.
	{"./flows/", "", []string{"-v"}, "^TestFlowThroughput$", []string{"HUSHFLOW_BENCH=1", "HUSHFLOW_BENCH_RUNS=8000"}, "TestFlowThroughput"},
	{"./flows/", "", []string{"-v"}, "^TestFlowThroughput$", []string{"HUSHFLOW_BENCH=1", "HUSHFLOW_BENCH_RUNS=10000", "HUSHFLOW_BENCH_RATE=1000"}, "TestFlowThroughput/1000"},
}

// cpuProbe measures the CPU time per operation of one benchmark, for
// the figures with an absolute target: on a busy machine wall time
// includes waiting for a CPU. The test binary runs the benchmark for 1
// and for n iterations; the difference of the process's CPU time, divided
// by n-1, is the CPU time of an operation (setup and start-up cancel
// out).
type cpuProbe struct {
	pkg, pattern, name string
	n                  int
}

var cpuProbes = []cpuProbe{
	{"./engine/", `^BenchmarkTemplate$/^engine-fast-run$`, "BenchmarkTemplate/engine-fast-run", 3_000_000},
	{"./engine/", `^BenchmarkTemplate$/^baseline-fresh-goja$`, "BenchmarkTemplate/baseline-fresh-goja", 150_000},
	{"./engine/", `^BenchmarkCondition$/^engine-expr$`, "BenchmarkCondition/engine-expr", 2_000_000},
}

// row is one line of the table: a figure beside its baseline.
type row struct {
	part, figure, bench string
	baseline, baseBench string // empty: no baseline
	unit                string // ns/op, or a rate (higher is better)
	target              string
	// ok checks the target (nil: none); v and b are the figure's and the
	// baseline's values, ratio how many times better the figure is.
	ok func(v, b, ratio float64) bool
}

func atLeast(x float64) func(v, b, r float64) bool {
	return func(_, _, r float64) bool { return r >= x }
}

var rows = []row{
	// Engine (issue 4): the targets of docs/performance.md, "Engine".
	{"engine", "template `Bearer ${secrets.API_TOKEN}`, fast path", "BenchmarkTemplate/engine-fast-run",
		"fresh goja runtime + RunString", "BenchmarkTemplate/baseline-fresh-goja", "ns/op", "≥ 25×, < 200 ns",
		func(v, _, r float64) bool { return r >= 25 && v < 200 }},
	{"engine", "template, fast path", "BenchmarkTemplate/engine-fast-run",
		"warm goja runtime, compiled program", "BenchmarkTemplate/baseline-warm-goja", "ns/op", "", nil},
	{"engine", "template, fast path", "BenchmarkTemplate/engine-fast-run",
		"expr, reused VM", "BenchmarkTemplate/baseline-expr-vm", "ns/op", "", nil},
	{"engine", "template, fast path", "BenchmarkTemplate/engine-fast-run",
		"hand-written Go (same resolver, read report, concatenation)", "BenchmarkTemplate/baseline-go", "ns/op", "within 3× (≥ 0.33×)", atLeast(1.0 / 3)},
	{"engine", "trivial code block through the sandbox pool, end to end", "BenchmarkSandboxTrivialCode",
		"the same in process (no isolation)", "BenchmarkInProcessTrivialCode", "ns/op", "< 200 µs",
		func(v, _, _ float64) bool { return v < 200e3 }},
	{"engine", "field with a call through the sandbox pool, end to end", "BenchmarkSandboxFieldWithCall",
		"", "", "ns/op", "< 200 µs", func(v, _, _ float64) bool { return v < 200e3 }},
	{"engine", "goja's own time in a sandbox worker, trivial code block it ran recently", "BenchmarkRunInPreparedFnCodeJSON",
		"a script it did not run recently", "BenchmarkRunInPreparedCodeJSON", "ns/eval", "< 1.5 µs",
		func(v, _, _ float64) bool { return v < 1500 }},
	{"engine", "condition `steps.call.output.status == 200` (expr)", "BenchmarkCondition/engine-expr",
		"the same condition through goja", "BenchmarkCondition/engine-js-goja", "ns/op", "< 300 ns",
		func(v, _, _ float64) bool { return v < 300 }},
	{"engine", "condition (expr)", "BenchmarkCondition/engine-expr",
		"fresh goja runtime + RunString", "BenchmarkCondition/baseline-fresh-goja", "ns/op", "", nil},
	// Redaction (issue 5): one pass for any number of values.
	{"redact", "Redactor, 10 values (all forms), 32 MiB log", "BenchmarkRedact/values=10/redact",
		"strings.Replacer, same forms", "BenchmarkRedact/values=10/replacer", "cpuMB/s", "", nil},
	{"redact", "Redactor, 1,000 values", "BenchmarkRedact/values=1000/redact",
		"strings.Replacer, same forms", "BenchmarkRedact/values=1000/replacer", "cpuMB/s", "≥ 20×, ≥ 2,000 MB/s",
		func(v, _, r float64) bool { return r >= 20 && v >= 2000 }},
	{"redact", "Redactor, 1,000 values", "BenchmarkRedact/values=1000/redact",
		"copy of the same buffer (memory bandwidth)", "BenchmarkRedact/values=1000/copy", "cpuMB/s", "within 12× of copy (≥ 0.083×)", atLeast(1.0 / 12)},
	{"redact", "Redactor, 10,000 values", "BenchmarkRedact/values=10000/redact",
		"strings.Replacer, same forms", "BenchmarkRedact/values=10000/replacer", "cpuMB/s", "≥ 1,000 MB/s",
		func(v, _, _ float64) bool { return v >= 1000 }},
	{"redact", "streaming Writer, 1,000 values", "BenchmarkRedact/values=1000/writer",
		"Redactor.String on the whole buffer", "BenchmarkRedact/values=1000/redact", "cpuMB/s", "within 1.5× (≥ 0.67×)", atLeast(1 / 1.5)},
	{"redact", "streaming Writer, 1,000 values, one log line (about 150 bytes) per Write", "BenchmarkRedact/values=1000/writer-lines",
		"Redactor.String on the whole buffer", "BenchmarkRedact/values=1000/redact", "cpuMB/s", "within 2× (≥ 0.5×)", atLeast(0.5)},
	{"redact", "streaming Writer, 10,000 values, one log line per Write", "BenchmarkRedact/values=10000/writer-lines",
		"Redactor.String on the whole buffer", "BenchmarkRedact/values=10000/redact", "cpuMB/s", "within 2× (≥ 0.5×)", atLeast(0.5)},
	{"redact", "Redactor, 1,000 values, a base64 dump in 76-column lines (every line break tried for forms it cuts)", "BenchmarkRedact/values=1000/dump",
		"Redactor, 1,000 values, log text", "BenchmarkRedact/values=1000/redact", "cpuMB/s", "", nil},
	{"redact", "Redactor, 10,000 values", "BenchmarkRedact/values=10000/redact",
		"Redactor, 10 values", "BenchmarkRedact/values=10/redact", "cpuMB/s", "", nil},
	{"redact", "building the matcher for 10,000 values (all forms)", "BenchmarkBuild/values=10000",
		"", "", "ns/op", "< 50 ms", func(v, _, _ float64) bool { return v < 50e6 }},
	// Derived values (issue 20 item 1): what a script computes from a
	// secret, found where it leaves the script.
	{"derived", "code block on secrets.API_TOKEN that logs a 12-character slice and returns it upper-cased, both found and masked (in process, 20 secrets, events redacted)", "BenchmarkCodeBlock/derive/secret",
		"the same block on input.token (no secret read)", "BenchmarkCodeBlock/derive/no-secret", "ns/op", "", nil},
	{"derived", "the same block on secrets.API_TOKEN without looking for derived values (before issue 20: the slice shows in clear)", "BenchmarkCodeBlock/derive/secret-no-derived",
		"the same block on input.token (no secret read)", "BenchmarkCodeBlock/derive/no-secret", "ns/op", "", nil},
	{"derived", "code block that uses secrets.API_TOKEN without deriving ('Bearer ' + it), derived values looked for", "BenchmarkCodeBlock/use/secret",
		"the same without looking (before issue 20)", "BenchmarkCodeBlock/use/secret-no-derived", "ns/op", "", nil},
	{"derived", "the same block on input.token (no secret read: nothing looked for)", "BenchmarkCodeBlock/use/no-secret",
		"the same block on secrets.API_TOKEN, derived values looked for", "BenchmarkCodeBlock/use/secret", "ns/op", "", nil},
	{"derived", "Deriver.Find, one source, 32 MiB log without a derived value", "BenchmarkDeriver/find-32MiB",
		"Redactor (11 values) on the same text", "BenchmarkDeriver/redact-32MiB", "cpuMB/s", "", nil},
	{"derived", "Deriver.Find, one source, a 150-byte log line", "BenchmarkDeriver/find-log",
		"Redactor.String (11 values) on the same line", "BenchmarkDeriver/redact-log", "ns/op", "", nil},
	// Secrets: the run's cache against the database path.
	{"secrets", "warm resolve (run cache), PostgreSQL", "BenchmarkResolve/postgres/warm",
		"cold resolve (query, decrypt, audit)", "BenchmarkResolve/postgres/cold", "ns/op", "", nil},
	{"secrets", "warm resolve, new block (one audit insert), PostgreSQL", "BenchmarkResolve/postgres/warm_new_block",
		"cold resolve", "BenchmarkResolve/postgres/cold", "ns/op", "", nil},
	{"secrets", "warm resolve (run cache), SQLite", "BenchmarkResolve/sqlite/warm",
		"cold resolve", "BenchmarkResolve/sqlite/cold", "ns/op", "", nil},
	{"secrets", "decrypt only (unwrap + open)", "BenchmarkOpen",
		"cold resolve, PostgreSQL", "BenchmarkResolve/postgres/cold", "ns/op", "", nil},
	// End to end.
	{"flows", "3-block flow, engine + redact (20 secrets), in process", "BenchmarkFlow/engine",
		"naive: fresh goja per expression, strings.Replacer", "BenchmarkFlow/naive", "runs/s", "> 1×", atLeast(1)},
	{"flows", "the same, expressions only (no redaction)", "BenchmarkFlow/expressions/engine",
		"naive: fresh goja per expression", "BenchmarkFlow/expressions/naive", "runs/s", "", nil},
	{"flows", "end to end on PostgreSQL, 3 blocks with an HTTP call, 20 secrets, 4×2 clients waiting (bench/)", "BenchmarkRunThroughput/postgres",
		"", "", "runs/s", "", nil},
	{"flows", "a loop: one run whose http block with each makes 100 calls, 10 at a time, PostgreSQL (HTTP calls per second)", "BenchmarkLoop/postgres/each",
		"the same 100 calls as 100 runs of a one-block flow, 10 clients at once", "BenchmarkLoop/postgres/runs", "items/s", "", nil},
	{"flows", "end to end on PostgreSQL, 8,000 runs queued as fast as 16 clients can (flows/bench_test.go; the clients' own load and the backlog included)", "TestFlowThroughput",
		"", "", "runs/s", "", nil},
	{"flows", "the same flow offered 1,000 runs/s for 10 s: runs/s end to end", "TestFlowThroughput/1000",
		"", "", "runs/s", "keeps up with 1,000 runs/s (≥ 990)", func(v, _, _ float64) bool { return v >= 990 }},
	{"flows", "the same at 1,000 runs/s: p99 queue-to-finish latency", "TestFlowThroughput/1000",
		"", "", "p99-ns", "< 1 s", func(v, _, _ float64) bool { return v < 1e9 }},
	{"flows", "webhook → http (secret header) → code, CPU of the `serve` process tree per run, offered 30 runs/s for 20 s, PostgreSQL", "TestFlowCPU/postgres/30",
		"the same saturated", "TestFlowCPU/postgres/sat", "cpu-ms/run", "≤ 2 ms (issue 21)", func(v, _, _ float64) bool { return v <= 2 }},
	{"flows", "the same on SQLite", "TestFlowCPU/sqlite/30",
		"the same saturated", "TestFlowCPU/sqlite/sat", "cpu-ms/run", "≤ 2 ms (issue 21)", func(v, _, _ float64) bool { return v <= 2 }},
	{"flows", "the same at 30 runs/s: p99 queue-to-finish latency, PostgreSQL", "TestFlowCPU/postgres/30",
		"", "", "p99-ns", "≤ 20 ms (issue 21)", func(v, _, _ float64) bool { return v <= 20e6 }},
	{"flows", "the same on SQLite", "TestFlowCPU/sqlite/30",
		"", "", "p99-ns", "≤ 20 ms (issue 21)", func(v, _, _ float64) bool { return v <= 20e6 }},
	{"flows", "the same on SQLite, against the floor: a bare Go server doing a run's I/O alone (its insert, a GET, three more commits; bench/floor)", "TestFlowCPU/sqlite/30",
		"the floor, offered the same runs at the same moments", "floor/sqlite", "cpu-ms/run", "", nil},
	{"flows", "CPU of an idle `serve` process tree, PostgreSQL", "TestFlowCPU/postgres/idle",
		"", "", "cpu-ms-per-s", "≤ 5 ms/s (issue 21)", func(v, _, _ float64) bool { return v <= 5 }},
	{"flows", "the same on SQLite", "TestFlowCPU/sqlite/idle",
		"", "", "cpu-ms-per-s", "≤ 5 ms/s (issue 21)", func(v, _, _ float64) bool { return v <= 5 }},
}

const (
	beginMarker = "<!-- bench:begin -->"
	endMarker   = "<!-- bench:end -->"
)

func main() {
	out := flag.String("o", "docs/performance.md", "the file whose summary table is regenerated (relative to the repository root)")
	dry := flag.Bool("n", false, "print the table only; do not write the file")
	flag.Parse()
	root, err := repoRoot()
	if err != nil {
		fail(err)
	}
	machine := describeMachine()
	fmt.Fprintf(os.Stderr, "==> machine: %s\n", machine)
	results := map[string]map[string]float64{}
	var failed []string
	start := time.Now()
	for _, g := range groups {
		args := []string{"test", "-run", "^$", "-bench", g.pattern, "-benchmem"}
		if g.run != "" {
			args = []string{"test", "-count=1", "-run", g.run}
		}
		args = append(args, g.args...)
		args = append(args, g.pkg)
		fmt.Fprintf(os.Stderr, "==> go %s\n", strings.Join(args, " "))
		cmd := exec.Command(goCmd(), args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), g.env...)
		var buf bytes.Buffer
		cmd.Stdout = io.MultiWriter(&buf, &benchLines{w: os.Stderr})
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", g.pkg, err))
			fmt.Fprintf(os.Stderr, "    %s failed: %v\n%s", g.pkg, err, lastLines(buf.String(), 20))
		}
		parse(buf.String(), results)
		as := g.as
		if as == "" {
			as = strings.Trim(g.run, "^$")
		}
		parseTest(buf.String(), results, as)
	}
	if err := probeCPU(root, results); err != nil {
		fmt.Fprintf(os.Stderr, "    CPU time probes: %v\n", err)
	}
	machine += fmt.Sprintf("; load average after the run: %s; took %s", loadavg(), time.Since(start).Round(time.Second))
	table, missed := render(results, machine)
	fmt.Println(table)
	if len(failed) > 0 {
		fail(fmt.Errorf("benchmarks failed (%s not written): %s", *out, strings.Join(failed, "; ")))
	}
	if !*dry {
		path := filepath.Join(root, *out)
		if err := writeSection(path, table); err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "==> wrote %s\n", *out)
	}
	if missed > 0 {
		fmt.Fprintf(os.Stderr, "==> %d figure(s) missed their target (marked ✗)\n", missed)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench report:", err)
	os.Exit(1)
}

func goCmd() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// repoRoot is the directory of the main module's go.mod.
func repoRoot() (string, error) {
	b, err := exec.Command(goCmd(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run from inside the hushflow repository")
	}
	return filepath.Dir(mod), nil
}

// benchLines passes benchmark result lines through (progress for people);
// the rest of go test's output is kept for errors only. go test writes a
// result line in two writes (the name, then the figures): lines are
// passed whole.
type benchLines struct {
	w    io.Writer
	line []byte
}

func (b *benchLines) Write(p []byte) (int, error) {
	b.line = append(b.line, p...)
	for {
		i := bytes.IndexByte(b.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		l := string(b.line[:i+1])
		b.line = b.line[i+1:]
		if strings.HasPrefix(l, "Benchmark") || strings.HasPrefix(l, "ok") || strings.HasPrefix(l, "FAIL") ||
			strings.HasPrefix(l, "---") || strings.HasPrefix(l, "    ") {
			io.WriteString(b.w, l)
		}
	}
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n") + "\n"
}

var (
	resultRe = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(\d.*)$`)
	nameRe   = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s*$`)
	tailRe   = regexp.MustCompile(`^\s*(\d+)\s+(\d.*\s(?:ns/op).*)$`)
)

// parse reads `go test -bench` output into results (name without the
// -GOMAXPROCS suffix -> unit -> value), keeping the best of repeated runs.
// A result line split by other output (the name, then the figures on a
// later line) is joined.
func parse(out string, results map[string]map[string]float64) {
	pending := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var name, fields string
		if m := resultRe.FindStringSubmatch(line); m != nil {
			name, fields = m[1], m[3]
		} else if m := nameRe.FindStringSubmatch(line); m != nil {
			pending = m[1]
			continue
		} else if m := tailRe.FindStringSubmatch(line); m != nil && pending != "" {
			name, fields = pending, m[2]
		} else {
			continue
		}
		pending = ""
		f := strings.Fields(fields)
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			unit := f[i+1]
			if results[name] == nil {
				results[name] = map[string]float64{}
			}
			old, seen := results[name][unit]
			if !seen || better(unit, v, old) {
				results[name][unit] = v
			}
		}
	}
}

var (
	floorRe      = regexp.MustCompile(`the floor beside it on (\w+) .*: ([\d.]+) ms per run at 30 runs/s`)
	cpuRe        = regexp.MustCompile(`CPU of the serve process tree on (\w+): ([\d.]+) ms per run at 30 runs/s .*p99 (\S+) queue-to-finish.*; ([\d.]+) ms per run saturated .*; idle ([\d.]+) ms of CPU per second`)
	throughputRe = regexp.MustCompile(`(\d+(?:\.\d+)?) runs/s end to end`)
	p99Re        = regexp.MustCompile(`queue-to-finish latency: .*p99 (\S+?),`)
)

// parseTest reads the figures TestFlowThroughput logs ("N runs/s end to
// end", "queue-to-finish latency: ... p99 D,") and TestFlowCPU's (CPU per
// run at 30 runs/s with its p99, saturated and idle; the floor beside it).
func parseTest(out string, results map[string]map[string]float64, as string) {
	for _, m := range floorRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		results["floor/"+m[1]] = map[string]float64{"cpu-ms/run": v}
	}
	for _, m := range cpuRe.FindAllStringSubmatch(out, -1) {
		f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		low := map[string]float64{"cpu-ms/run": f(m[2])}
		if d, err := time.ParseDuration(m[3]); err == nil {
			low["p99-ns"] = float64(d)
		}
		results[as+"/"+m[1]+"/30"] = low
		results[as+"/"+m[1]+"/sat"] = map[string]float64{"cpu-ms/run": f(m[4])}
		results[as+"/"+m[1]+"/idle"] = map[string]float64{"cpu-ms-per-s": f(m[5])}
	}
	m := throughputRe.FindStringSubmatch(out)
	if m == nil {
		return
	}
	r := map[string]float64{}
	r["runs/s"], _ = strconv.ParseFloat(m[1], 64)
	if m := p99Re.FindStringSubmatch(out); m != nil {
		if d, err := time.ParseDuration(m[1]); err == nil {
			r["p99-ns"] = float64(d)
		}
	}
	results[as] = r
}

func probeCPU(root string, results map[string]map[string]float64) error {
	dir, err := os.MkdirTemp("", "hushflow-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	built := map[string]string{}
	for _, p := range cpuProbes {
		bin := built[p.pkg]
		if bin == "" {
			bin = filepath.Join(dir, strings.Trim(strings.ReplaceAll(p.pkg, "/", "_"), "._")+".test")
			cmd := exec.Command(goCmd(), "test", "-c", "-o", bin, p.pkg)
			cmd.Dir, cmd.Stderr = root, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("build %s: %w", p.pkg, err)
			}
			built[p.pkg] = bin
		}
		cpu := func(n int) (time.Duration, error) {
			cmd := exec.Command(bin, "-test.run=^$", "-test.bench="+p.pattern, fmt.Sprintf("-test.benchtime=%dx", n), "-test.cpu=1")
			cmd.Dir = filepath.Join(root, p.pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				return 0, fmt.Errorf("%s: %w\n%s", p.name, err, lastLines(string(out), 10))
			}
			return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
		}
		c1, err := cpu(1)
		if err != nil {
			return err
		}
		cn, err := cpu(p.n)
		if err != nil {
			return err
		}
		per := float64(cn-c1) / float64(p.n-1)
		fmt.Fprintf(os.Stderr, "    %s: %.0f ns of CPU per operation (%d operations)\n", p.name, per, p.n)
		if per > 0 {
			if results[p.name] == nil {
				results[p.name] = map[string]float64{}
			}
			results[p.name]["cpu-ns/op"] = per
		}
	}
	return nil
}

// rate reports whether higher values of unit are better.
func rate(unit string) bool { return strings.HasSuffix(unit, "/s") }

func better(unit string, v, old float64) bool {
	if rate(unit) {
		return v > old
	}
	return v < old
}

func render(results map[string]map[string]float64, machine string) (string, int) {
	var b strings.Builder
	missed := 0
	fmt.Fprintf(&b, "## Summary (`make bench`)\n\n")
	fmt.Fprintf(&b, "Generated by `make bench` (`bench/cmd/report`): every figure beside its baseline, measured in the same\n")
	fmt.Fprintf(&b, "`go test` run. Ratio: how many times faster the figure is than its baseline. Machine: %s.\n\n", machine)
	fmt.Fprintf(&b, "| part | figure | value | baseline | baseline value | ratio | target |\n")
	fmt.Fprintf(&b, "|------|--------|------:|----------|---------------:|------:|--------|\n")
	for _, r := range rows {
		v, ok := results[r.bench][r.unit]
		if !ok {
			fmt.Fprintf(&b, "| %s | %s | not run | %s | | | %s |\n", r.part, r.figure, dash(r.baseline), r.target)
			continue
		}
		if r.baseBench == "" {
			target := r.target
			if r.ok != nil {
				if r.ok(v, 0, 0) {
					target += " ✓"
				} else {
					target += " ✗"
					missed++
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | — | | | %s |\n", r.part, r.figure, format(v, r.unit), target)
			continue
		}
		bv, ok := results[r.baseBench][r.unit]
		if !ok {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | not run | | %s |\n", r.part, r.figure, format(v, r.unit), r.baseline, r.target)
			continue
		}
		// With a CPU time measured, a time is the lower of its two
		// measurements (wall time, best of several runs, and CPU time per
		// operation): noise on a shared machine only ever adds time.
		value, baseValue := format(v, r.unit), format(bv, r.unit)
		if c, ok := results[r.bench]["cpu-ns/op"]; ok && r.unit == "ns/op" {
			value += fmt.Sprintf(" (CPU %s)", format(c, r.unit))
			v = min(v, c)
		}
		if c, ok := results[r.baseBench]["cpu-ns/op"]; ok && r.unit == "ns/op" {
			baseValue += fmt.Sprintf(" (CPU %s)", format(c, r.unit))
			bv = min(bv, c)
		}
		ratio := bv / v
		if rate(r.unit) {
			ratio = v / bv
		}
		ratioText := "**" + ratioString(ratio) + "×**"
		target := r.target
		if r.ok != nil {
			if r.ok(v, bv, ratio) {
				target += " ✓"
			} else {
				target += " ✗"
				if busy() {
					target += " (busy machine)"
				}
				missed++
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.part, r.figure, value, r.baseline,
			baseValue, ratioText, target)
	}
	fmt.Fprintf(&b, "\nRedaction figures are on one core (as its targets are), 8 passes over the 32 MiB text, in throughput per CPU\n")
	fmt.Fprintf(&b, "second of the process (`cpuMB/s`), which a busy machine disturbs less than wall time. Engine figures are on\n")
	fmt.Fprintf(&b, "one core, the best of five runs; \"CPU\" is the CPU time\n")
	fmt.Fprintf(&b, "per operation of the same benchmark; where both were measured, ratios and targets use the lower. The secrets and\n")
	fmt.Fprintf(&b, "end-to-end figures use a fresh PostgreSQL database (`HUSHFLOW_TEST_DATABASE_URL`). The sections below\n")
	fmt.Fprintf(&b, "explain each part's figures and how to reproduce them.\n")
	if busy() {
		fmt.Fprintf(&b, "\nThe machine was busy (load average over its %d CPUs): absolute times are pessimistic; ratios\n", runtime.NumCPU())
		fmt.Fprintf(&b, "hold better, since each figure and its baseline ran in the same conditions.\n")
	}
	return b.String(), missed
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func ratioString(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	default:
		return fmt.Sprintf("%.2f", r)
	}
}

func format(v float64, unit string) string {
	switch unit {
	case "ns/op":
		switch {
		case v < 1e3:
			return fmt.Sprintf("%.0f ns", v)
		case v < 1e6:
			return fmt.Sprintf("%.1f µs", v/1e3)
		case v < 1e9:
			return fmt.Sprintf("%.2f ms", v/1e6)
		default:
			return fmt.Sprintf("%.2f s", v/1e9)
		}
	case "p99-ns", "ns/eval":
		return format(v, "ns/op")
	case "cpuMB/s":
		return thousands(v) + " MB/s"
	case "cpu-ms/run":
		return fmt.Sprintf("%.2f ms", v)
	case "cpu-ms-per-s":
		return fmt.Sprintf("%.2f ms/s", v)
	default:
		return thousands(v) + " " + unit
	}
}

func thousands(v float64) string {
	if v < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// describeMachine names what the figures ran on.
func describeMachine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	gov := runtime.Version()
	if b, err := exec.Command(goCmd(), "env", "GOVERSION").Output(); err == nil {
		gov = strings.TrimSpace(string(b))
	}
	s := fmt.Sprintf("%d CPUs (nproc), %s, %s %s/%s", runtime.NumCPU(), model, gov, runtime.GOOS, runtime.GOARCH)
	if pg := postgresVersion(); pg != "" {
		s += ", PostgreSQL " + pg
	}
	return s + fmt.Sprintf(", %s; load average before the run: %s", time.Now().UTC().Format("2006-01-02 15:04 UTC"), loadavg())
}

func postgresVersion() string {
	u := os.Getenv("HUSHFLOW_TEST_DATABASE_URL")
	if u == "" {
		return ""
	}
	b, err := exec.Command("psql", "-Atc", "SHOW server_version", u).Output()
	if err != nil {
		return ""
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	return v
}

// busy reports whether the machine's load average (1 minute) is over its
// number of CPUs.
func busy() bool {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	l, err := strconv.ParseFloat(f[0], 64)
	return err == nil && l > float64(runtime.NumCPU())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// writeSection replaces the generated section of path (between the
// markers), or inserts it before the first "## " heading; the rest of the
// file is kept as it is.
func writeSection(path, table string) error {
	section := beginMarker + "\n" + table + endMarker + "\n"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	if s == "" {
		s = "# Performance\n\n"
	}
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + section + strings.TrimPrefix(s[j+len(endMarker):], "\n")
	default:
		k := strings.Index(s, "\n## ")
		if k < 0 {
			s = strings.TrimRight(s, "\n") + "\n\n" + section
		} else {
			s = s[:k+1] + section + "\n" + s[k+1:]
		}
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
