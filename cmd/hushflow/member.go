package main

import (
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/hushflow/hushflow/internal/suggest"
	"github.com/spf13/cobra"
)

// memberRoles are the roles a project member can hold, least first.
var memberRoles = []string{"viewer", "editor", "admin"}

func newMemberCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "member",
		Aliases: []string{"members"},
		Short:   "Manage a project's members and their roles (viewer, editor, admin)",
	}
	var project string
	addProject := func(c *cobra.Command) {
		c.Flags().StringVarP(&project, "project", "p", "", "the project (required)")
	}
	path := func(user string) string {
		p := "/api/v1/projects/" + url.PathEscape(project) + "/members"
		if user != "" {
			p += "/" + url.PathEscape(user)
		}
		return p
	}

	var format *outputFormat
	list := &cobra.Command{
		Use:   "list --project P",
		Short: "List a project's members and their roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			raw, done, err := getAPI(cmd, path(""), format)
			if done || err != nil {
				return err
			}
			_, members, err := listItems[struct {
				UserID    string    `json:"user_id"`
				Name      string    `json:"name"`
				Role      string    `json:"role"`
				UpdatedAt time.Time `json:"updated_at"`
			}](raw, "members")
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "USER\tNAME\tROLE\tUPDATED")
			for _, m := range members {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", m.UserID, m.Name, m.Role, m.UpdatedAt.UTC().Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	addProject(list)
	format = addOutput(list)

	set := &cobra.Command{
		Use:        "set USER ROLE --project P",
		Short:      "Give a user a role in a project: viewer, editor or admin (project admins)",
		SuggestFor: []string{"add", "grant", "update"},
		Args:       cobra.ExactArgs(2),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return memberRoles, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			user, role := args[0], args[1]
			valid := false
			for _, r := range memberRoles {
				valid = valid || r == role
			}
			if !valid {
				msg := "unknown role %q: use " + orList(memberRoles)
				if s := suggest.Nearest(role, memberRoles); s != "" {
					msg = "unknown role %q; did you mean " + fmt.Sprintf("%q", s) + "?"
				}
				return usageErrorf(msg, role)
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "PUT", path(user), map[string]string{"role": role}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s is %s of project %s\n", user, withArticle(role), project)
			return nil
		},
	}
	addProject(set)

	remove := &cobra.Command{
		Use:        "remove USER --project P",
		Short:      "Take a user out of a project (project admins)",
		SuggestFor: []string{"delete", "rm", "revoke"},
		Args:       cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", path(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s is no longer a member of project %s\n", args[0], project)
			return nil
		},
	}
	addProject(remove)

	cmd.AddCommand(list, set, remove)
	return cmd
}

func withArticle(role string) string {
	if role == "admin" || role == "editor" {
		return "an " + role
	}
	return "a " + role
}
