package main

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestCLIReferenceCoversEveryCommand keeps docs/cli.md in step with the
// commands: every command the binary has must appear there as
// "hushflow <path>". Add a section for a new verb when this fails.
func TestCLIReferenceCoversEveryCommand(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || c.Name() == "completion" {
				continue
			}
			if path := sub.CommandPath(); !strings.Contains(string(doc), path) {
				t.Errorf("docs/cli.md does not document %q", path)
			}
			walk(sub)
		}
	}
	walk(newRootCmd())
}
