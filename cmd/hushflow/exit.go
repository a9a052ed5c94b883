package main

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses of the hushflow command; docs/cli.md lists them.
const (
	exitOK          = 0
	exitError       = 1 // anything not below: an invalid definition, a failed run, a 409
	exitUsage       = 2 // unknown command or flag, bad argument, unknown output format
	exitAuth        = 3 // no token, or the server answered 401 or 403
	exitNotFound    = 4 // the server answered 404, or the named thing is not there
	exitUnavailable = 5 // the server answered 5xx, or could not be reached
	exitRateLimited = 6 // the server answered 429: too many requests with this token; retry after a pause
)

// statusError is an error with the exit status it ends the command with.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// usageErrorf is a mistake in the command line: exit status 2.
func usageErrorf(format string, args ...any) error {
	return &statusError{status: exitUsage, err: fmt.Errorf(format, args...)}
}

// notFoundErrorf is something the command looked for and did not find
// (exit status 4), like a 404.
func notFoundErrorf(format string, args ...any) error {
	return &statusError{status: exitNotFound, err: fmt.Errorf(format, args...)}
}

// unreachableError is a request that got no HTTP answer: connection
// refused, DNS failure, timeout.
type unreachableError struct {
	base string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Hushflow server at %s: %v", e.base, e.err)
}
func (e *unreachableError) Unwrap() error { return e.err }

// exitStatus is the exit status for the error a command returned.
func exitStatus(err error) int {
	if err == nil {
		return exitOK
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.status
	}
	var ue *unreachableError
	if errors.As(err, &ue) {
		return exitUnavailable
	}
	var ae *apiError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
			return exitAuth
		case ae.Status == http.StatusNotFound:
			return exitNotFound
		case ae.Status == http.StatusTooManyRequests:
			return exitRateLimited
		case ae.Status >= 500:
			return exitUnavailable
		}
	}
	return exitError
}

// withUsageErrors makes the mistakes cobra finds in a command line (an
// unknown flag, a wrong number of arguments, an unknown subcommand) usage
// errors, in root and every command below it. A command that only groups
// others (hushflow secret) prints its help when called alone and refuses
// an unknown subcommand with cobra's suggestions; without this cobra
// printed the help and exited 0 for `hushflow secret lst`.
func withUsageErrors(root *cobra.Command) *cobra.Command {
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// `hushflow secret lst -p billing`: the flags were parsed for
		// `secret`, which has none; the mistake is the verb.
		if isGroup(c) && c.Flags().NArg() > 0 {
			return unknownCommand(c, c.Flags().Arg(0))
		}
		return &statusError{status: exitUsage, err: err}
	})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		switch {
		case isGroup(c):
			if c.Annotations == nil {
				c.Annotations = map[string]string{}
			}
			c.Annotations[groupAnnotation] = "true"
			c.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not apply itself
			c.Args = cobra.ArbitraryArgs
			if c.RunE == nil {
				c.RunE = runGroup
			}
		case c.Args != nil:
			args := c.Args
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return &statusError{status: exitUsage, err: err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

// runGroup runs a command that groups others: its help, or an unknown
// command error.
func runGroup(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return unknownCommand(cmd, args[0])
}

// isGroup says whether c only groups other commands.
func isGroup(c *cobra.Command) bool {
	return c.HasSubCommands() && (c.Run == nil && c.RunE == nil || c.Annotations[groupAnnotation] != "")
}

// groupAnnotation marks the commands withUsageErrors made runnable.
const groupAnnotation = "hushflow.group"

// unknownCommand is cobra's "unknown command" error with its "Did you
// mean" suggestions (by Levenshtein distance, by prefix, and the
// commands' SuggestFor).
func unknownCommand(c *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, c.CommandPath())
	if s := slices.Compact(c.SuggestionsFor(name)); len(s) > 0 {
		msg += "; did you mean " + strings.Join(quoteAll(s), " or ") + "?"
	} else {
		msg += "; see " + c.CommandPath() + " --help"
	}
	return &statusError{status: exitUsage, err: errors.New(msg)}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
