// Command hushflow is the Hushflow server and its command-line client.
package main

import (
	"fmt"
	"os"

	_ "github.com/hushflow/hushflow/blocks/all" // every block type
	"github.com/hushflow/hushflow/engine/sandbox"
)

func main() {
	// The server starts sandbox workers as copies of itself.
	if os.Getenv(sandbox.EnvWorker) == "1" {
		os.Exit(sandbox.WorkerMain())
	}
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "hushflow: "+oneLine(err.Error()))
		os.Exit(1)
	}
}
