package server

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/redact"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store"

	"github.com/labstack/echo/v4"
)

// Every string the API returns passes through a redactor: runs and events
// through their run's, and what users type (descriptions, flow
// definitions and env, installation configs, errors that quote a field)
// through the masker of the project it belongs to: every live value of
// every secret that project can see, in any environment, every version
// that still holds ciphertext (secrets.Store.Masker).

// maskedJSON answers v with project's secret values masked in its strings
// (keys too). v goes through JSON first, so that the masker sees the
// strings the client will.
func (s *Server) maskedJSON(c echo.Context, status int, project string, v any) error {
	g, err := s.masked(c, project, v)
	if err != nil {
		return err
	}
	return c.JSON(status, g)
}

func (s *Server) masked(c echo.Context, project string, v any) (any, error) {
	if s.deps.Secrets == nil {
		return v, nil
	}
	red, err := s.deps.Secrets.Masker(c.Request().Context(), project)
	if err != nil {
		return nil, err
	}
	if red.Len() == 0 {
		return v, nil
	}
	g, err := jsonValue(v)
	if err != nil {
		return nil, err
	}
	return red.Value(g), nil
}

// jsonValue returns v as the JSON-like value (maps, slices, strings,
// float64s) a client decodes from it.
func jsonValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var g any
	err = json.Unmarshal(b, &g)
	return g, err
}

// maskMessage masks an error message that may quote what the caller sent:
// with the project's masker on a project's routes, else with every value
// (without names). A masker that cannot be had leaves a generic message.
func (s *Server) maskMessage(c echo.Context, msg string) string {
	if s.deps.Secrets == nil || msg == "" {
		return msg
	}
	project := c.Param("project")
	red, err := s.deps.Secrets.Masker(c.Request().Context(), project)
	if err != nil {
		return "the request is invalid (its details could not be checked for secret values; retry)"
	}
	return red.String(msg)
}

// refusePasted refuses text a user typed that holds the value of a secret
// project can see (in any of its encodings): a flow definition, a
// description, an installation's config would otherwise keep the value in
// clear at rest and show it to everyone who can read them. The error
// names where and which secret, never the value. extra adds values not
// stored yet (the secret being created) under their names.
func (s *Server) refusePasted(c echo.Context, project string, v any, extra map[string]string) error {
	if s.deps.Secrets == nil {
		return nil
	}
	red, err := s.deps.Secrets.StrongMasker(c.Request().Context(), project)
	if err != nil {
		return err
	}
	if len(extra) > 0 {
		red = red.Clone()
		for n, v := range extra {
			if !redact.Weak(v) {
				red.Add(n, v)
			}
		}
	}
	if red.Len() == 0 {
		return nil
	}
	g, err := jsonValue(v)
	if err != nil {
		return err
	}
	where, names := pasted(red, g, "")
	if where == "" {
		return nil
	}
	what := "a secret's value"
	if len(names) > 0 && names[0] != "" {
		what = "the value of secret " + strings.Join(names, ", ")
	}
	return apperr.Invalidf("secret_value_pasted", "%s holds %s: keep values in secrets and reference them (secrets.NAME) instead of pasting them", where, what)
}

// refuseValueAsName refuses the name of an organization-wide thing (a
// project, an environment, a user, a token) that holds the value of any
// secret: such names are listed to every user, in every project, unmasked.
func (s *Server) refuseValueAsName(c echo.Context, what, name string) error {
	err := s.refusePasted(c, "", map[string]string{"name": name}, nil)
	if e, ok := apperr.As(err); ok && e.Code == "secret_value_pasted" {
		return apperr.Invalidf("secret_value_pasted", "the %s name holds a secret's value: names are shown to everyone; choose another", what)
	}
	return err
}

// refuseNameAsValue refuses a new secret value that is already the name of
// something Hushflow shows to its users unmasked (a user, a project, an
// environment, a token, a flow, a secret): such a value is not secret, and
// would show in clear wherever that name does ("canceled by", member
// lists). Weak values (short, or of low entropy: "admin" as DB_USER) are
// let through; a token-like one is refused. The reverse, a name that
// holds a value, is refuseValueAsName's.
func (s *Server) refuseNameAsValue(c echo.Context, v secrets.Value) error {
	val := v.Reveal()
	if len(val) > 128 || redact.Weak(val) || !utf8.ValidString(val) || strings.ContainsAny(val, " \t\r\n") {
		return nil // no name is like it
	}
	// The names are read and compared here: a value never goes to the
	// database as a statement's parameter (SECURITY.md case 37).
	var names []string
	err := s.deps.DB.WithContext(s.deps.DB.Short(c.Request().Context())).Raw(`SELECT name FROM users UNION SELECT name FROM projects
UNION SELECT name FROM environments UNION SELECT name FROM tokens UNION SELECT name FROM flows
UNION SELECT name FROM secrets WHERE deleted_at IS NULL`).Scan(&names).Error
	if err != nil {
		return store.Translate(err)
	}
	for _, n := range names {
		if n == val {
			return apperr.Invalidf("value_is_a_name", "the value is the name of a user, project, environment, token, flow or secret: names are shown to everyone, so it is not secret; use another value")
		}
	}
	return nil
}

// pasted returns the path of the first string (or key) of v holding a
// value red knows, and the names of those values.
func pasted(red *redact.Redactor, v any, path string) (string, []string) {
	switch x := v.(type) {
	case string:
		if ns := red.Matches(x); len(ns) > 0 {
			return orRoot(path), ns
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if ns := red.Matches(k); len(ns) > 0 {
				return orRoot(path) + " (a key)", ns
			}
			if w, ns := pasted(red, x[k], p); w != "" {
				return w, ns
			}
		}
	case []any:
		for i, e := range x {
			p := fmt.Sprintf("%s[%d]", path, i)
			if m, ok := e.(map[string]any); ok {
				// An element with an id (a block) is named by it.
				if id, ok := m["id"].(string); ok && id != "" && len(red.Matches(id)) == 0 {
					p = fmt.Sprintf("%s[%q]", path, id)
				}
			}
			if w, ns := pasted(red, e, p); w != "" {
				return w, ns
			}
		}
	}
	return "", nil
}

func orRoot(path string) string {
	if path == "" {
		return "the text"
	}
	return path
}
