package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/server"
	"github.com/hushflow/hushflow/store/storetest"
	"github.com/labstack/echo/v4"
)

// The server tests start full servers (apptest), whose sandbox workers are
// this test binary.
func TestMain(m *testing.M) { apptest.Main(m) }

// documentedPrefixes are the paths the OpenAPI document covers: every
// route registered under them must be in it.
var documentedPrefixes = []string{"/api/v1/", "/hooks/", "/healthz", "/readyz", "/metrics"}

// notDocumented are the registered routes the document leaves out on
// purpose, by path: catch-alls (the 404 of unknown /api/v1 paths, the web
// UI's static files) and the web UI's session, which only the browser
// uses (docs/api.md describes it).
var notDocumented = map[string]string{
	"/*":          "the web UI's static files (web.Mount)",
	"/api/v1/*":   "404 for unknown /api/v1 paths",
	"/ui/session": "the web UI's cookie session",
}

var openAPIMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(server.OpenAPI))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("server/openapi.json is not valid JSON: %v", err)
	}
	if dec.More() {
		t.Fatal("server/openapi.json has data after its object")
	}
	return doc
}

// resolve follows a local $ref ("#/components/...") in doc.
func resolve(doc map[string]any, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	var cur any = doc
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// deref returns v, or what its $ref names.
func deref(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	if r, ok := m["$ref"].(string); ok {
		target, ok := resolve(doc, r)
		if !ok {
			t.Fatalf("$ref %q does not resolve", r)
		}
		m, _ = target.(map[string]any)
	}
	return m
}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)
var openAPIParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

