package security_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/redact"
	"github.com/hushflow/hushflow/store/storetest"
)

// TestLoad: 50 concurrent clients create secrets, save flows that read
// them and run the flows (waiting for the end), while another client
// reads runs. No 5xx, no lost write, no value in any response. It runs
// on PostgreSQL when configured (SQLite otherwise), loopback only, for
// 15 s, or HUSHFLOW_LOAD_SECONDS (at most 60).
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	dur := 15 * time.Second
	if v := os.Getenv("HUSHFLOW_LOAD_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("HUSHFLOW_LOAD_SECONDS=%q", v)
		}
		dur = time.Duration(min(n, 60)) * time.Second
	}
	bs := storetest.Backends(t)
	b := bs[len(bs)-1]
	s := apptest.Start(t, b.Config(t), func(c *app.Config) { c.RateLimit = -1 })
	e := newEnv(t, s)
	const clients = 50
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients + 2}, Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()

	type result struct {
		lat    time.Duration
		status int
	}
	var (
		mu        sync.Mutex
		results   []result
		values    []string
		secretsOK = map[string]bool{}
		flowsOK   = map[string]bool{}
		runsOK    = map[string]bool{}
		bodies    bytes.Buffer // every response body, scanned for values at the end
		failures  atomic.Int64
	)
	do := func(method, path string, body any) (int, map[string]any) {
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, s.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		if rd != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		start := time.Now()
		resp, err := client.Do(req)
		lat := time.Since(start)
		if err != nil {
			failures.Add(1)
			t.Errorf("%s %s: %v", method, path, err)
			return 0, nil
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		mu.Lock()
		results = append(results, result{lat, resp.StatusCode})
		bodies.Write(data)
		bodies.WriteByte('\n')
		mu.Unlock()
		if resp.StatusCode >= 500 {
			t.Errorf("%s %s: %d %.300s", method, path, resp.StatusCode, data)
		}
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		return resp.StatusCode, m
	}

	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				name := fmt.Sprintf("L%d_%d", c, i)
				v := canary(fmt.Sprintf("load%d_%d", c, i))
				mu.Lock()
				values = append(values, v)
				mu.Unlock()
				if st, _ := do("POST", "/api/v1/secrets", map[string]any{"name": name, "value": v, "project": "p"}); st != 201 {
					t.Errorf("create secret %s: %d", name, st)
					return
				}
				flow := fmt.Sprintf("f-%d-%d", c, i)
				st, _ := do("POST", "/api/v1/projects/p/flows", map[string]any{"name": flow, "trigger": map[string]any{"type": "manual"},
					"blocks": []any{code("c", "console.log(secrets."+name+"); return {n: secrets."+name+".length, v: secrets."+name+"}")}})
				if st != 201 {
					t.Errorf("save flow %s: %d", flow, st)
					return
				}
				st, run := do("POST", "/api/v1/projects/p/flows/"+flow+"/runs?wait=30s", map[string]any{"environment": "development"})
				if st != 200 || run["status"] != "succeeded" {
					t.Errorf("run %s: %d %v", flow, st, run)
					return
				}
				if out, _ := run["output"].(map[string]any); out["n"] != float64(len(v)) {
					t.Errorf("run %s read the wrong value: %v", flow, out)
				}
				mu.Lock()
				secretsOK[name], flowsOK[flow], runsOK[run["id"].(string)] = true, true, true
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() { // the reader
		defer wg.Done()
		for time.Now().Before(deadline) {
			_, l := do("GET", "/api/v1/projects/p/runs?limit=20", nil)
			if runs, _ := l["runs"].([]any); len(runs) > 0 {
				id := runs[0].(map[string]any)["id"].(string)
				do("GET", "/api/v1/runs/"+id, nil)
				do("GET", "/api/v1/runs/"+id+"/events", nil)
			}
		}
	}()
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)

	// No lost writes: every secret, flow and run is listed.
	sec := e.must(200, "GET", "/api/v1/secrets?project=p", nil)
	for _, x := range sec["secrets"].([]any) {
		delete(secretsOK, x.(map[string]any)["name"].(string))
	}
	fl := e.must(200, "GET", "/api/v1/projects/p/flows", nil)
	for _, x := range fl["flows"].([]any) {
		delete(flowsOK, x.(map[string]any)["name"].(string))
	}
	cursor := ""
	for {
		l := e.must(200, "GET", "/api/v1/projects/p/runs?limit=200&cursor="+cursor, nil)
		for _, x := range l["runs"].([]any) {
			delete(runsOK, x.(map[string]any)["id"].(string))
		}
		cursor, _ = l["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	if len(secretsOK)+len(flowsOK)+len(runsOK) > 0 {
		t.Errorf("lost writes: %d secrets, %d flows, %d runs not listed", len(secretsOK), len(flowsOK), len(runsOK))
	}

	lats := make([]time.Duration, len(results))
	var fivexx int
	for i, r := range results {
		lats[i] = r.lat
		if r.status >= 500 {
			fivexx++
		}
	}
	slices.Sort(lats)
	p := func(q float64) time.Duration { return lats[min(len(lats)-1, int(float64(len(lats))*q))] }
	t.Logf("load on %s: %d clients for %s: %d requests (%.0f req/s), %d runs; latency p50 %s, p99 %s, max %s; %d 5xx, %d transport errors",
		b.Name, clients, elapsed.Round(time.Millisecond), len(results), float64(len(results))/elapsed.Seconds(), len(values),
		p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lats[len(lats)-1].Round(time.Millisecond), fivexx, failures.Load())
	if len(values) < clients {
		t.Errorf("only %d iterations", len(values))
	}
	// No value in any response, nor in the log: one pass with a redactor
	// that knows every value and its encodings (the forms of
	// apptest.Forms and more).
	red := redact.New()
	for i, v := range values {
		red.Add(fmt.Sprint("V", i), v)
	}
	for name, text := range map[string]string{"load responses": bodies.String(), "server log": s.Logs.String()} {
		if m := red.Matches(text); len(m) > 0 {
			t.Errorf("%s hold %d values (%v...)", name, len(m), m[0])
		}
	}
}
