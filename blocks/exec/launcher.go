package exec

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// EnvLauncher is set (to "1") in the environment of the launcher process:
// a copy of the server's own executable that sets the resource limits
// and then replaces itself with the command. Programs that register the
// exec block must call LauncherMain first thing in main (and test binaries
// in TestMain) when it is set; cmd/hushflow and apptest.Main do.
const EnvLauncher = "HUSHFLOW_EXEC_LAUNCHER"

// launcherFlag is the launcher's first argument. A binary that does not
// call LauncherMain refuses it as an unknown flag instead of running as
// itself.
const launcherFlag = "-hushflow-exec-launcher"

// launcherPath returns the launcher executable; a variable for tests.
var launcherPath = os.Executable

// Limits are the resource limits of a command (0: unlimited).
type Limits struct {
	AS     uint64 // RLIMIT_AS, bytes of address space
	CPU    uint64 // RLIMIT_CPU, seconds
	NoFile uint64 // RLIMIT_NOFILE
}

// String encodes l for the launcher's command line.
func (l Limits) String() string {
	return fmt.Sprintf("as=%d,cpu=%d,nofile=%d,core=0", l.AS, l.CPU, l.NoFile)
}

var rlimits = map[string]int{"as": syscall.RLIMIT_AS, "cpu": syscall.RLIMIT_CPU, "nofile": syscall.RLIMIT_NOFILE, "core": syscall.RLIMIT_CORE}

// LauncherMain is the launcher: with arguments
// "-hushflow-exec-launcher LIMITS -- PATH ARGV0 ARGS...", it sets the
// limits (as, cpu, nofile, core), drops EnvLauncher from the environment
// and executes PATH. It returns only on failure, with the exit status to
// use (127, as a shell does when a command cannot run).
//
// The launcher is a Go process larger than the address-space limit it
// sets on itself, so once that limit is set nothing may map memory: a
// collection starting its mark workers, a heap that grows or a new stack
// would die with "out of memory". The collector is off from the start,
// everything execve needs is built before the first limit, and the limits
// and execve are raw system calls that neither allocate nor schedule.
func LauncherMain() int {
	debug.SetGCPercent(-1)
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "hushflow exec launcher: "+format+"\n", a...)
		return 127
	}
	args := os.Args[1:]
	if len(args) < 5 || args[0] != launcherFlag || args[2] != "--" {
		return fail("usage: %s LIMITS -- PATH ARGV0 [ARGS...]", launcherFlag)
	}
	type lim struct {
		res int
		v   uint64
	}
	var lims []lim
	for _, kv := range strings.Split(args[1], ",") {
		k, v, _ := strings.Cut(kv, "=")
		res, ok := rlimits[k]
		n, err := strconv.ParseUint(v, 10, 64)
		if !ok || err != nil {
			return fail("bad limit %q", kv)
		}
		if n == 0 && k != "core" {
			continue
		}
		lims = append(lims, lim{res, n})
	}
	path, argv := args[3], args[4:]
	env := make([]string, 0, len(os.Environ()))
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, EnvLauncher+"=") {
			env = append(env, e)
		}
	}
	pathp, err := syscall.BytePtrFromString(path)
	if err != nil {
		return fail("run %s: %v", path, err)
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return fail("run %s: %v", path, err)
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return fail("run %s: %v", path, err)
	}
	// The address-space limit goes last: the launcher itself may have
	// mapped more than the command may.
	for i := range lims {
		if lims[i].res == syscall.RLIMIT_AS {
			lims = append(lims[:i:i], append(lims[i+1:], lims[i])...)
			break
		}
	}
	rs := make([]syscall.Rlimit, len(lims))
	for i, l := range lims {
		rs[i] = syscall.Rlimit{Cur: l.v, Max: l.v}
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(l.res, &cur); err == nil && cur.Max < l.v {
			rs[i] = syscall.Rlimit{Cur: cur.Max, Max: cur.Max}
		}
	}
	// From here on: no allocation (the failure paths below run only when
	// the limit or exec failed, and report it as well as they can).
	for i, l := range lims {
		if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, uintptr(l.res), uintptr(unsafe.Pointer(&rs[i])), 0, 0, 0); e != 0 {
			return fail("set limit %d: %v", l.res, e)
		}
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(pathp)), uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])))
	return fail("run %s: %v", path, e)
}
