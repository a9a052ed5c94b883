package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hushflow/hushflow/flows/model"
	"go.yaml.in/yaml/v3"
)

// Source is a YAML definition's document, kept to say where in it each
// problem of the definition is (Locate).
type Source struct {
	data []byte
	root *yaml.Node // the document's top mapping; nil if it is not one
}

// yamlLine is the line yaml.v3 puts at the front of its errors.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// ParseYAMLDefinition decodes a YAML definition. Its problems name the
// document's lines: a syntax error its line (yaml.v3 knows no column), a
// field of the wrong type or not known its line and column. The Source
// locates the problems Compile finds later (Locate).
func ParseYAMLDefinition(data []byte) (model.Definition, *Source, error) {
	var d model.Definition
	if len(data) > MaxDefinition {
		return d, nil, &InvalidError{Problems: []Problem{{Message: fmt.Sprintf("definition is %d bytes, over the limit of %d", len(data), MaxDefinition)}}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return d, nil, &InvalidError{Problems: yamlProblems(err)}
	}
	src := &Source{data: data}
	if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		src.root = doc.Content[0]
	}
	var v any
	if err := doc.Decode(&v); err != nil {
		return d, nil, &InvalidError{Problems: yamlProblems(err)}
	}
	js, err := json.Marshal(v)
	if err != nil {
		return d, nil, &InvalidError{Problems: []Problem{{Message: "definition has values JSON cannot hold (keys that are not strings?): " + err.Error()}}}
	}
	d, err = decodeDefinition(js)
	if err != nil {
		// The JSON made from the YAML is not what the person wrote:
		// locate the field in the YAML instead.
		p := Problem{Message: "definition is not valid: " + strings.TrimPrefix(err.Error(), "json: ")}
		var te *json.UnmarshalTypeError
		var n *yaml.Node
		switch {
		case errors.As(err, &te) && te.Field != "":
			p.Message = "definition is not valid: " + typeMessage(te)
			n = src.path(src.root, strings.Split(te.Field, "."))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			n = src.key(src.root, name)
		default:
			// Located as Compile's problems of a block are (DocLine).
			if p.Block, p.Field = blame(js); p.Block != "" {
				if at := src.block(p.Block, 0); at != nil {
					p.DocLine, p.DocColumn = at.Line, at.Column
					if key, _ := src.field(at, true, p.Field); key != nil {
						p.DocLine, p.DocColumn = key.Line, key.Column
					}
				}
			}
		}
		if n != nil {
			p.Line, p.Column = n.Line, n.Column
		}
		return d, nil, &InvalidError{Problems: []Problem{p}}
	}
	return d, src, nil
}

// yamlProblems turns a yaml.v3 error ("yaml: line 3: ...", or a list of
// "line N: ..." decoding errors) into problems with their lines.
func yamlProblems(err error) []Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	probs := make([]Problem, 0, len(msgs))
	for _, m := range msgs {
		p := Problem{}
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			p.Line, _ = strconv.Atoi(g[1])
			m = m[len(g[0]):]
		}
		p.Message = "definition is not valid YAML: " + strings.TrimPrefix(m, "yaml: ")
		probs = append(probs, p)
	}
	return probs
}

// Locate sets DocLine and DocColumn of each problem of err (an
// *InvalidError) that names a block or a field of the document: the
// place in the YAML of the field (its key), or of the block when the
// field is missing; for an expression's problem with a line and column,
// that character in the document when the value is written on one line
// or as a literal block (|).
func (s *Source) Locate(err error) {
	var inv *InvalidError
	if s == nil || s.root == nil || !errors.As(err, &inv) {
		return
	}
	dupes := map[string]int{}
	for i := range inv.Problems {
		p := &inv.Problems[i]
		if p.DocLine > 0 || (p.Block == "" && p.Field == "") {
			continue
		}
		at := s.root
		if p.Block != "" {
			// Problems come in the order of the blocks (the flow's, then
			// on_error's), the id first: after a "duplicate block id" (or an
			// on_error block's id taken by a block of the flow), the
			// block's problems are the duplicate's.
			if p.Field == "id" && (strings.HasPrefix(p.Message, "duplicate") || strings.HasPrefix(p.Message, "on_error block id")) {
				dupes[p.Block]++
			}
			if at = s.block(p.Block, dupes[p.Block]); at == nil {
				continue
			}
		}
		key, val := s.field(at, p.Block != "", p.Field)
		switch {
		case key == nil:
			p.DocLine, p.DocColumn = at.Line, at.Column
		case p.Line > 0 && val != nil && val.Kind == yaml.ScalarNode:
			p.DocLine, p.DocColumn = key.Line, key.Column
			if l, c, ok := s.inScalar(val, p.Line, p.Column); ok {
				p.DocLine, p.DocColumn = l, c
			}
		default:
			p.DocLine, p.DocColumn = key.Line, key.Column
		}
	}
}

