package jsvm

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestWatchdogSleepsThroughEvaluations checks that evaluations that end
// before their deadline do not wake the watchdog each: it looks a few
// times at most (for a kick left from the first, for a deadline
// passing), where a timer per evaluation woke a thread for each of them.
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

// TestWatchdogSleepsBetweenShortEvaluations checks that evaluations that
// each end before the watchdog gets to look do not kick it one after the
// other: the first kicks it, and it sleeps on until that evaluation's
// deadline, which covers the ones that start before it.
func TestWatchdogSleepsBetweenShortEvaluations(t *testing.T) {
	s, err := Compile(Code, "return 1 + 1")
	if err != nil {
		t.Fatal(err)
	}
	lim := Limits{Timeout: time.Minute}
	looked := dog.looks.Load()
	if _, err := s.Run(context.Background(), Globals{}, nopHost{}, lim); err != nil {
		t.Fatal(err)
	}
	// The watchdog has looked since the first evaluation (ended): it
	// waits for that one's deadline now, not for a kick.
	settle(t, func() bool {
		dog.mu.Lock()
		defer dog.mu.Unlock()
		return dog.looks.Load() > looked && len(dog.live) == 0 && !dog.wake.IsZero() && len(dog.kick) == 0
	})
	before := dog.looks.Load()
	for range 50 {
		if _, err := s.Run(context.Background(), Globals{}, nopHost{}, lim); err != nil {
			t.Fatal(err)
		}
		runtime.Gosched() // let the watchdog run, as an idle processor would
	}
	if n := dog.looks.Load() - before; n > 0 {
		t.Errorf("the watchdog looked %d times for 50 evaluations that started before the deadline it sleeps to; want none", n)
	}
}

// settle waits for cond, yielding (the watchdog's goroutine runs on the
// test's processors).
func settle(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("the watchdog did not settle in 10s")
		}
		runtime.Gosched()
	}
}
