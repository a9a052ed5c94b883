package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// problem is one located problem of an invalid flow definition.
type problem struct {
	Block   string `json:"block"`
	Field   string `json:"field"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
	// DocLine and DocColumn: where the field is in a YAML file.
	DocLine   int `json:"doc_line"`
	DocColumn int `json:"doc_column"`
}

// invalidFlowError is a 400 with the definition's problems.
type invalidFlowError struct {
	name     string
	problems []problem
}

func (e *invalidFlowError) Error() string {
	return fmt.Sprintf("flow %q is invalid: %d problem(s), listed above", e.name, len(e.problems))
}

// send sends body with content type ctype and decodes a JSON answer into
// out; an error answer becomes *apiError, or *invalidFlowError when it
// lists problems.
func (c *client) send(ctx context.Context, method, path, ctype string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &unreachableError{base: c.base, err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error struct {
				apiError
				Problems []problem `json:"problems"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil && eb.Error.Msg != "" {
			if len(eb.Error.Problems) > 0 {
				return &invalidFlowError{problems: eb.Error.Problems}
			}
			e := eb.Error.apiError
			e.Status = resp.StatusCode
			return &e
		}
		return &apiError{Status: resp.StatusCode, Msg: http.StatusText(resp.StatusCode)}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// flowInfo is a flow as the API returns it.
type flowInfo struct {
	Name        string          `json:"name"`
	Project     string          `json:"project"`
	Version     int             `json:"version"`
	TriggerType string          `json:"trigger_type"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	UpdatedBy   string          `json:"updated_by"`
	Definition  json.RawMessage `json:"definition"`
	Warnings    []string        `json:"warnings"`
	// Unchanged: the applied definition was the current version's.
	Unchanged bool `json:"unchanged"`
	// PausedAt is when the flow was paused (nil: it is not).
	PausedAt *time.Time `json:"paused_at"`
	PausedBy string     `json:"paused_by"`
}

func requireProject(p string) error {
	if p == "" {
		return usageErrorf("--project is required")
	}
	return nil
}

func newFlowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "flow", Short: "Apply, inspect and run flows"}
	cmd.AddCommand(newFlowVersionsCmd(), newFlowRollbackCmd())
	var project string
	addProject := func(c *cobra.Command) {
		c.Flags().StringVarP(&project, "project", "p", "", "project of the flow (required)")
	}

	var file string
	apply := &cobra.Command{
		Use:        "apply -f FILE --project P",
		Short:      "Create a flow from a JSON or YAML definition, or save it as a new version",
		SuggestFor: []string{"create", "update", "save", "push"},
		Long: `Create a flow from a JSON or YAML definition file (- reads standard input as
YAML or JSON), or, when the project already has a flow of that name, save the
definition as its new version; a definition identical to the current
version's makes no version and prints "unchanged". Prints the name, the
version and any warnings; an invalid definition prints every problem with
its block, field and position.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			if file == "" {
				return usageErrorf("-f FILE is required")
			}
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(cmd.InOrStdin())
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			ctype := "application/json"
			if ext := strings.ToLower(filepath.Ext(file)); ext == ".yaml" || ext == ".yml" || (file == "-" && !json.Valid(data)) {
				ctype = "application/yaml"
			}
			var head struct {
				Name string `json:"name" yaml:"name"`
			}
			if ctype == "application/yaml" {
				err = yaml.Unmarshal(data, &head)
			} else {
				err = json.Unmarshal(data, &head)
			}
			// A file that does not parse is sent all the same: the
			// server's problem says at which line and column.
			if err == nil && head.Name == "" {
				return fmt.Errorf("%s: the definition has no name", file)
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			base := "/api/v1/projects/" + url.PathEscape(project) + "/flows"
			var f flowInfo
			verb := "created"
			err = c.send(cmd.Context(), "POST", base, ctype, data, &f)
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == http.StatusConflict {
				verb = "updated"
				err = c.send(cmd.Context(), "PUT", base+"/"+url.PathEscape(head.Name), ctype, data, &f)
			}
			var inv *invalidFlowError
			if errors.As(err, &inv) {
				inv.name = head.Name
				if inv.name == "" { // the file did not parse
					inv.name = file
				}
				w := cmd.ErrOrStderr()
				fmt.Fprintf(w, "flow %q is invalid:\n", inv.name)
				for _, p := range inv.problems {
					fmt.Fprintf(w, "  %s\n", p.in(file))
				}
				return inv
			}
			if err != nil {
				return err
			}
			if f.Unchanged {
				verb = "unchanged"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "flow %s %s: version %d (project %s)\n", f.Name, verb, f.Version, f.Project)
			for _, w := range f.Warnings {
				fmt.Fprintf(cmd.OutOrStdout(), "warning: %s\n", w)
			}
			return nil
		},
	}
	addProject(apply)
	apply.Flags().StringVarP(&file, "file", "f", "", "definition file (.json, .yaml or .yml; - for standard input)")

	var listFormat *outputFormat
	list := &cobra.Command{
		Use:   "list --project P",
		Short: "List a project's flows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			raw, done, err := getAPI(cmd, "/api/v1/projects/"+url.PathEscape(project)+"/flows", listFormat)
			if done || err != nil {
				return err
			}
			var out struct {
				Flows []flowInfo `json:"flows"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			return flowTable(cmd.OutOrStdout(), out.Flows)
		},
	}
	addProject(list)
	listFormat = addOutput(list)

	var format *outputFormat
	get := &cobra.Command{
		Use:   "get NAME --project P [-o yaml|json|table]",
		Short: "Print a flow's current definition (re-appliable with flow apply)",
		Long: `Print a flow's current definition as YAML (the default) or JSON: the
definition as the API returns it, which flow apply takes back. -o table
prints the flow's row of flow list instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			var f flowInfo
			if err := c.do(cmd.Context(), "GET", "/api/v1/projects/"+url.PathEscape(project)+"/flows/"+url.PathEscape(args[0]), nil, &f); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch format.value {
			case formatJSON:
				return printAPI(out, formatJSON, f.Definition)
			case formatYAML:
				y, err := jsonToYAML(f.Definition)
				if err != nil {
					return err
				}
				paused := ""
				if f.PausedAt != nil {
					paused = fmt.Sprintf("; paused %s by %s", f.PausedAt.UTC().Format(time.RFC3339), f.PausedBy)
				}
				fmt.Fprintf(out, "# flow %s, project %s, version %d, updated %s by %s%s\n%s", f.Name, f.Project, f.Version,
					f.UpdatedAt.UTC().Format(time.RFC3339), f.UpdatedBy, paused, y)
			default:
				return flowTable(out, []flowInfo{f})
			}
			return nil
		},
	}
	addProject(get)
	format = addOutputWith(get, formatYAML, formatYAML, formatJSON, formatTable)

	del := &cobra.Command{
		Use:        "delete NAME --project P",
		Short:      "Delete a flow and its versions (its runs stay)",
		SuggestFor: []string{"remove", "rm"},
		Args:       cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", "/api/v1/projects/"+url.PathEscape(project)+"/flows/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted flow %s and its versions (project %s); its runs stay\n", args[0], project)
			return nil
		},
	}
	addProject(del)

	cmd.AddCommand(apply, list, get, del, newFlowRunCmd(), newFlowPauseCmd(true), newFlowPauseCmd(false))
	return cmd
}

