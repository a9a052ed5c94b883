// Package cores runs the server on one processor of the Go runtime
// (GOMAXPROCS=1) while it has little to do, and on the runtime's default
// (one per CPU) as soon as it has more.
//
// At a low rate (a run every 30 ms) most of a run's CPU is not its work
// but threads woken around it: each goroutine a run readies while a
// processor is idle wakes a second thread, which spins, finds nothing and
// sleeps again, and on a virtual machine each of those wake-ups is a
// context switch of the host. With one processor the readied goroutine
// waits in the same run queue instead (docs/performance.md, "Cost per run
// at a low rate, sixth round"). One processor would cap a busy server at
// one CPU; the Governor widens before that matters:
//
//   - at once, when Crowd runs and requests are in flight together;
//   - when the process used more than BusyShare of one CPU since it last
//     looked (it looks at most every Sample, when a run or request
//     starts: no timer runs while the server is narrow and idle).
//
// It narrows again once a whole Settle went by with fewer than Crowd in
// flight and less than IdleShare of one CPU used.
//
// An operator who sets GOMAXPROCS keeps it: the server then uses no
// Governor (cmd/hushflow).
package cores

import (
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// Crowd is how many runs and requests in flight widen at once (a
	// webhook's request and the run it starts are two).
	Crowd = 4
	// BusyShare of one CPU, used since the last look, widens.
	BusyShare = 0.6
	// IdleShare of one CPU, used over a Settle with fewer than Crowd in
	// flight, narrows.
	IdleShare = 0.3
	// Sample is the shortest time between two looks at the CPU used.
	Sample = 100 * time.Millisecond
	// DefaultSettle is how long the server stays wide at least.
	DefaultSettle = time.Second
)

// Governor sets GOMAXPROCS from what is in flight (Enter, Leave) and the
// CPU the process uses. A nil *Governor does nothing.
type Governor struct {
	wide   int // the runtime's default at New
	settle time.Duration
	// now and cpu read the clock and the CPU time the process used (user
	// and system); tests replace them.
	now func() time.Time
	cpu func() time.Duration

	busy   atomic.Int64 // things in flight
	peak   atomic.Int64 // the most in flight since the last check
	narrow atomic.Bool  // GOMAXPROCS is 1

	mu sync.Mutex // guards what follows, and serializes the changes of GOMAXPROCS
	// lookAt and lookCPU: the clock and the CPU time at the last look.
	lookAt  time.Time
	lookCPU time.Duration
	timer   *time.Timer
	stopped bool
	changes int
}

// New returns a Governor, narrowed to one processor, or nil when the
// runtime's default is one processor already (nothing to govern). settle
// 0 means DefaultSettle.
func New(settle time.Duration) *Governor {
	if runtime.GOMAXPROCS(0) <= 1 {
		return nil
	}
	if settle <= 0 {
		settle = DefaultSettle
	}
	g := &Governor{wide: runtime.GOMAXPROCS(0), settle: settle, now: time.Now, cpu: processCPU}
	g.mu.Lock()
	g.lookAt, g.lookCPU = g.now(), g.cpu()
	g.narrowLocked()
	g.mu.Unlock()
	return g
}

// Enter counts a run or request that starts, and widens when there is
// enough to do.
func (g *Governor) Enter() {
	if g == nil {
		return
	}
	n := g.busy.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if !g.narrow.Load() {
		return
	}
	if n >= Crowd {
		g.widen()
		return
	}
	if g.mu.TryLock() { // one look at a time; the others go on
		widen := false
		if now := g.now(); now.Sub(g.lookAt) >= Sample {
			widen = g.shareLocked(now) > BusyShare
		}
		g.mu.Unlock()
		if widen {
			g.widen()
		}
	}
}

// Leave counts a run or request that ended.
func (g *Governor) Leave() {
	if g == nil {
		return
	}
	g.busy.Add(-1)
}

// shareLocked is the share of one CPU the process used since the last
// look, which now becomes.
func (g *Governor) shareLocked(now time.Time) float64 {
	cpu := g.cpu()
	share := float64(cpu-g.lookCPU) / float64(max(now.Sub(g.lookAt), time.Millisecond))
	g.lookAt, g.lookCPU = now, cpu
	return share
}

// InFlight is the number of runs and requests in flight.
func (g *Governor) InFlight() int64 {
	if g == nil {
		return 0
	}
	return g.busy.Load()
}

// WideProcs is the runtime's default number of processors when the
// Governor was made.
func (g *Governor) WideProcs() int {
	if g == nil {
		return runtime.GOMAXPROCS(0)
	}
	return g.wide
}

// Changes is how many times GOMAXPROCS was changed (narrowed or widened).
func (g *Governor) Changes() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changes
}

// Stop gives the runtime its default processors for good.
func (g *Governor) Stop() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	if g.timer != nil {
		g.timer.Stop()
	}
	if g.narrow.Load() {
		g.widenLocked()
	}
}

func (g *Governor) widen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.narrow.Load() || g.stopped {
		return
	}
	g.widenLocked()
	g.peak.Store(g.busy.Load())
	g.lookAt, g.lookCPU = g.now(), g.cpu()
	if g.timer == nil {
		g.timer = time.AfterFunc(g.settle, g.check)
	} else {
		g.timer.Reset(g.settle)
	}
}

// widenLocked gives the runtime its default again, which also follows
// the CPU limit of a container as it changes.
func (g *Governor) widenLocked() {
	runtime.SetDefaultGOMAXPROCS()
	g.narrow.Store(false)
	g.changes++
}

// check narrows when, since the last check, fewer than Crowd were in
// flight and the process used less than IdleShare of one CPU; it looks
// again after settle otherwise.
func (g *Governor) check() {
	g.mu.Lock()
	narrowed := false
	if !g.narrow.Load() && !g.stopped {
		share := g.shareLocked(g.now())
		if g.peak.Swap(g.busy.Load()) >= Crowd || share >= IdleShare {
			g.timer.Reset(g.settle)
		} else {
			g.narrowLocked()
			narrowed = true
		}
	}
	g.mu.Unlock()
	// A crowd that formed while this narrowed may have found it wide:
	// widen again for it.
	if narrowed && g.busy.Load() >= Crowd {
		g.widen()
	}
}

func (g *Governor) narrowLocked() {
	runtime.GOMAXPROCS(1)
	g.narrow.Store(true)
	g.changes++
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