// block is the mapping of the block a problem names: by id (the nth of
// that id), or "#N" and "on_error #N" for a block without a valid id.
func (s *Source) block(name string, nth int) *yaml.Node {
	list, index := "blocks", 0
	if rest, ok := strings.CutPrefix(name, "on_error #"); ok {
		list, index = "on_error", atoi(rest)
	} else if rest, ok := strings.CutPrefix(name, "#"); ok {
		index = atoi(rest)
	}
	if index > 0 {
		seq := value(s.root, list)
		if seq == nil || seq.Kind != yaml.SequenceNode || index > len(seq.Content) {
			return nil
		}
		return seq.Content[index-1]
	}
	seen := 0
	for _, l := range []string{"blocks", "on_error"} {
		seq := value(s.root, l)
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for _, b := range seq.Content {
			if id := value(b, "id"); id != nil && id.Value == name {
				if seen == nth {
					return b
				}
				seen++
			}
		}
	}
	return nil
}

// blockKeys are the keys of a block itself; any other field a problem
// names is a key of its config.
var blockKeys = map[string]bool{"id": true, "type": true, "if": true, "each": true, "concurrency": true, "max_items": true,
	"timeout": true, "retry": true, "continue_on_error": true}

// field finds a problem's field (a dotted path such as trigger.cron or
// retry.attempts) in m, a block's mapping (inBlock) or the document's: its
// key and value nodes.
func (s *Source) field(m *yaml.Node, inBlock bool, field string) (key, val *yaml.Node) {
	path := strings.Split(field, ".")
	if inBlock && !blockKeys[path[0]] {
		if m = value(m, "config"); m == nil {
			return nil, nil
		}
		path = []string{field}
	}
	for i, name := range path {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil, nil
		}
		key, val = nil, nil
		for j := 0; j+1 < len(m.Content); j += 2 {
			if m.Content[j].Value == name {
				key, val = m.Content[j], m.Content[j+1]
			}
		}
		if key == nil {
			return nil, nil
		}
		if i < len(path)-1 {
			m = val
		}
	}
	return key, val
}

// inScalar is the document's line and column of the line-th line,
// column-th character of the string n holds, when n is written so that
// the two can be matched: on one line (plain or quoted, without escapes
// before that column) or as a literal block.
func (s *Source) inScalar(n *yaml.Node, line, column int) (int, int, bool) {
	lines := strings.Split(n.Value, "\n")
	if line > len(lines) || column < 1 {
		return 0, 0, false
	}
	doc := bytes.Split(s.data, []byte("\n"))
	prefix := lines[line-1][:min(column-1, len(lines[line-1]))]
	switch n.Style {
	case 0, yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		if line != 1 || strings.Contains(n.Value, "\n") || n.Line > len(doc) {
			return 0, 0, false
		}
		start := n.Column - 1
		if n.Style != 0 {
			start++ // the quote
		}
		text := doc[n.Line-1]
		if start+len(prefix) > len(text) || string(text[start:start+len(prefix)]) != prefix {
			return 0, 0, false
		}
		return n.Line, start + column, true
	case yaml.LiteralStyle:
		// The content starts on the line after the indicator; its
		// indentation is that of the first line that is not empty.
		indent := -1
		for l := n.Line; l < len(doc) && indent < 0; l++ {
			if t := strings.TrimLeft(string(doc[l]), " "); t != "" {
				indent = len(doc[l]) - len(t)
			}
		}
		l := n.Line + line // 1-based: the indicator's line is n.Line
		if indent < 0 || l > len(doc) {
			return 0, 0, false
		}
		text := doc[l-1]
		if prefix == "" { // the start of a line, which may be empty
			return l, min(indent, len(text)) + 1, true
		}
		if indent+len(prefix) > len(text) || string(text[indent:indent+len(prefix)]) != prefix {
			return 0, 0, false
		}
		return l, indent + column, true
	}
	return 0, 0, false
}

// path follows keys from m; a sequence is crossed into its first element
// that has the next key, as a Go field path names no index.
func (s *Source) path(m *yaml.Node, keys []string) *yaml.Node {
	n := m
	for _, k := range keys {
		for n != nil && n.Kind == yaml.SequenceNode {
			var next *yaml.Node
			for _, it := range n.Content {
				if value(it, k) != nil {
					next = it
					break
				}
			}
			n = next
		}
		n = value(n, k)
	}
	return n
}

// key is the first key node called name anywhere under n, in document
// order.
func (s *Source) key(n *yaml.Node, name string) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == name {
				return n.Content[j]
			}
		}
		for j := 0; j+1 < len(n.Content); j += 2 {
			if k := n.Content[j].Value; k == "config" || k == "env" {
				continue // maps: any key is known there
			}
			if k := s.key(n.Content[j+1], name); k != nil {
				return k
			}
		}
		return nil
	}
	for _, c := range n.Content {
		if k := s.key(c, name); k != nil {
			return k
		}
	}
	return nil
}

// value is the value of key in the mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == key {
			return m.Content[j+1]
		}
	}
	return nil
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}
