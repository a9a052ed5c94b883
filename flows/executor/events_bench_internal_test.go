package executor

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/redact"
)

// BenchmarkRedactEvents measures what storing a block's events costs in
// redaction: the events of an http block followed by a code block (a run
// start with its input, block starts, an HTTP request and response of
// 2 KiB, log lines, outputs) against a redactor of 20 secrets, none of
// which the events hold (the common case: the hot path of every run).
func BenchmarkRedactEvents(b *testing.B) {
	w := &Worker{}
	w.cfg.defaults()
	red := redact.New()
	vals := map[string]string{}
	for i := range 20 {
		vals[fmt.Sprintf("SECRET_%d", i)] = fmt.Sprintf("sk_live_%016x%08d", uint64(i)*0x9E3779B97F4A7C15, i)
	}
	red.AddAll(vals)
	body := strings.Repeat(`{"id": 12345, "name": "record", "status": "active", "tags": ["a", "b"]},`, 28)
	evs := []PendingEvent{
		{Type: "run_started", Data: map[string]any{"input": map[string]any{"customer": "acme", "amount": 42, "note": "monthly invoice"}, "worker": "w1"}},
		{Type: "block_started", Block: "call", Data: map[string]any{"type": "http", "config": map[string]any{"method": "GET", "url": "https://api.example.com/records?page=1"}}},
		{Type: "http_request", Block: "call", Data: map[string]any{"method": "GET", "url": "https://api.example.com/records?page=1", "headers": map[string]any{"Authorization": "[REDACTED:SECRET_1]", "Accept": "application/json"}, "body": "", "attempt": 1}},
		{Type: "http_response", Block: "call", Data: map[string]any{"status": 200, "headers": map[string]any{"Content-Type": "application/json", "Date": "Mon, 23 Nov 2026 13:00:00 GMT"}, "body": "[" + body + "]", "duration_ms": 12, "attempt": 1}},
		{Type: "block_finished", Block: "call", Data: map[string]any{"output": map[string]any{"status": 200, "headers": map[string]any{"Content-Type": "application/json"}, "body": "[" + body + "]"}, "attempt": 1, "duration_ms": 12}},
		{Type: "block_started", Block: "report", Data: map[string]any{"type": "code"}},
		{Type: "log", Block: "report", Data: map[string]any{"level": "info", "message": "sent 28 records to the warehouse in 12 ms"}},
		{Type: "block_finished", Block: "report", Data: map[string]any{"output": map[string]any{"count": 28, "ok": true}, "attempt": 1, "duration_ms": 3}},
	}
	n := 0
	for _, e := range evs {
		n += len(fmt.Sprint(e.Data))
	}
	// The run read no secret; or it read SECRET_1, whose derived values
	// every event is then searched for (emit: guard.deriveValue).
	for _, read := range []bool{false, true} {
		name := "no-secret-read"
		if read {
			name = "secret-read"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			x := &execution{w: w, run: &model.Run{ID: "r", Trigger: "manual"}, red: red}
			if read {
				x.guard.start(red, nil, nil)
				x.guard.learn("SECRET_1", "", vals["SECRET_1"], nil)
			}
			for b.Loop() {
				x.seq, x.stored = 0, 0 // a run's first events, each time
				for _, e := range evs {
					x.emit(e)
				}
				x.flushMu.Lock()
				if rows := x.takeRowsLocked(); len(rows) != len(evs) {
					b.Fatalf("%d rows", len(rows))
				}
				x.flushMu.Unlock()
			}
		})
	}
}
