package cores

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// The Governor narrows at once; widens for a crowd in flight, or for the
// CPU used since its last look (on an injected clock and CPU time); stays
// wide while a check finds either; narrows at the first check that finds
// neither; and gives the default back on Stop. check is called directly:
// the timer (an hour) never fires.
func TestGovernor(t *testing.T) {
	wide := runtime.GOMAXPROCS(0)
	defer runtime.SetDefaultGOMAXPROCS()
	g := New(time.Hour)
	if g == nil {
		t.Skip("one CPU: nothing to govern")
	}
	var mu sync.Mutex
	clock, used := time.Unix(1e9, 0), time.Duration(0)
	g.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	g.cpu = func() time.Duration { mu.Lock(); defer mu.Unlock(); return used }
	pass := func(d, cpu time.Duration) { mu.Lock(); clock, used = clock.Add(d), used+cpu; mu.Unlock() }
	g.lookAt, g.lookCPU = g.now(), g.cpu()
	procs := func(want int, when string) {
		t.Helper()
		if got := runtime.GOMAXPROCS(0); got != want {
			t.Fatalf("%s: GOMAXPROCS %d, want %d", when, got, want)
		}
	}
	procs(1, "new")
	// A webhook and its run, a few times a second: narrow.
	for range 20 {
		g.Enter()
		g.Enter()
		g.Leave()
		g.Leave()
		pass(33*time.Millisecond, 2*time.Millisecond)
	}
	procs(1, "30 runs a second, 2 ms of CPU each")
	// A crowd widens at once.
	for range Crowd {
		g.Enter()
	}
	procs(wide, "a crowd in flight")
	for range Crowd {
		g.Leave()
	}
	pass(time.Second, 10*time.Millisecond)
	g.check()
	procs(wide, "a check after a crowd was in flight")
	pass(time.Second, 10*time.Millisecond)
	g.check()
	procs(1, "a check after a quiet second")
	// One client after another, busy: the CPU used widens, at the first
	// start after Sample.
	g.Enter()
	g.Leave()
	pass(Sample/2, Sample/2)
	g.Enter()
	g.Leave()
	procs(1, "busy for less than Sample")
	pass(Sample, Sample)
	g.Enter()
	g.Leave()
	procs(wide, "a whole CPU used since the last look")
	pass(time.Second, time.Second/2)
	g.check()
	procs(wide, "half a CPU used since the last check")
	pass(time.Second, time.Second/10)
	g.check()
	procs(1, "a tenth of a CPU used since the last check")
	if n := g.Changes(); n != 5 {
		t.Errorf("%d changes of GOMAXPROCS, want 5 (narrowed, widened, narrowed, widened, narrowed)", n)
	}
	g.Stop()
	procs(wide, "stopped")
	for range Crowd {
		g.Enter()
	}
	g.check()
	procs(wide, "a check after Stop")
	var none *Governor
	none.Enter()
	none.Leave()
	none.Stop()
}
