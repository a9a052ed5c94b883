package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// runInfo is a run as the API returns it (output and error redacted).
type runInfo struct {
	ID          string          `json:"id"`
	Project     string          `json:"project"`
	Flow        string          `json:"flow"`
	FlowVersion int             `json:"flow_version"`
	Environment string          `json:"environment"`
	Trigger     string          `json:"trigger"`
	Status      string          `json:"status"`
	Error       string          `json:"error"`
	Output      json.RawMessage `json:"output"`
	QueuedAt    time.Time       `json:"queued_at"`
	StartedAt   *time.Time      `json:"started_at"`
	FinishedAt  *time.Time      `json:"finished_at"`
	CreatedBy   string          `json:"created_by"`
	AvailableAt time.Time       `json:"available_at"`
	Resumes     int             `json:"resumes"`
	ResumeWhy   string          `json:"resume_reason"`
	RerunOf     string          `json:"rerun_of"`
	ParentRunID string          `json:"parent_run_id"`
	ParentBlock string          `json:"parent_block"`
	Children    []struct {
		ID          string `json:"id"`
		Flow        string `json:"flow"`
		Status      string `json:"status"`
		ParentBlock string `json:"parent_block"`
	} `json:"children"`
}

func (r *runInfo) duration() string {
	if r.StartedAt == nil || r.FinishedAt == nil {
		return ""
	}
	return r.FinishedAt.Sub(*r.StartedAt).Round(time.Millisecond).String()
}

// eventInfo is a stored, redacted run event.
type eventInfo struct {
	Seq   int       `json:"seq"`
	At    time.Time `json:"at"`
	Type  string    `json:"type"`
	Block string    `json:"block"`
	Data  any       `json:"data"`
}

// errRunNotSucceeded makes the command exit with status 1. Its message
// leaves out the run's error, which the outcome printed just before.
type errRunNotSucceeded struct{ r *runInfo }

func (e *errRunNotSucceeded) Error() string {
	return fmt.Sprintf("run %s %s", e.r.ID, e.r.Status)
}

