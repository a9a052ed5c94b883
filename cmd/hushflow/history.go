package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// newFlowVersionsCmd is `hushflow flow versions NAME`.
func newFlowVersionsCmd() *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use:   "versions NAME --project P [-o table|json|yaml]",
		Short: "List a flow's versions, newest first",
		Args:  cobra.ExactArgs(1),
	}
	format := addOutput(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := requireProject(project); err != nil {
			return err
		}
		path := "/api/v1/projects/" + url.PathEscape(project) + "/flows/" + url.PathEscape(args[0]) + "/versions"
		raw, done, err := getAPI(cmd, path, format)
		if done || err != nil {
			return err
		}
		var out struct {
			Versions []struct {
				Version   int       `json:"version"`
				CreatedAt time.Time `json:"created_at"`
				CreatedBy string    `json:"created_by"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "VERSION\tCREATED\tBY\t")
		for i, v := range out.Versions {
			current := ""
			if i == 0 {
				current = "current"
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", v.Version, v.CreatedAt.UTC().Format(time.RFC3339), v.CreatedBy, current)
		}
		return w.Flush()
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "project of the flow (required)")
	return cmd
}

// newFlowRollbackCmd is `hushflow flow rollback NAME --to N`.
func newFlowRollbackCmd() *cobra.Command {
	var project, to string
	cmd := &cobra.Command{
		Use:   "rollback NAME --to N --project P",
		Short: "Save an earlier version's definition as the flow's new version",
		Long: `Save the definition of version N of a flow as its new version (validated
like flow apply). The versions in between stay; hushflow flow versions lists
them. Rolling back to the definition the flow already has makes no version
and prints "unchanged".`,
		SuggestFor: []string{"revert", "restore"},
		Args:       cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			if to == "" {
				return usageErrorf("--to N is required: the version to roll back to (see hushflow flow versions %s)", args[0])
			}
			n, err := strconv.Atoi(to)
			if err != nil || n < 1 {
				return usageErrorf("--to must be a version number from 1, not %q", to)
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			var f flowInfo
			path := "/api/v1/projects/" + url.PathEscape(project) + "/flows/" + url.PathEscape(args[0]) + "/rollback"
			if err := c.do(cmd.Context(), "POST", path, map[string]int{"version": n}, &f); err != nil {
				return err
			}
			if f.Unchanged {
				fmt.Fprintf(cmd.OutOrStdout(), "flow %s unchanged: version %d already has version %d's definition (project %s)\n", f.Name, f.Version, n, f.Project)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "flow %s rolled back to version %d: now version %d (project %s)\n", f.Name, n, f.Version, f.Project)
			}
			for _, w := range f.Warnings {
				fmt.Fprintf(cmd.OutOrStdout(), "warning: %s\n", w)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "project of the flow (required)")
	cmd.Flags().StringVar(&to, "to", "", "the version whose definition becomes the new version (required)")
	return cmd
}

// newRunRerunCmd is `hushflow run rerun ID`.
func newRunRerunCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "rerun ID [--follow]",
		Short: "Run a run's flow again, in the same environment with the same input",
		Long: `Queue a new run of the flow of run ID (its current version) in the same
environment with the same input: the real input, although every view shows
it masked. The new run records the one it repeats (rerun_of). With --follow
the command streams the new run's events, prints its outcome and exits with
status 1 if it did not succeed.`,
		SuggestFor: []string{"retry", "again", "replay"},
		Args:       cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			var r runInfo
			if err := c.do(cmd.Context(), "POST", "/api/v1/runs/"+url.PathEscape(args[0])+"/rerun", nil, &r); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "run %s %s (rerun of %s)\n", r.ID, r.Status, args[0])
			if !follow {
				fmt.Fprintf(out, "follow it with: hushflow run logs %s --follow\n", r.ID)
				return nil
			}
			return followRun(cmd.Context(), c, out, r.ID, true)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the new run's events until it ends")
	return cmd
}

// newUserCmd is `hushflow user` (organization admins).
func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "List and create users (organization admins)"}
	list := &cobra.Command{
		Use:   "list [-o table|json|yaml]",
		Short: "List users",
		Args:  cobra.NoArgs,
	}
	format := addOutput(list)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		raw, done, err := getAPI(cmd, "/api/v1/users", format)
		if done || err != nil {
			return err
		}
		var out struct {
			Users []struct {
				ID        string    `json:"id"`
				Name      string    `json:"name"`
				Admin     bool      `json:"admin"`
				CreatedAt time.Time `json:"created_at"`
			} `json:"users"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tADMIN\tCREATED")
		for _, u := range out.Users {
			admin := "-"
			if u.Admin {
				admin = "yes"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.ID, u.Name, admin, u.CreatedAt.UTC().Format(time.RFC3339))
		}
		return w.Flush()
	}
	var admin bool
	create := &cobra.Command{
		Use:   "create NAME [--admin]",
		Short: "Create a user (give them a token with hushflow token create --user ID)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			var u struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			}
			if err := c.do(cmd.Context(), "POST", "/api/v1/users", map[string]any{"name": args[0], "admin": admin}, &u); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s created: %s\n", u.Name, u.ID)
			return nil
		},
	}
	create.Flags().BoolVar(&admin, "admin", false, "make the user an organization admin")
	cmd.AddCommand(list, create)
	return cmd
}
