package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newProjectCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "project", Short: "Manage projects"}
	cmd.AddCommand(&cobra.Command{
		Use:   "create NAME",
		Short: "Create a project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "POST", "/api/v1/projects", map[string]string{"name": args[0]}, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "created project", args[0])
			return nil
		},
	}, listNamesCmd("List projects", "/api/v1/projects", "projects"), newProjectDeleteCmd())
	return cmd
}

// newProjectDeleteCmd is `project delete NAME`: it asks for the name again
// on a terminal, and needs --yes anywhere else.
func newProjectDeleteCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:        "delete NAME [--yes]",
		Short:      "Delete a project and everything in it: flows, runs, installations, secrets (organization admins)",
		SuggestFor: []string{"remove", "rm"},
		Long: `Delete a project and everything in it: its flows and their versions, its
runs and their events, its app installations, the secrets of its scopes
(every version's value wiped) and its members. Secrets of the organization
and of environments stay. Refused while a run of the project is queued,
running or waiting.

On a terminal the command asks you to type the project's name; elsewhere
(a script, CI) it needs --yes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !yes {
				in, ok := cmd.InOrStdin().(*os.File)
				if !ok || !term.IsTerminal(int(in.Fd())) {
					return usageErrorf("project delete deletes project %s with its flows, runs, installations and secrets: add --yes to confirm (stdin is not a terminal to ask on)", name)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "This deletes project %s with its flows, runs, installations and secrets (values wiped); it cannot be undone.\nType the project's name to confirm: ", name)
				typed, err := bufio.NewReader(in).ReadString('\n')
				if err != nil && typed == "" {
					return fmt.Errorf("no confirmation read: %w", err)
				}
				if strings.TrimSpace(typed) != name {
					return errors.New("the name typed is not the project's: nothing was deleted")
				}
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			var out struct {
				Flows         int `json:"flows"`
				Runs          int `json:"runs"`
				Installations int `json:"installations"`
				Secrets       int `json:"secrets"`
			}
			if err := c.do(cmd.Context(), "DELETE", "/api/v1/projects/"+url.PathEscape(name), nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted project %s: %s, %s, %s, %s (values wiped)\n", name,
				count(out.Flows, "flow"), count(out.Runs, "run"), count(out.Installations, "installation"), count(out.Secrets, "secret"))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
}

// count is "1 flow" or "3 flows".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func newEnvironmentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "environment", Aliases: []string{"env"}, Short: "Manage environments"}
	cmd.AddCommand(&cobra.Command{
		Use:   "create NAME",
		Short: "Create an environment (organization admins)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "POST", "/api/v1/environments", map[string]string{"name": args[0]}, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "created environment", args[0])
			return nil
		},
	}, listNamesCmd("List environments", "/api/v1/environments", "environments"), protectCmd(true), protectCmd(false))
	return cmd
}

// protectCmd is `environment protect NAME` (or unprotect).
func protectCmd(protect bool) *cobra.Command {
	use, short := "protect NAME", "Protect an environment: its secrets resolve only in its own runs and in the environments a secret names with --readable-from (organization admins)"
	if !protect {
		use, short = "unprotect NAME", "Stop protecting an environment (organization admins)"
	}
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "PUT", "/api/v1/environments/"+url.PathEscape(args[0]), map[string]bool{"protected": protect}, nil); err != nil {
				return err
			}
			state := "protected"
			if !protect {
				state = "no longer protected"
			}
			fmt.Fprintln(cmd.OutOrStdout(), "environment", args[0], "is", state)
			return nil
		},
	}
}

// listNamesCmd is `project list` or `environment list`: GET path, whose
// answer lists the items under key.
func listNamesCmd(short, path, key string) *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: short, Args: cobra.NoArgs}
	format := addOutput(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return listNames(cmd, path, key, format)
	}
	return cmd
}

func listNames(cmd *cobra.Command, path, key string, format *outputFormat) error {
	raw, done, err := getAPI(cmd, path, format)
	if done || err != nil {
		return err
	}
	var out map[string][]struct {
		Name      string    `json:"name"`
		CreatedAt time.Time `json:"created_at"`
		Protected *bool     `json:"protected"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	environments := key == "environments" // which have a PROTECTED column
	if environments {
		fmt.Fprintln(w, "NAME\tCREATED\tPROTECTED")
	} else {
		fmt.Fprintln(w, "NAME\tCREATED")
	}
	for _, it := range out[key] {
		line := it.Name + "\t" + it.CreatedAt.UTC().Format(time.RFC3339)
		if environments {
			line += "\t" + map[bool]string{true: "yes", false: "no"}[it.Protected != nil && *it.Protected]
		}
		fmt.Fprintln(w, line)
	}
	return w.Flush()
}
