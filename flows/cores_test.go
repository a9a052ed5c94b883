package flows_test

import (
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// `hushflow serve` runs on one processor while idle, on all from the
// moment eight runs are in flight together, and on one again once they
// are done; an operator's GOMAXPROCS is kept. The processors are read
// from the server's own /metrics (go_sched_gomaxprocs_threads).
func TestServeWidensUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hushflow serve processes")
	}
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU here: nothing to widen")
	}
	bin := hushflowBinary(t)
	db := storetest.SQLiteConfig(t)
	p := startServe(t, serveConfig{bin: bin, db: db, dataDir: db.DataDir})
	if n := procs(t, p); n != 1 {
		t.Errorf("GOMAXPROCS %d while idle, want 1", n)
	}
	p.must(201, "POST", "/api/v1/projects", map[string]string{"name": "load"})
	p.must(201, "POST", "/api/v1/projects/load/flows", map[string]any{
		"name": "slow", "trigger": map[string]any{"type": "webhook"},
		"blocks": []any{map[string]any{"id": "pause", "type": "delay", "config": map[string]any{"duration": "'1s'"}}},
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, m := p.do("POST", "/hooks/load/slow", map[string]any{}); st != 202 {
				t.Errorf("webhook: %d %v", st, m)
			}
		}()
	}
	wg.Wait()
	if n := procs(t, p); n < 2 {
		t.Errorf("GOMAXPROCS %d with eight runs in flight, want the default", n)
	}
	apptest.Eventually(t, 30*time.Second, "one processor again once the runs are done", func() error {
		if n := procs(t, p); n != 1 {
			return fmt.Errorf("GOMAXPROCS %d", n)
		}
		return nil
	})

	db2 := storetest.SQLiteConfig(t)
	fixed := startServe(t, serveConfig{bin: bin, db: db2, dataDir: db2.DataDir, extra: []string{"GOMAXPROCS=2"}})
	if n := procs(t, fixed); n != 2 {
		t.Errorf("GOMAXPROCS %d with GOMAXPROCS=2 set, want 2", n)
	}
	if !strings.Contains(fixed.Logs.String(), `"gomaxprocs":2`) {
		t.Errorf("the startup line does not say gomaxprocs 2: %s", fixed.Logs.String())
	}
}

var gomaxprocsLine = regexp.MustCompile(`(?m)^go_sched_gomaxprocs_threads (\d+)$`)

// procs is the server's GOMAXPROCS, from its /metrics.
func procs(t *testing.T, p *proc) int {
	t.Helper()
	st, m := p.do("GET", "/metrics", nil)
	raw, _ := m["raw"].(string)
	got := gomaxprocsLine.FindStringSubmatch(raw)
	if got == nil {
		t.Fatalf("no go_sched_gomaxprocs_threads in /metrics (%d)", st)
	}
	n, _ := strconv.Atoi(got[1])
	return n
}

// A request that waits for its run (?wait=) stops counting as in flight
// once it waits: a client that waits for each of its runs does not keep
// the server wide. Only the run counts while it runs.
func TestWaitingRequestDoesNotCount(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.SQLiteConfig(t), func(c *app.Config) { c.AdaptiveCores = true })
	g := s.App.Cores()
	if g == nil {
		t.Skip("one CPU here: no Governor")
	}
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "w"})
	s.Must(201, "POST", "/api/v1/projects/w/flows", map[string]any{
		"name": "slow", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "pause", "type": "delay", "config": map[string]any{"duration": "'3s'"}}},
	})
	done := make(chan apptest.Response, 1)
	go func() {
		done <- s.Do("POST", "/api/v1/projects/w/flows/slow/runs?wait=10s", map[string]any{"environment": "development"})
	}()
	apptest.Eventually(t, 2*time.Second, "the run alone in flight while its request waits", func() error {
		runs := s.Must(200, "GET", "/api/v1/projects/w/runs", nil)["runs"].([]any)
		if len(runs) != 1 || runs[0].(map[string]any)["status"] != "running" {
			select {
			case r := <-done:
				t.Fatalf("run with ?wait answered before it ran: %d %s", r.Status, r.Body)
			default:
			}
			return fmt.Errorf("runs: %v", runs)
		}
		if n := g.InFlight(); n != 1 {
			return fmt.Errorf("%d in flight", n)
		}
		return nil
	})
	if r := <-done; r.Status != 200 {
		t.Fatalf("run with ?wait: %d %s", r.Status, r.Body)
	}
	apptest.Eventually(t, 5*time.Second, "nothing in flight once the run ended", func() error {
		if n := g.InFlight(); n != 0 {
			return fmt.Errorf("%d in flight", n)
		}
		return nil
	})
}
