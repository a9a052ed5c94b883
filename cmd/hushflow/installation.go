package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// installationInfo is an app installation as the API returns it: its
// config holds expressions (secrets.NAME), never resolved values.
type installationInfo struct {
	Name      string            `json:"name"`
	App       string            `json:"app"`
	Project   string            `json:"project"`
	Config    map[string]string `json:"config"`
	UpdatedAt time.Time         `json:"updated_at"`
	UpdatedBy string            `json:"updated_by"`
	Warnings  []string          `json:"warnings"`
}

func newInstallationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "installation",
		Aliases: []string{"installations"},
		Short:   "Manage a project's app installations (config fields are expressions such as secrets.SLACK_BOT_TOKEN)",
	}
	var project string
	addProject := func(c *cobra.Command) {
		c.Flags().StringVarP(&project, "project", "p", "", "project of the installation (required)")
	}
	base := func() string { return "/api/v1/projects/" + url.PathEscape(project) + "/installations" }

	var listFormat *outputFormat
	list := &cobra.Command{
		Use:   "list --project P",
		Short: "List a project's app installations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			raw, done, err := getAPI(cmd, base(), listFormat)
			if done || err != nil {
				return err
			}
			_, items, err := listItems[installationInfo](raw, "installations")
			if err != nil {
				return err
			}
			return installationTable(cmd.OutOrStdout(), items)
		},
	}
	addProject(list)
	listFormat = addOutput(list)

	var getFormat *outputFormat
	get := &cobra.Command{
		Use:   "get NAME --project P",
		Short: "Show an app installation: its app and config expressions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			raw, done, err := getAPI(cmd, base()+"/"+url.PathEscape(args[0]), getFormat)
			if done || err != nil {
				return err
			}
			var inst installationInfo
			if err := json.Unmarshal(raw, &inst); err != nil {
				return err
			}
			return installationTable(cmd.OutOrStdout(), []installationInfo{inst})
		},
	}
	addProject(get)
	getFormat = addOutput(get)

	var app string
	var sets []string
	create := &cobra.Command{
		Use:   "create NAME --app APP --project P --config FIELD=EXPRESSION ...",
		Short: "Install an app in a project",
		Long: `Install an app in a project. Each --config sets one field of the app's
configuration to an expression, evaluated only when an action runs; a
secret field must reference a stored secret:

  hushflow installation create notifier --app slack -p billing \
    --config bot_token=secrets.SLACK_BOT_TOKEN

A literal is written as a JavaScript string: --config base_url="'https://slack.example.com/api'".
GET /api/v1/apps (docs/apps.md) lists the apps and their fields.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			if app == "" {
				return usageErrorf("--app is required (slack, anthropic, bearer_api, ...: see docs/apps.md)")
			}
			cfg, err := parseConfig(sets, nil)
			if err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			var inst installationInfo
			if err := c.do(cmd.Context(), "POST", base(), map[string]any{"app": app, "name": args[0], "config": cfg}, &inst); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created installation %s of app %s (project %s)\n", inst.Name, inst.App, inst.Project)
			printInstallationWarnings(cmd.ErrOrStderr(), inst.Warnings)
			return nil
		},
	}
	addProject(create)
	create.Flags().StringVar(&app, "app", "", "the app to install (required)")
	create.Flags().StringArrayVar(&sets, "config", nil, "FIELD=EXPRESSION, one config field (repeatable)")

	var unset []string
	update := &cobra.Command{
		Use:   "update NAME --project P [--config FIELD=EXPRESSION ...] [--unset FIELD ...]",
		Short: "Change config fields of an app installation (the others stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			if len(sets) == 0 && len(unset) == 0 {
				return usageErrorf("nothing to change: give --config FIELD=EXPRESSION or --unset FIELD")
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			path := base() + "/" + url.PathEscape(args[0])
			var cur installationInfo
			if err := c.do(cmd.Context(), "GET", path, nil, &cur); err != nil {
				return err
			}
			for _, f := range unset {
				if _, ok := cur.Config[f]; !ok {
					return usageErrorf("--unset %s: installation %s has no field %s (it has %s)", f, cur.Name, f, orList(sortedKeys(cur.Config)))
				}
			}
			cfg, err := parseConfig(sets, cur.Config)
			if err != nil {
				return err
			}
			for _, f := range unset {
				delete(cfg, f)
			}
			var inst installationInfo
			if err := c.do(cmd.Context(), "PUT", path, map[string]any{"config": cfg}, &inst); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "updated installation %s of app %s (project %s)\n", inst.Name, inst.App, inst.Project)
			printInstallationWarnings(cmd.ErrOrStderr(), inst.Warnings)
			return nil
		},
	}
	addProject(update)
	update.Flags().StringArrayVar(&sets, "config", nil, "FIELD=EXPRESSION, one config field to set (repeatable)")
	update.Flags().StringArrayVar(&unset, "unset", nil, "a config field to remove (repeatable)")

	del := &cobra.Command{
		Use:        "delete NAME --project P",
		Short:      "Delete an app installation (flows that use it then fail at that block)",
		SuggestFor: []string{"remove", "rm", "uninstall"},
		Args:       cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			// The flows that name it, read first: their runs will fail at
			// its blocks from now on.
			var use struct {
				Installations map[string][]string `json:"installations"`
			}
			_ = c.do(cmd.Context(), "GET", "/api/v1/projects/"+url.PathEscape(project)+"/installation-usage", nil, &use)
			if err := c.do(cmd.Context(), "DELETE", base()+"/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted installation %s (project %s)\n", args[0], project)
			if fs := use.Installations[args[0]]; len(fs) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: flows %s use it: their runs fail at its app blocks until an installation named %s exists again\n",
					strings.Join(fs, ", "), args[0])
			}
			return nil
		},
	}
	addProject(del)

	cmd.AddCommand(list, get, create, update, del)
	return cmd
}

// parseConfig applies FIELD=EXPRESSION settings over base (copied).
func parseConfig(sets []string, base map[string]string) (map[string]string, error) {
	cfg := map[string]string{}
	for k, v := range base {
		cfg[k] = v
	}
	for _, s := range sets {
		field, expr, ok := strings.Cut(s, "=")
		if !ok || field == "" || expr == "" {
			// The text may hold a pasted token: it is not repeated.
			return nil, usageErrorf("--config takes FIELD=EXPRESSION, e.g. --config bot_token=secrets.SLACK_BOT_TOKEN")
		}
		cfg[field] = expr
	}
	return cfg, nil
}

func printInstallationWarnings(w io.Writer, warnings []string) {
	for _, s := range warnings {
		fmt.Fprintln(w, "warning: "+s)
	}
}

// installationTable prints installations as installation list does.
func installationTable(out io.Writer, list []installationInfo) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tAPP\tCONFIG\tUPDATED\tBY")
	for _, in := range list {
		var cfg []string
		for _, k := range sortedKeys(in.Config) {
			cfg = append(cfg, k+"="+in.Config[k])
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", in.Name, in.App, dash(strings.Join(cfg, " ")),
			in.UpdatedAt.UTC().Format(time.RFC3339), dash(in.UpdatedBy))
	}
	return w.Flush()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
