package jsvm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestWatchdogSleepsThroughEvaluations checks that evaluations that end
// before their deadline do not wake the watchdog each: it looks when the
// first starts, a kick left from the first at most, and a deadline passing, where a
// timer per evaluation woke a thread for each of them.
func TestWatchdogSleepsThroughEvaluations(t *testing.T) {
	s, err := Compile(Code, "return 1 + 1")
	if err != nil {
		t.Fatal(err)
	}
	lim := Limits{Timeout: time.Minute}
	if _, err := s.Run(context.Background(), Globals{}, nopHost{}, lim); err != nil {
		t.Fatal(err)
	}
	before := dog.looks.Load()
	for range 200 {
		if v, err := s.Run(context.Background(), Globals{}, nopHost{}, lim); err != nil || v != int64(2) {
			t.Fatalf("run: %v, %v", v, err)
		}
	}
	if n := dog.looks.Load() - before; n > 3 {
		t.Errorf("the watchdog looked %d times for 200 evaluations that ended in time; want at most 3", n)
	}
}

// TestWatchdogKeepsAnEarlierDeadline checks that an evaluation whose
// deadline comes before the watchdog's next wake-up (set by a longer
// evaluation before it) wakes it: its script is stopped at its own
// deadline, not at the other's.
func TestWatchdogKeepsAnEarlierDeadline(t *testing.T) {
	quick, err := Compile(Code, "return 1")
	if err != nil {
		t.Fatal(err)
	}
	// A live evaluation with a long deadline holds the watchdog's wake-up
	// far away while the short one runs.
	long, err := Compile(Code, "while (true) {}")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = long.Run(ctx, Globals{}, nopHost{}, Limits{Timeout: time.Hour})
	}()
	if _, err := quick.Run(context.Background(), Globals{}, nopHost{}, Limits{Timeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := long.Run(context.Background(), Globals{}, nopHost{}, Limits{Timeout: 50 * time.Millisecond})
		done <- err
	}()
	select {
	case err := <-done:
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeTimeout {
			t.Errorf("a script past its 50ms deadline: %v, want a timeout", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a script with a 50ms deadline still ran after a minute: the watchdog slept until the hour-long deadline")
	}
	cancel()
	wg.Wait()
}
