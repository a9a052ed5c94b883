// Command hushflow is the Hushflow server and its command-line client.
package main

import (
	"fmt"
	"os"

	_ "github.com/hushflow/hushflow/blocks/all" // every block type
	execblock "github.com/hushflow/hushflow/blocks/exec"
	"github.com/hushflow/hushflow/engine/sandbox"
)

func main() {
	// The server starts sandbox workers as copies of itself.
	if os.Getenv(sandbox.EnvWorker) == "1" {
		os.Exit(sandbox.WorkerMain())
	}
	// The exec block starts its commands through a copy of itself that
	// sets their resource limits.
	if os.Getenv(execblock.EnvLauncher) == "1" {
		os.Exit(execblock.LauncherMain())
	}
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "hushflow: "+oneLine(err.Error()))
		os.Exit(exitStatus(err))
	}
}
