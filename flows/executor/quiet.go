package executor

import (
	"sync"
	"time"
)

// quietEvery is how often a warning that repeats while the database is
// away (each retry of each run would log one) is written: the first, then
// at most one per period with how many were left out.
const quietEvery = 10 * time.Second

// quietLog holds when each repeating warning was last written.
type quietLog struct {
	mu   sync.Mutex // guards last
	last map[string]*quietEntry
}

type quietEntry struct {
	at      time.Time
	skipped int
}

// warnQuiet writes the warning msg unless one was written less than
// quietEvery ago; then it counts it, and the next one written says how
// many were left out (`repeated`).
func (w *Worker) warnQuiet(msg string, args ...any) {
	now := w.now()
	w.quiet.mu.Lock()
	if w.quiet.last == nil {
		w.quiet.last = map[string]*quietEntry{}
	}
	e := w.quiet.last[msg]
	if e == nil {
		e = &quietEntry{}
		w.quiet.last[msg] = e
	}
	if !e.at.IsZero() && now.Sub(e.at) < quietEvery {
		e.skipped++
		w.quiet.mu.Unlock()
		return
	}
	if e.skipped > 0 {
		args = append(args, "repeated", e.skipped)
	}
	e.at, e.skipped = now, 0
	w.quiet.mu.Unlock()
	w.log.Warn(msg, args...)
}
