package exec_test

import (
	"fmt"
	"os"
	osexec "os/exec"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/blocks/exec"
)

// The launcher sets the command's address-space limit on itself, a Go
// process already larger than that limit, and then executes the command.
// Any mapping in between (the first collection starting its mark workers,
// a growing heap) fails, and the runtime dies with "out of memory" (CI,
// stop 22: TestShellWithSecrets exited 2 with a trace in runtime/mgc.go).
// Where the first collection falls depends on the environment's size and
// GOGC; the sweep puts it on either side of the limit, and every launch
// must still reach the command. Without the fix 4 to 14 of these 60 launches
// died (91 of 195 in a wider sweep under -race).
func TestLauncherUnderAddressLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("60 launches of the launcher: skipped in -short mode")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for gogc := 56; gogc <= 67; gogc++ {
		for _, pad := range []int{30000, 70000, 90000, 110000, 120000} {
			cmd := osexec.Command(self, "-hushflow-exec-launcher", "as=33554432,cpu=5,nofile=64,core=0", "--", "/bin/true", "true")
			cmd.Env = append(os.Environ(), exec.EnvLauncher+"=1", fmt.Sprintf("GOGC=%d", gogc), "PAD="+strings.Repeat("x", pad))
			if out, err := cmd.CombinedOutput(); err != nil {
				first, _, _ := strings.Cut(string(out), "\n")
				failed = append(failed, fmt.Sprintf("GOGC=%d pad=%d: %v: %s", gogc, pad, err, first))
			}
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%d launches died before the command ran:\n%s", len(failed), strings.Join(failed, "\n"))
	}
}