// TestOpenAPICoversRoutes walks the routes a full server (internal/app:
// flows, secrets, apps, metrics and the web UI mounted) really registers:
// every one under the documented prefixes is in server/openapi.json with
// its method and path parameters, every operation of the document is
// registered, and every operation declares its path parameters, a 2xx
// response and 401 unless it takes no token (security: []).
func TestOpenAPICoversRoutes(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.SQLiteConfig(t), func(c *app.Config) { c.NoWorkers = true })
	doc := loadOpenAPI(t)
	paths, _ := doc["paths"].(map[string]any)

	registered := map[string]bool{} // "GET /api/v1/projects/{project}"
	for _, r := range s.App.API.Echo().Routes() {
		if _, skip := notDocumented[r.Path]; skip || r.Method == echo.RouteNotFound {
			continue // RouteNotFound: the 404 handlers echo adds for groups
		}
		if !slices.ContainsFunc(documentedPrefixes, func(p string) bool { return strings.HasPrefix(r.Path, p) }) {
			t.Errorf("route %s %s is outside the documented prefixes %v: document it, or add it to notDocumented with a reason", r.Method, r.Path, documentedPrefixes)
			continue
		}
		if strings.Contains(r.Path, "*") {
			t.Errorf("route %s %s: a catch-all under a documented prefix; add it to notDocumented with a reason", r.Method, r.Path)
			continue
		}
		p := echoParam.ReplaceAllString(r.Path, "{$1}")
		key := r.Method + " " + p
		registered[key] = true
		item, _ := paths[p].(map[string]any)
		if item == nil || item[strings.ToLower(r.Method)] == nil {
			t.Errorf("route %s %s is registered but not in server/openapi.json (as %s)", r.Method, r.Path, key)
		}
	}
	if len(registered) < 40 {
		t.Fatalf("only %d routes registered: is the server built with every service?", len(registered))
	}

	ops := 0
	for p, v := range paths {
		item, _ := v.(map[string]any)
		want := []string{}
		for _, m := range openAPIParam.FindAllStringSubmatch(p, -1) {
			want = append(want, m[1])
		}
		sort.Strings(want)
		for _, method := range openAPIMethods {
			o, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			ops++
			key := strings.ToUpper(method) + " " + p
			if !registered[key] {
				t.Errorf("%s is in server/openapi.json but the server does not register it", key)
			}
			got := []string{}
			params, _ := o["parameters"].([]any)
			params = append(params, func() []any { l, _ := item["parameters"].([]any); return l }()...)
			for _, pv := range params {
				pm := deref(t, doc, pv)
				if pm["in"] == "path" {
					if pm["required"] != true {
						t.Errorf("%s: path parameter %v is not required", key, pm["name"])
					}
					got = append(got, pm["name"].(string))
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s declares path parameters %v, want %v", key, got, want)
			}
			responses, _ := o["responses"].(map[string]any)
			if !slices.ContainsFunc(keys(responses), func(c string) bool { return len(c) == 3 && c[0] == '2' }) {
				t.Errorf("%s has no 2xx response", key)
			}
			sec, hasSec := o["security"].([]any)
			open := hasSec && len(sec) == 0
			if _, ok := responses["401"]; !ok && !open {
				t.Errorf("%s takes a token (no security: []) but declares no 401", key)
			}
		}
	}
	t.Logf("%d routes registered under the documented prefixes, %d operations documented", len(registered), ops)

	// The document is served, to token holders only.
	get := func(token string) (int, []byte) {
		req, _ := http.NewRequest("GET", s.URL+"/api/v1/openapi.json", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if token != "" && !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Errorf("Content-Type %q", res.Header.Get("Content-Type"))
		}
		return res.StatusCode, b
	}
	if code, b := get(s.Token); code != http.StatusOK || !bytes.Equal(b, server.OpenAPI) {
		t.Errorf("GET /api/v1/openapi.json: %d, %d bytes (want 200, the embedded document)", code, len(b))
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/openapi.json without a token: %d, want 401", code)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestOpenAPIDocument checks the shape of server/openapi.json: OpenAPI
// 3.1.0, info and paths, every $ref resolves inside the document, every
// operation has a unique operationId, and no schema a secret or token
// listing answers with has a value field.
func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	info, _ := doc["info"].(map[string]any)
	if info["title"] != "Hushflow" || info["version"] == "" || info["version"] == nil {
		t.Errorf("info = %v", info)
	}
	if _, ok := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)["bearer"]; !ok {
		t.Error("no bearer security scheme")
	}

	var refs int
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				refs++
				if _, ok := resolve(doc, r); !ok {
					t.Errorf("%s: $ref %q does not resolve inside the document", path, r)
				}
			}
			for k, c := range v {
				walk(path+"/"+k, c)
			}
		case []any:
			for i, c := range v {
				walk(path+"/"+strconv.Itoa(i), c)
			}
		}
	}
	walk("#", doc)
	if refs == 0 {
		t.Error("no $ref at all")
	}

	paths, _ := doc["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatal("no paths")
	}
	ids := map[string]string{}
	for p, v := range paths {
		item, _ := v.(map[string]any)
		for _, method := range openAPIMethods {
			o, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			key := strings.ToUpper(method) + " " + p
			id, _ := o["operationId"].(string)
			if id == "" {
				t.Errorf("%s has no operationId", key)
				continue
			}
			if prev, dup := ids[id]; dup {
				t.Errorf("operationId %q of %s is also that of %s", id, key, prev)
			}
			ids[id] = key
		}
	}

	// No response schema of secrets or token listings names a value.
	for _, name := range []string{"Secret", "SecretWritten", "SecretList", "SecretVersion", "SecretVersions", "SecretUsage", "AuditRecord", "KeyStatus", "Token"} {
		for _, prop := range properties(t, doc, map[string]any{"$ref": "#/components/schemas/" + name}, map[string]bool{}) {
			if prop == "value" || prop == "file_base64" || prop == "token" || prop == "hash" {
				t.Errorf("schema %s has a %q property", name, prop)
			}
		}
	}
}

// properties lists the property names of schema s, through $ref, allOf,
// items, nested objects and additionalProperties.
func properties(t *testing.T, doc map[string]any, s any, seen map[string]bool) []string {
	m, _ := s.(map[string]any)
	if r, ok := m["$ref"].(string); ok {
		if seen[r] {
			return nil
		}
		seen[r] = true
		m = deref(t, doc, m)
	}
	var out []string
	if props, ok := m["properties"].(map[string]any); ok {
		for k, v := range props {
			out = append(out, k)
			out = append(out, properties(t, doc, v, seen)...)
		}
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		l, _ := m[k].([]any)
		for _, c := range l {
			out = append(out, properties(t, doc, c, seen)...)
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if c, ok := m[k].(map[string]any); ok {
			out = append(out, properties(t, doc, c, seen)...)
		}
	}
	return out
}
