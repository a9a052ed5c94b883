package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
)

// newEventCmd is `event publish`: an event for the project's
// event-triggered flows (POST /api/v1/projects/{p}/events).
func newEventCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "event",
		Aliases: []string{"events"},
		Short:   "Publish events that start the project's event-triggered flows",
	}
	var project, environment, payload string
	publish := &cobra.Command{
		Use:   "publish TOPIC --project P [--environment E] [--payload JSON|@FILE]",
		Short: "Publish an event: each event-triggered flow whose topic and filter match queues a run",
		Long: `Publish an event on TOPIC (such as records:created) in a project. Each of
the project's flows with an event trigger whose topic pattern and filter
match queues a run, in --environment (default development), with the
payload as its input. Prints the runs started, one per line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			req := map[string]any{"topic": args[0]}
			if environment != "" {
				req["environment"] = environment
			}
			if payload != "" {
				v, err := jsonFlag("payload", payload)
				if err != nil {
					return err
				}
				req["payload"] = v
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			var out struct {
				Runs []string `json:"runs"`
			}
			if err := c.do(cmd.Context(), "POST", "/api/v1/projects/"+url.PathEscape(project)+"/events", req, &out); err != nil {
				return err
			}
			if len(out.Runs) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "published %s: no flow of project %s matched\n", args[0], project)
				return nil
			}
			for _, id := range out.Runs {
				fmt.Fprintf(cmd.OutOrStdout(), "run %s queued\n", id)
			}
			return nil
		},
	}
	publish.Flags().StringVarP(&project, "project", "p", "", "the project (required)")
	publish.Flags().StringVarP(&environment, "environment", "e", "", "the environment of the runs (default development)")
	publish.Flags().StringVar(&payload, "payload", "", "the event's payload, the runs' input: JSON, or @FILE")
	cmd.AddCommand(publish)
	return cmd
}
