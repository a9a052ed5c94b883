package main

import (
	"strings"

	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "hushflow",
		Short: "Hushflow runs workflows whose blocks use secrets, and keeps the values out of sight",
		Long: `Hushflow runs workflows whose blocks use secrets, and keeps the values out of sight.

Server:   hushflow serve
Client:   set HUSHFLOW_ADDR (default 127.0.0.1:8080) and HUSHFLOW_TOKEN, then
          hushflow project create billing
          hushflow token create --name ci`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		// withUsageErrors refuses unknown commands with suggestions.
		Annotations: map[string]string{groupAnnotation: "true"},
	}
	showVersion := root.Flags().Bool("version", false, "print the version of hushflow and of the server (as hushflow version)")
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if *showVersion {
			if len(args) > 0 {
				return usageErrorf("--version takes no arguments")
			}
			return printVersion(cmd.Context(), cmd.OutOrStdout(), envOr("HUSHFLOW_ADDR", defaultAddr))
		}
		return runGroup(cmd, args)
	}
	root.AddCommand(newServeCmd(), newTokenCmd(), newProjectCmd(), newEnvironmentCmd(), newSecretCmd(), newKeysCmd())
	root.AddCommand(newFlowCmd(), newRunCmd(), newInstallationCmd(), newMemberCmd(), newVersionCmd(), newDoctorCmd())
	root.AddCommand(newUserCmd(), newEventCmd())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strictHelp(root)
	return withUsageErrors(root)
}

// strictHelp makes `hushflow help TOPIC` refuse a topic that is not a
// command, with suggestions and exit status 2, as the command itself
// would be refused; cobra printed the root's usage and exited 0.
func strictHelp(root *cobra.Command) {
	for _, h := range root.Commands() {
		if h.Name() != "help" {
			continue
		}
		show := h.Run
		h.Run = nil
		h.RunE = func(cmd *cobra.Command, args []string) error {
			cur := root
			for _, a := range args {
				next := findSub(cur, a)
				if next == nil {
					return unknownCommand(cur, a)
				}
				cur = next
			}
			show(cmd, args)
			return nil
		}
	}
}

// findSub is c's subcommand called name (or one of its aliases).
func findSub(c *cobra.Command, name string) *cobra.Command {
	for _, sub := range c.Commands() {
		if sub.Name() == name || sub.HasAlias(name) {
			return sub
		}
	}
	return nil
}

// oneLine folds an error onto one line for the terminal.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
