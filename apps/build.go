package apps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var placeholderRE = regexp.MustCompile(`\{\{\s*(config|with)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// vars are the values a template sees.
type vars struct {
	config map[string]string
	with   map[string]any
}

func (v vars) lookup(kind, name string) (any, bool) {
	if kind == "config" {
		s, ok := v.config[name]
		return s, ok && s != ""
	}
	x, ok := v.with[name]
	return x, ok && x != nil
}

// text substitutes every placeholder of s; a missing value is "". esc,
// when set, escapes each substituted value.
func (v vars) text(s string, esc func(string) (string, error)) (string, error) {
	var err error
	out := placeholderRE.ReplaceAllStringFunc(s, func(ph string) string {
		m := placeholderRE.FindStringSubmatch(ph)
		x, ok := v.lookup(m[1], m[2])
		if !ok {
			return ""
		}
		str, e := toText(x)
		if e != nil {
			err = fmt.Errorf("%s.%s: %w", m[1], m[2], e)
			return ""
		}
		if esc != nil {
			if str, e = esc(str); e != nil {
				err = fmt.Errorf("%s.%s: %w", m[1], m[2], e)
			}
		}
		return str
	})
	return out, err
}

// tree fills a JSON template. present is false for a leaf that is one
// placeholder whose value is missing.
func (v vars) tree(t any) (out any, present bool, err error) {
	switch x := t.(type) {
	case string:
		if m := placeholderRE.FindStringSubmatch(x); m != nil && m[0] == strings.TrimSpace(x) {
			val, ok := v.lookup(m[1], m[2])
			return val, ok, nil
		}
		s, err := v.text(x, nil)
		return s, true, err
	case map[string]any:
		o := make(map[string]any, len(x))
		for k, e := range x {
			val, ok, err := v.tree(e)
			if err != nil {
				return nil, false, err
			}
			if ok {
				o[k] = val
			}
		}
		return o, true, nil
	case []any:
		o := make([]any, len(x))
		for i, e := range x {
			val, _, err := v.tree(e)
			if err != nil {
				return nil, false, err
			}
			o[i] = val
		}
		return o, true, nil
	}
	return t, t != nil, nil
}

func toText(x any) (string, error) {
	switch y := x.(type) {
	case string:
		return y, nil
	case bool:
		return strconv.FormatBool(y), nil
	case float64:
		return strconv.FormatFloat(y, 'f', -1, 64), nil
	case int, int64, json.Number:
		return fmt.Sprint(y), nil
	}
	b, err := json.Marshal(x)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// escapePath escapes a path value segment by segment, refusing dot
// segments that would climb out of the base URL.
func escapePath(s string) (string, error) {
	segs := strings.Split(s, "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." {
			return "", errors.New("path segments . and .. are not allowed")
		}
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/"), nil
}

// RepeatSafe reports whether action, with these inputs, is safe to send
// twice: the manifest marks it idempotent, or its method is GET, HEAD,
// OPTIONS, PUT or DELETE.
func (m *Manifest) RepeatSafe(action string, with map[string]any) bool {
	a, ok := m.Actions[action]
	if !ok {
		return false
	}
	if a.Idempotent {
		return true
	}
	method, err := vars{with: with}.text(a.Method, nil)
	if err != nil {
		return false
	}
	switch strings.ToUpper(method) {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// Build returns the HTTP request of action, from the installation's
// resolved configuration and the action's inputs. The request targets the
// installation's base_url, else the manifest's. Errors name the field,
// never a configuration value.
func (m *Manifest) Build(ctx context.Context, action string, config map[string]string, with map[string]any) (*http.Request, error) {
	a, ok := m.Actions[action]
	if !ok {
		return nil, fmt.Errorf("app %s has no action %q (actions: %s)", m.Name, action, strings.Join(m.ActionNames(), ", "))
	}
	for _, in := range a.Inputs {
		if in.Required && with[in.Name] == nil {
			return nil, fmt.Errorf("%s.%s: with.%s is required", m.Name, action, in.Name)
		}
	}
	v := vars{config: config, with: with}
	baseRaw := config[BaseURLField]
	if baseRaw == "" {
		baseRaw = m.BaseURL
	}
	if baseRaw == "" {
		return nil, fmt.Errorf("app %s needs base_url in the installation's config", m.Name)
	}
	base, err := url.Parse(baseRaw)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.RawQuery != "" || base.User != nil {
		return nil, fmt.Errorf("base_url must be an http or https URL without query or user information")
	}
	method, err := v.text(a.Method, nil)
	if err != nil {
		return nil, err
	}
	method = strings.ToUpper(method)
	if method == "" {
		method = http.MethodGet
	}
	if !validMethod(method) {
		return nil, fmt.Errorf("%s.%s: %q is not an HTTP method", m.Name, action, method)
	}
	p, err := v.text(a.Path, escapePath)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: path: %w", m.Name, action, err)
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	u, err := url.Parse(strings.TrimRight(baseRaw, "/") + p)
	if err != nil || u.Host != base.Host || u.Scheme != base.Scheme {
		return nil, fmt.Errorf("%s.%s: the path does not make a URL under base_url", m.Name, action)
	}
	if a.Query != nil {
		q, _, err := v.tree(a.Query)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: query: %w", m.Name, action, err)
		}
		if q != nil {
			qm, ok := q.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s.%s: query must be an object", m.Name, action)
			}
			vals := u.Query()
			keys := make([]string, 0, len(qm))
			for k := range qm {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				items, ok := qm[k].([]any)
				if !ok {
					items = []any{qm[k]}
				}
				for _, it := range items {
					if it == nil {
						continue
					}
					s, err := toText(it)
					if err != nil {
						return nil, err
					}
					vals.Add(k, s)
				}
			}
			u.RawQuery = vals.Encode()
		}
	}
	h := http.Header{}
	for k, tmpl := range a.Headers {
		val, err := v.text(tmpl, nil)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: header %s: %w", m.Name, action, k, err)
		}
		if strings.ContainsAny(val, "\r\n\x00") {
			return nil, fmt.Errorf("%s.%s: header %s: a value contains a line break", m.Name, action, k)
		}
		if strings.TrimSpace(val) != "" {
			h.Set(k, val)
		}
	}
	var body []byte
	if a.Body != nil {
		b, ok, err := v.tree(a.Body)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: body: %w", m.Name, action, err)
		}
		if ok && b != nil {
			if body, err = json.Marshal(b); err != nil {
				return nil, fmt.Errorf("%s.%s: body: %w", m.Name, action, err)
			}
		}
	} else if method != http.MethodGet && method != http.MethodHead {
		merged := map[string]any{}
		for k, x := range a.Defaults {
			merged[k] = x
		}
		for k, x := range with {
			merged[k] = x
		}
		if body, err = json.Marshal(merged); err != nil {
			return nil, fmt.Errorf("%s.%s: body: %w", m.Name, action, err)
		}
	}
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "application/json")
		}
	}
	var req *http.Request
	if rd != nil {
		req, err = http.NewRequestWithContext(ctx, method, u.String(), rd)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, u.String(), nil)
	}
	if err != nil {
		return nil, fmt.Errorf("%s.%s: build request", m.Name, action)
	}
	req.Header = h
	return req, nil
}

func validMethod(m string) bool {
	if m == "" || len(m) > 20 {
		return false
	}
	for _, c := range m {
		if !(c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
