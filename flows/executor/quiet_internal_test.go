package executor

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// While the database is away each retry of each run would log its
// warning (134 lines in 30 s for six runs, in an operator's trial): the
// first is written, then at most one per 10 s with how many were left
// out.
func TestRepeatedWarningsThinned(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	w := &Worker{log: slog.New(slog.NewTextHandler(&buf, nil))}
	w.cfg.Now = func() time.Time { return now }
	for i := 0; i < 50; i++ { // 5 s of retries every 100 ms
		w.warnQuiet("store run events: database unavailable, retrying", "run_id", "r1")
		w.warnQuiet("extend run leases")
		now = now.Add(100 * time.Millisecond)
	}
	now = now.Add(6 * time.Second)
	w.warnQuiet("store run events: database unavailable, retrying", "run_id", "r2")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || strings.Contains(lines[0], "repeated") || !strings.Contains(lines[1], "extend run leases") ||
		!strings.Contains(lines[2], "run_id=r2 repeated=49") {
		t.Fatalf("log:\n%s", buf.String())
	}
}