// newFlowPauseCmd is `hushflow flow pause NAME` (paused) or `flow resume
// NAME`.
func newFlowPauseCmd(paused bool) *cobra.Command {
	var project string
	verb, short := "resume", "Let a paused flow start runs again"
	if paused {
		verb, short = "pause", "Stop a flow from starting runs, by any trigger, until it is resumed"
	}
	cmd := &cobra.Command{
		Use:   verb + " NAME --project P",
		Short: short,
		Long: `pause stops a flow from starting runs until resume: API runs, reruns and
sub-flow calls are refused (flow_paused), webhook deliveries too (a sender
that retries delivers again later), events are not taken and schedule
ticks pass unfired. Runs already queued, running or waiting go on (cancel
them to stop them). resume lets the flow start runs again; what it missed
while paused is not run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireProject(project); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			var f flowInfo
			path := "/api/v1/projects/" + url.PathEscape(project) + "/flows/" + url.PathEscape(args[0]) + "/" + verb
			if err := c.do(cmd.Context(), "POST", path, nil, &f); err != nil {
				return err
			}
			if f.PausedAt != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "flow %s paused by %s at %s (project %s): it starts no run until hushflow flow resume %s\n",
					f.Name, f.PausedBy, f.PausedAt.UTC().Format(time.RFC3339), f.Project, f.Name)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "flow %s resumed (project %s): it starts runs again\n", f.Name, f.Project)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "project of the flow (required)")
	return cmd
}

// flowTable prints flows as flow list does.
func flowTable(out io.Writer, fs []flowInfo) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tVERSION\tTRIGGER\tUPDATED\tBY")
	for _, f := range fs {
		trigger := f.TriggerType
		if f.PausedAt != nil {
			trigger += " (paused)"
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", f.Name, f.Version, trigger, f.UpdatedAt.UTC().Format(time.RFC3339), f.UpdatedBy)
	}
	return w.Flush()
}

// in is the problem with its place in file first, as compilers write
// it (file:line:column:), when the server located it in the document.
func (p problem) in(file string) string {
	if file == "-" {
		file = "stdin"
	}
	line, col := p.DocLine, p.DocColumn
	if p.Block == "" && p.Field == "" {
		// A document that does not parse: Line and Column are the
		// document's.
		line, col = p.Line, p.Column
		p.Line, p.Column = 0, 0
	}
	switch {
	case line > 0 && col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", file, line, col, p.String())
	case line > 0:
		return fmt.Sprintf("%s:%d: %s", file, line, p.String())
	}
	return p.String()
}

func (p problem) String() string {
	var loc []string
	if p.Block != "" {
		loc = append(loc, fmt.Sprintf("block %q", p.Block))
	}
	if p.Field != "" {
		loc = append(loc, p.Field)
	}
	if p.Line > 0 {
		loc = append(loc, fmt.Sprintf("line %d, column %d", p.Line, p.Column))
	}
	if len(loc) == 0 {
		return p.Message
	}
	return strings.Join(loc, ", ") + ": " + p.Message
}

// jsonToYAML re-encodes JSON as block-style YAML, keeping key order.
func jsonToYAML(data []byte) (string, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return "", err
	}
	var plain func(n *yaml.Node)
	plain = func(n *yaml.Node) {
		n.Style = 0
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "\n") {
			n.Style = yaml.LiteralStyle
		}
		for _, c := range n.Content {
			plain(c)
		}
	}
	plain(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return "", err
	}
	return buf.String(), enc.Close()
}