func newFlowRunCmd() *cobra.Command {
	var project, environment, input string
	var follow bool
	var wait time.Duration
	var format *outputFormat
	cmd := &cobra.Command{
		Use:   "run NAME --project P --environment E [--input JSON|@FILE] [--follow | --wait D] [-o json]",
		Short: "Queue a run of a flow; --follow streams its events until it ends, --wait waits for its end",
		Long: `Queue a run of a flow in an environment. --input is the run's input as JSON,
or @FILE to read it from a file. With --follow the command prints each event
of the run as it happens (time, type, block and a short summary; values of
secrets appear masked), then the final status and output, and exits with
status 1 if the run did not succeed. With --wait D it waits at most D for
the run to end, then prints its status and output: exit status 1 if it
ended otherwise than succeeded, 0 if it succeeded or is still going (it
says so). -o json or -o yaml prints the run as the API answered it (with
--wait: as it was when the wait ended), for scripts.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			if environment == "" {
				return usageErrorf("--environment is required (for example development, staging or production)")
			}
			if follow && (wait != 0 || format.structured()) {
				return usageErrorf("--follow prints the run's events; use it without --wait and -o")
			}
			if wait < 0 || wait > time.Hour {
				return usageErrorf("--wait must be a duration from 1s to 1h, such as 30s")
			}
			req := map[string]any{"environment": environment}
			if input != "" {
				v, err := jsonFlag("input", input)
				if err != nil {
					return err
				}
				req["input"] = v
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			path := "/api/v1/projects/" + url.PathEscape(project) + "/flows/" + url.PathEscape(args[0]) + "/runs"
			if wait > 0 {
				path += "?wait=" + url.QueryEscape(wait.String())
			}
			var raw json.RawMessage
			if err := c.do(cmd.Context(), "POST", path, req, &raw); err != nil {
				return err
			}
			var r runInfo
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format.structured() {
				if err := printAPI(out, format.value, raw); err != nil {
					return err
				}
				if wait > 0 && (r.Status == "failed" || r.Status == "canceled") {
					return &errRunNotSucceeded{&r}
				}
				return nil
			}
			if wait > 0 {
				switch r.Status {
				case "succeeded", "failed", "canceled":
					printOutcome(out, &r)
					if r.Status != "succeeded" {
						return &errRunNotSucceeded{&r}
					}
				default:
					fmt.Fprintf(out, "run %s still %s after %s\nfollow it with: hushflow run logs %s --follow\n", r.ID, r.Status, wait, r.ID)
				}
				return nil
			}
			if !follow {
				fmt.Fprintf(out, "run %s %s\nfollow it with: hushflow run logs %s --follow\n", r.ID, r.Status, r.ID)
				return nil
			}
			fmt.Fprintf(out, "run %s %s\n", r.ID, r.Status)
			return followRun(cmd.Context(), c, out, r.ID, true)
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "project of the flow (required)")
	cmd.Flags().StringVarP(&environment, "environment", "e", "", "environment of the run (required)")
	cmd.Flags().StringVarP(&input, "input", "i", "", "input of the run: JSON, or @FILE")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the run's events until it ends")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait at most this long for the run to end (1s to 1h), then print its outcome")
	format = addOutputWith(cmd, formatTable, formatTable, formatJSON, formatYAML)
	return cmd
}

// followRun prints the run's events as they are stored until it ends;
// with final, it then prints the outcome and fails unless it succeeded. A
// stream that ends before the run (the replica serving it shut down, the
// connection dropped) is followed again from the last event printed, for
// as long as the server answers within reconnectFor.
func followRun(ctx context.Context, c *client, out io.Writer, id string, final bool) error {
	after, down := 0, time.Time{}
	for {
		seen := after
		ended, err := followOnce(ctx, c, out, id, &after, final)
		if ended {
			break
		}
		var api *apiError
		if ctx.Err() != nil || errors.As(err, &api) && api.Status != http.StatusServiceUnavailable {
			return err
		}
		if down.IsZero() || after > seen {
			down = time.Now() // events came: the stream is new trouble
		}
		if time.Since(down) > reconnectFor {
			if err == nil {
				return fmt.Errorf("the event stream of run %s ended early; see hushflow run get %s", id, id)
			}
			// Keeps the error's exit status (5 when the server cannot be
			// reached), and says that the run itself goes on.
			return fmt.Errorf("%w; stopped following run %s, which goes on on the server: follow it again with: hushflow run logs %s --follow", err, id, id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if !final {
		return nil
	}
	var r runInfo
	if err := c.do(ctx, "GET", "/api/v1/runs/"+url.PathEscape(id), nil, &r); err != nil {
		return err
	}
	printOutcome(out, &r)
	if r.Status != "succeeded" {
		return &errRunNotSucceeded{&r}
	}
	return nil
}

// reconnectFor is how long followRun tries to follow again a stream that
// ended early while the server does not answer.
var reconnectFor = 60 * time.Second

// followOnce streams the events after *after, printing each and moving
// *after; ended says whether the stream reached the run's end. With
// outcome (the outcome is printed after the stream), run_finished's line
// leaves out the run's error, so that it is printed once.
func followOnce(ctx context.Context, c *client, out io.Writer, id string, after *int, outcome bool) (ended bool, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/runs/%s/events?follow=1&after=%d", c.base, url.PathEscape(id), *after), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{}).Do(req) // no timeout: a run may take long
	if err != nil {
		return false, &unreachableError{base: c.base, err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var eb struct {
			Error apiError `json:"error"`
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, &eb) == nil && eb.Error.Msg != "" {
			eb.Error.Status = resp.StatusCode
			return false, &eb.Error
		}
		return false, &apiError{Status: resp.StatusCode, Msg: http.StatusText(resp.StatusCode)}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var typ string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if typ == "end" {
				return true, nil
			}
			var e eventInfo
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e) == nil && e.Seq > *after {
				if m, ok := e.Data.(map[string]any); ok && outcome && e.Type == "run_finished" {
					delete(m, "error")
				}
				fmt.Fprintln(out, eventLine(e))
				*after = e.Seq
			}
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return false, fmt.Errorf("event stream: %w", err)
	}
	return false, nil
}

func printOutcome(out io.Writer, r *runInfo) {
	fmt.Fprintf(out, "run %s %s", r.ID, r.Status)
	if d := r.duration(); d != "" {
		fmt.Fprintf(out, " in %s", d)
	}
	fmt.Fprintln(out)
	printErrorAndOutput(out, r)
}

// printErrorAndOutput prints a run's error and output, when it has them.
func printErrorAndOutput(out io.Writer, r *runInfo) {
	if r.Error != "" {
		fmt.Fprintf(out, "error: %s\n", r.Error)
	}
	if len(r.Output) > 0 && string(r.Output) != "null" {
		var buf bytes.Buffer
		if json.Indent(&buf, r.Output, "", "  ") == nil {
			fmt.Fprintf(out, "output: %s\n", buf.String())
		}
	}
}

// eventLine is one readable line: time, type, block, summary of data.
func eventLine(e eventInfo) string {
	block := e.Block
	if block == "" {
		block = "-"
	}
	return strings.TrimRight(fmt.Sprintf("%s  %-18s %-12s %s", e.At.Local().Format("15:04:05.000"), e.Type, block, summarize(e.Type, e.Data)), " ")
}

// summarize renders event data compactly: known event types pick their
// telling fields; anything else is key=value pairs. Long values are cut.
func summarize(typ string, data any) string {
	m, ok := data.(map[string]any)
	if !ok {
		return clip(compact(data), 200)
	}
	pick := func(keys ...string) string {
		var parts []string
		for _, k := range keys {
			if v, ok := m[k]; ok && v != nil {
				parts = append(parts, k+"="+clip(compact(v), 120))
			}
		}
		return strings.Join(parts, " ")
	}
	switch typ {
	case "log":
		return fmt.Sprintf("[%v] %s", m["level"], clip(compact(m["message"]), 200))
	case "run_finished":
		return pick("status", "error")
	case "block_started":
		return pick("type", "config")
	case "block_finished":
		return pick("duration_ms", "attempt", "items", "output")
	case "block_failed", "block_retry":
		return pick("error", "attempt", "retry_in_ms", "continued")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return clip(pick(keys...), 240)
}

func compact(v any) string {
	if s, ok := v.(string); ok {
		return strings.Join(strings.Fields(s), " ")
	}
	// Shown to a person: <, > and & as they are, not \u003c.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// runStatuses are the statuses a run may have.
var runStatuses = []string{"queued", "running", "waiting", "succeeded", "failed", "canceled"}

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "run", Short: "Inspect, cancel and rerun runs"}
	cmd.AddCommand(newRunRerunCmd())

	var format *outputFormat
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Print a run's status, timing, error and output (redacted)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, done, err := getAPI(cmd, "/api/v1/runs/"+url.PathEscape(args[0]), format)
			if done || err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var r runInfo
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "id:\t%s\nflow:\t%s (version %d)\nproject:\t%s\nenvironment:\t%s\ntrigger:\t%s (by %s)\nstatus:\t%s\nqueued:\t%s\n",
				r.ID, r.Flow, r.FlowVersion, r.Project, r.Environment, r.Trigger, r.CreatedBy, r.Status, r.QueuedAt.UTC().Format(time.RFC3339))
			if r.StartedAt != nil {
				fmt.Fprintf(w, "started:\t%s\n", r.StartedAt.UTC().Format(time.RFC3339))
			}
			if r.Status == "waiting" {
				fmt.Fprintf(w, "waiting until:\t%s (holds no worker)\n", r.AvailableAt.UTC().Format(time.RFC3339))
			}
			if r.Resumes > 0 {
				fmt.Fprintf(w, "interrupted:\t%d time(s); last: %s\n", r.Resumes, r.ResumeWhy)
			}
			if r.FinishedAt != nil {
				fmt.Fprintf(w, "finished:\t%s (took %s)\n", r.FinishedAt.UTC().Format(time.RFC3339), r.duration())
			}
			if r.RerunOf != "" {
				fmt.Fprintf(w, "rerun of:\t%s\n", r.RerunOf)
			}
			if r.ParentRunID != "" {
				fmt.Fprintf(w, "parent:\t%s (block %s)\n", r.ParentRunID, r.ParentBlock)
			}
			for i, c := range r.Children {
				label := ""
				if i == 0 {
					label = "children:"
				}
				fmt.Fprintf(w, "%s\t%s %s, %s (block %s)\n", label, c.ID, c.Flow, c.Status, c.ParentBlock)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			printErrorAndOutput(out, &r)
			return nil
		},
	}
	format = addOutput(get)
	format.aliases = map[string]string{"text": formatTable} // its name before -o table

	var follow bool
	logs := &cobra.Command{
		Use:        "logs ID [--follow]",
		SuggestFor: []string{"events", "tail", "watch"},
		Short:      "Print a run's events (redacted), one line each; --follow streams them until the run ends",
		Args:       cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if follow {
				return followRun(cmd.Context(), c, out, args[0], false)
			}
			after := 0
			for {
				var page struct {
					Events []eventInfo `json:"events"`
					More   bool        `json:"more"`
				}
				if err := c.do(cmd.Context(), "GET", fmt.Sprintf("/api/v1/runs/%s/events?after=%d", url.PathEscape(args[0]), after), nil, &page); err != nil {
					return err
				}
				for _, e := range page.Events {
					fmt.Fprintln(out, eventLine(e))
					after = e.Seq
				}
				if !page.More {
					return nil
				}
			}
		},
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "stream events until the run ends")

	var project, flow, status, environment string
	var limit int
	var listFormat *outputFormat
	list := &cobra.Command{
		Use:   "list --project P [--flow F] [--status S] [--environment E]",
		Short: "List a project's runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"flow": flow, "status": status, "environment": environment} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit < 1 {
				return usageErrorf("--limit must be at least 1")
			}
			if status != "" && !slices.Contains(runStatuses, status) {
				return usageErrorf("unknown run status %q; use one of: %s", status, strings.Join(runStatuses, ", "))
			}
			// The API gives at most 200 runs a page; more are fetched
			// page by page.
			var runs []runInfo
			var items []json.RawMessage
			for len(runs) < limit {
				q.Set("limit", fmt.Sprint(min(limit-len(runs), 200)))
				var raw json.RawMessage
				if err := c.do(cmd.Context(), "GET", "/api/v1/projects/"+url.PathEscape(project)+"/runs?"+q.Encode(), nil, &raw); err != nil {
					return err
				}
				pageItems, pageRuns, err := listItems[runInfo](raw, "runs")
				if err != nil {
					return err
				}
				var page struct {
					Next string `json:"next_cursor"`
				}
				if err := json.Unmarshal(raw, &page); err != nil {
					return err
				}
				runs, items = append(runs, pageRuns...), append(items, pageItems...)
				if page.Next == "" || len(pageRuns) == 0 {
					break
				}
				q.Set("cursor", page.Next)
			}
			if listFormat.structured() {
				// The runs of every page, without the cursor: the pages
				// were followed.
				return printList(cmd.OutOrStdout(), listFormat.value, "runs", items)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tFLOW\tVERSION\tENVIRONMENT\tTRIGGER\tSTATUS\tQUEUED\tDURATION")
			for _, r := range runs {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Flow, r.FlowVersion, r.Environment, r.Trigger, r.Status,
					r.QueuedAt.UTC().Format(time.RFC3339), r.duration())
			}
			return w.Flush()
		},
	}
	list.Flags().StringVarP(&project, "project", "p", "", "project (required)")
	list.Flags().StringVar(&flow, "flow", "", "only runs of this flow")
	list.Flags().StringVar(&status, "status", "", "only runs with this status: queued, running, waiting, succeeded, failed or canceled")
	list.Flags().StringVarP(&environment, "environment", "e", "", "only runs in this environment")
	list.Flags().IntVar(&limit, "limit", 50, "number of runs (more than 200 are fetched page by page)")
	listFormat = addOutput(list)

	cancel := &cobra.Command{
		Use:        "cancel ID",
		Short:      "Cancel a run: a queued or waiting run at once, a running one within about a second",
		SuggestFor: []string{"stop", "kill", "abort"},
		Args:       cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			// An ended run is said to be so, canceled too (the answer of a
			// cancel does not tell a run it canceled from one that was).
			var before runInfo
			if err := c.do(cmd.Context(), "GET", "/api/v1/runs/"+url.PathEscape(args[0]), nil, &before); err != nil {
				return err
			}
			if st := before.Status; st == "succeeded" || st == "failed" || st == "canceled" {
				msg := "had already ended: " + st
				if st == "canceled" && before.Error != "" {
					msg += " (" + before.Error + ")"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "run %s %s\n", before.ID, msg)
				return nil
			}
			var r runInfo
			if err := c.do(cmd.Context(), "POST", "/api/v1/runs/"+url.PathEscape(args[0])+"/cancel", nil, &r); err != nil {
				return err
			}
			msg := r.Status
			switch {
			case r.Status == "running":
				msg = "running; cancel requested"
			case r.Status == "canceled":
			case strings.HasSuffix(r.Error, "(on_error handler: it was canceled)"):
				msg = "failed (it had failed before the cancel; its on_error handler was canceled)"
			case r.Status == "succeeded" || r.Status == "failed":
				msg = "had already ended: " + r.Status
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s %s\n", r.ID, msg)
			return nil
		},
	}
	cmd.AddCommand(get, logs, list, cancel)
	return cmd
}

// jsonFlag is the value of flag --name: JSON, or @FILE to read it from a
// file.
func jsonFlag(name, value string) (any, error) {
	data := []byte(value)
	if file, ok := strings.CutPrefix(value, "@"); ok {
		var err error
		if data, err = os.ReadFile(file); err != nil {
			return nil, err
		}
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, usageErrorf("--%s is not JSON: %w", name, err)
	}
	return v, nil
}
