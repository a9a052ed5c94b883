package apptest

import (
	"testing"
	"time"
)

// PollInterval is how often Eventually checks its condition.
const PollInterval = 20 * time.Millisecond

// Eventually waits until cond returns nil, checking at once and then
// every PollInterval, and fails the test (t.Fatalf) if it still returns an
// error after timeout. The message names what the test waited for and
// cond's last error, so that a failure says what was seen instead of
// what was expected. cond runs on the caller's goroutine: it may call
// t.Fatal itself for a state that cannot recover (a process that exited).
//
// Eventually is for tests that wait for something another goroutine or
// process does; a test never sleeps for time to pass (a clock such as
// Clock moves it instead).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	err := cond()
	if err == nil {
		return
	}
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-tick.C:
			if err = cond(); err == nil {
				return
			}
		case <-deadline.C:
			if err = cond(); err == nil {
				return
			}
			t.Fatalf("gave up after %s waiting for %s: %v", timeout, what, err)
		}
	}
}
