package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	out := `goos: linux
BenchmarkTemplate/engine-fast-run         	 8763918	       135.2 ns/op	      48 B/op	       2 allocs/op
BenchmarkTemplate/engine-fast-run         	 8763918	       140.0 ns/op	      48 B/op	       2 allocs/op
BenchmarkRedact/values=10/redact-2         	       2	 150805504 ns/op	 222.50 MB/s	       971.4 cpuMB/s	        14.50 forms/value
BenchmarkRunThroughput/postgres-2
{"level":"INFO","msg":"interleaved"}
     202	  15202159 ns/op	        65.78 runs/s
PASS
`
	r := map[string]map[string]float64{}
	parse(out, r)
	for _, c := range []struct {
		name, unit string
		want       float64
	}{
		{"BenchmarkTemplate/engine-fast-run", "ns/op", 135.2},
		{"BenchmarkTemplate/engine-fast-run", "allocs/op", 2},
		{"BenchmarkRedact/values=10/redact", "cpuMB/s", 971.4},
		{"BenchmarkRunThroughput/postgres", "runs/s", 65.78},
	} {
		if got := r[c.name][c.unit]; got != c.want {
			t.Errorf("%s %s = %v, want %v", c.name, c.unit, got, c.want)
		}
	}
	table, _ := render(r, "test machine")
	if !strings.Contains(table, "| 135 ns |") || !strings.Contains(table, "| 66 runs/s |") && !strings.Contains(table, "65.8 runs/s") {
		t.Errorf("table:\n%s", table)
	}
}

func TestWriteSectionKeepsProse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	prose := "# Performance\n\nIntro.\n\n## Secrets\n\nTheir prose.\n"
	os.WriteFile(path, []byte(prose), 0o644)
	for _, table := range []string{"first table\n", "second table\n"} {
		if err := writeSection(path, table); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	want := "# Performance\n\nIntro.\n\n" + beginMarker + "\nsecond table\n" + endMarker + "\n\n## Secrets\n\nTheir prose.\n"
	if string(b) != want {
		t.Errorf("got:\n%s\nwant:\n%s", b, want)
	}
}

func TestParseThroughputTest(t *testing.T) {
	out := `=== RUN   TestFlowThroughput
    bench_test.go:152: 1000 runs, 16 workers, 16 API clients: queued in 1.9s (525/s); first queued to last finished 4.1s: 245 runs/s end to end (wall 4.2s)
    bench_test.go:155: queue-to-finish latency: p50 3.6s, p90 5.4s, p99 5.8s, max 6s
--- PASS: TestFlowThroughput (6.01s)
`
	r := map[string]map[string]float64{}
	parseTest(out, r, "TestFlowThroughput")
	if r["TestFlowThroughput"]["runs/s"] != 245 || r["TestFlowThroughput"]["p99-ns"] != 5.8e9 {
		t.Errorf("got %v", r)
	}
}

func TestParseCPUTest(t *testing.T) {
	out := `=== RUN   TestFlowCPU/sqlite
    bench_test.go:356: the floor beside it on sqlite (bench/floor's run mode, offered the same runs at the same moments): 0.78 ms per run at 30 runs/s; this build 2.19 times it
    bench_test.go:388: CPU of the serve process tree on sqlite: 1.72 ms per run at 30 runs/s offered for 20s (600 runs, p50 1ms, p99 8ms queue-to-finish); 0.80 ms per run saturated (3000 runs, 1496 runs/s); idle 0.74 ms of CPU per second
`
	r := map[string]map[string]float64{}
	parseTest(out, r, "TestFlowCPU")
	want := map[string]map[string]float64{
		"floor/sqlite":            {"cpu-ms/run": 0.78},
		"TestFlowCPU/sqlite/30":   {"cpu-ms/run": 1.72, "p99-ns": 8e6},
		"TestFlowCPU/sqlite/sat":  {"cpu-ms/run": 0.80},
		"TestFlowCPU/sqlite/idle": {"cpu-ms-per-s": 0.74},
	}
	if fmt.Sprint(r) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", r, want)
	}
	table, _ := render(r, "m")
	row := "| flows | the same on SQLite | 8.00 ms | — | | | ≤ 20 ms (issue 21) ✓ |"
	if !strings.Contains(table, row) {
		t.Errorf("table lacks\n%s\n%s", row, table)
	}
}

// TestRenderWriterLines checks the row of the line-at-a-time Writer: its
// figure beside the whole buffer's, the ratio and the target.
func TestRenderWriterLines(t *testing.T) {
	r := map[string]map[string]float64{
		"BenchmarkRedact/values=1000/writer-lines": {"cpuMB/s": 1500},
		"BenchmarkRedact/values=1000/redact":       {"cpuMB/s": 2000},
	}
	table, _ := render(r, "m")
	want := "| redact | streaming Writer, 1,000 values, one log line (about 150 bytes) per Write | 1,500 MB/s | Redactor.String on the whole buffer | 2,000 MB/s | **0.75×** | within 2× (≥ 0.5×) ✓ |"
	if !strings.Contains(table, want) {
		t.Errorf("table lacks\n%s\n%s", want, table)
	}
}

func TestRenderCPU(t *testing.T) {
	r := map[string]map[string]float64{
		"BenchmarkTemplate/engine-fast-run":     {"ns/op": 283, "cpu-ns/op": 150},
		"BenchmarkTemplate/baseline-fresh-goja": {"ns/op": 4900, "cpu-ns/op": 4000},
	}
	table, missed := render(r, "m")
	want := "| 283 ns (CPU 150 ns) | fresh goja runtime + RunString | 4.9 µs (CPU 4.0 µs) | **26.7×** | ≥ 25×, < 200 ns ✓ |"
	if !strings.Contains(table, want) {
		t.Errorf("table lacks\n%s\n%s", want, table)
	}
	if missed != 0 {
		t.Errorf("missed %d", missed)
	}
}
