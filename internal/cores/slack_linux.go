package cores

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// WithTimerSlack re-executes the running program, under the same process
// id, arguments and environment, with the timer slack of every thread set
// to slack (Linux's PR_SET_TIMERSLACK, which execve keeps and threads
// inherit). A program already at slack (re-executed, or started so by
// systemd's TimerSlackNSec=) goes on; so does one given slack 0.
//
// The timer slack is how late the kernel may wake a thread that sleeps
// until a time, so that it can serve several wake-ups at once; it is 50 µs
// by default. The Go runtime's monitor thread (sysmon) sleeps 20 µs at a
// time while the program works, and is set back to 20 µs each time the
// program starts to work after an idle moment, which at a low rate of
// runs is after each database round trip: measured at 30 runs/s, 34
// sleeps per run and 17% of the server's CPU. With a slack of 5 ms it
// wakes at most every 5 ms (docs/performance.md, "seventh round"). The
// cost: timers may fire up to slack late, which nothing in the server
// needs sharper (its shortest timer is 10 ms, and the network poller
// counts in milliseconds).
//
// It must run before the program starts its work (the re-executed program
// starts over), and returns only when it did not re-execute: nil, or why
// it could not (the program then goes on with its slack as it was).
func WithTimerSlack(slack time.Duration) error {
	if slack <= 0 {
		return nil
	}
	// The slack is set on the thread that calls execve, which the new
	// program's first thread inherits.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	was, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return err
	}
	if time.Duration(was) == slack {
		return nil
	}
	// The binary's own path, so that the process keeps its name (the
	// kernel names it after the file executed: /proc/self/exe would make
	// it "exe"), and only while that path is still this very binary (a
	// deploy may have put another there).
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	now, err := os.Stat(exe)
	if err != nil {
		return err
	}
	if self, err := os.Stat("/proc/self/exe"); err != nil || !os.SameFile(now, self) {
		return fmt.Errorf("%s is no longer the binary this process runs", exe)
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(slack), 0, 0, 0); err != nil {
		return err
	}
	err = syscall.Exec(exe, os.Args, os.Environ())
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(was), 0, 0, 0)
	return err
}

// TimerSlack is the timer slack of the calling thread (0 where the system
// has none).
func TimerSlack() time.Duration {
	n, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return 0
	}
	return time.Duration(n)
}
