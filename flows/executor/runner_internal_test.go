package executor

import (
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
)

// Runs started one after the other run on one goroutine, which keeps the
// stack it grew; it returns once the dispatch ends.
func TestRunnerTakesTheNextRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &dispatch{runners: make(chan func()), ended: make(chan struct{})}
		var ran []string
		for range 3 {
			d.start(func() { ran = append(ran, goroutine()) })
			synctest.Wait() // the run ended; its runner waits for the next
		}
		if ran[0] != ran[1] || ran[1] != ran[2] {
			t.Errorf("three runs one after the other ran on goroutines %v, want one", ran)
		}
		close(d.ended) // synctest.Test returns only once the runner has
	})
}

// goroutine is the id of the calling goroutine.
func goroutine() string {
	b := make([]byte, 64)
	return strings.Fields(string(b[:runtime.Stack(b, false)]))[1]
}
