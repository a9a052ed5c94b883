package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// doctorReport is the server's report of a redaction self-test.
type doctorReport struct {
	OK          bool     `json:"ok"`
	Project     string   `json:"project"`
	Environment string   `json:"environment"`
	Database    string   `json:"database"`
	Forms       []string `json:"forms"`
	Sinks       []string `json:"sinks"`
	Results     []struct {
		Sink   string `json:"sink"`
		Form   string `json:"form"`
		Status string `json:"status"`
		Detail string `json:"detail"`
	} `json:"results"`
	Leaked  []string `json:"leaked"`
	Elapsed string   `json:"elapsed"`
	Notes   []string `json:"notes"`
}

// errLeaked ends `doctor redaction` with exit status 1 when a sink leaked.
type errLeaked struct{ sinks []string }

func (e errLeaked) Error() string {
	return "redaction self-test failed: the canary leaked or could not be checked in " + strings.Join(e.sinks, ", ")
}

func newDoctorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Self-tests of a running server (run them after an upgrade or a configuration change)",
	}
	var project, environment string
	var format *outputFormat
	red := &cobra.Command{
		Use:   "redaction",
		Short: "Check that a canary secret is masked in every sink and encoding (project admins)",
		Long: `Run the server's redaction self-test in a project and environment: the server
plants a random canary secret, runs a throwaway flow that pushes it in every
encoding the redactor masks (plain, base64, base64url, hex, URL, JSON, HTML)
through every sink (run logs, errors, outputs, HTTP records through a loopback
echo, exec output when exec is enabled, the run's output, the run list, the
events, the live stream, the database rows of the run, the server log), and
reports each sink and form as masked, leaked, skipped or missing. The canary,
the flow and the run are deleted afterwards; audit records stay.

Exit status 0 when every sink masked every form, 1 when one leaked or could
not be checked (the table and the last line name the sink).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if project == "" {
				return usageErrorf("--project is required")
			}
			if environment == "" {
				return usageErrorf("--environment is required")
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.do(cmd.Context(), "POST", "/api/v1/projects/"+project+"/doctor/redaction",
				map[string]string{"environment": environment}, &raw); err != nil {
				return err
			}
			var rep doctorReport
			if err := json.Unmarshal(raw, &rep); err != nil {
				return fmt.Errorf("the server's report is not JSON: %w", err)
			}
			out := cmd.OutOrStdout()
			if format.structured() {
				if err := printAPI(out, format.value, raw); err != nil {
					return err
				}
			} else {
				w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "SINK\tFORM\tSTATUS\tDETAIL")
				for _, r := range rep.Results {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Sink, r.Form, r.Status, r.Detail)
				}
				if err := w.Flush(); err != nil {
					return err
				}
				counts := map[string]int{}
				for _, r := range rep.Results {
					counts[r.Status]++
				}
				verdict := "all masked"
				if !rep.OK {
					verdict = "LEAKED in " + strings.Join(rep.Leaked, ", ")
				}
				fmt.Fprintf(out, "%s: %d sinks x %d forms in project %s, environment %s (%s, %s): %d masked, %d leaked, %d missing, %d skipped\n",
					verdict, len(rep.Sinks), len(rep.Forms), rep.Project, rep.Environment, rep.Database, rep.Elapsed,
					counts["masked"], counts["leaked"], counts["missing"], counts["skipped"])
			}
			if !rep.OK {
				return &statusError{status: exitError, err: errLeaked{rep.Leaked}}
			}
			return nil
		},
	}
	red.Flags().StringVarP(&project, "project", "p", "", "project to test in (required)")
	red.Flags().StringVarP(&environment, "environment", "e", "", "environment whose runs are tested (required)")
	format = addOutput(red)
	cmd.AddCommand(red)
	return cmd
}
