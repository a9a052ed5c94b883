package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// The formats of -o/--output on list and get commands. table is what a
// person reads; json and yaml are the API's objects as the server returned
// them (already redacted by the server: nothing is added or computed).
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// outputFormat is the value of -o/--output. Set refuses a format that is
// not allowed, so that cobra reports it as a flag error (a usage error,
// exit status 2) before any request is sent.
type outputFormat struct {
	value   string
	allowed []string
	// aliases are accepted and stand for another format (run get's
	// "text", its name for the table before -o table existed).
	aliases map[string]string
}

func (f *outputFormat) String() string { return f.value }
func (f *outputFormat) Type() string   { return "format" }

func (f *outputFormat) Set(s string) error {
	if a, ok := f.aliases[s]; ok {
		s = a
	}
	if !slices.Contains(f.allowed, s) {
		return fmt.Errorf("unknown output format %q: use %s", s, orList(f.allowed))
	}
	f.value = s
	return nil
}

// structured says whether the output is the API's objects (json or yaml).
func (f *outputFormat) structured() bool { return f.value == formatJSON || f.value == formatYAML }

// addOutput adds -o/--output to cmd, with table, json and yaml allowed and
// table the default.
func addOutput(cmd *cobra.Command) *outputFormat {
	return addOutputWith(cmd, formatTable, formatTable, formatJSON, formatYAML)
}

// addOutputWith adds -o/--output with its default and allowed formats.
func addOutputWith(cmd *cobra.Command, def string, allowed ...string) *outputFormat {
	f := &outputFormat{value: def, allowed: allowed}
	cmd.Flags().VarP(f, "output", "o", "output format: "+orList(allowed))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(allowed, cobra.ShellCompDirectiveNoFileComp))
	return f
}

func orList(ss []string) string {
	if len(ss) < 2 {
		return strings.Join(ss, "")
	}
	return strings.Join(ss[:len(ss)-1], ", ") + " or " + ss[len(ss)-1]
}

// printAPI writes raw, a JSON answer of the API, as indented JSON or as
// YAML (keys in the order the server sent them).
func printAPI(w io.Writer, format string, raw []byte) error {
	switch format {
	case formatJSON:
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return fmt.Errorf("the server's answer is not JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	case formatYAML:
		y, err := jsonToYAML(raw)
		if err != nil {
			return fmt.Errorf("the server's answer is not JSON: %w", err)
		}
		_, err = io.WriteString(w, y)
		return err
	}
	return fmt.Errorf("output format %q is not json or yaml", format)
}

// printList writes {"key": items}, the shape of the API's list answers,
// for a list the CLI put together (pages followed, a name picked out).
func printList(w io.Writer, format, key string, items []json.RawMessage) error {
	if items == nil {
		items = []json.RawMessage{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as the server wrote them
	if err := enc.Encode(map[string][]json.RawMessage{key: items}); err != nil {
		return err
	}
	return printAPI(w, format, buf.Bytes())
}

// listItems decodes the array under key in an API answer twice: each
// element as returned (for json and yaml) and into T (for the table).
func listItems[T any](raw []byte, key string) ([]json.RawMessage, []T, error) {
	var answer map[string]json.RawMessage
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, nil, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(answer[key], &items); err != nil && answer[key] != nil {
		return nil, nil, err
	}
	typed := make([]T, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &typed[i]); err != nil {
			return nil, nil, err
		}
	}
	return items, typed, nil
}

// getAPI GETs path from the server and, when format asks for JSON or
// YAML, prints the answer as it came (done). Otherwise the caller renders
// raw as a table.
func getAPI(cmd *cobra.Command, path string, format *outputFormat) (raw json.RawMessage, done bool, err error) {
	c, err := newClient()
	if err != nil {
		return nil, false, err
	}
	if err := c.do(cmd.Context(), "GET", path, nil, &raw); err != nil {
		return nil, false, err
	}
	if format.structured() {
		return nil, true, printAPI(cmd.OutOrStdout(), format.value, raw)
	}
	return raw, false, nil
}
