// Command hushflow is the Hushflow server and its command-line client.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "hushflow: "+oneLine(err.Error()))
		os.Exit(1)
	}
}
