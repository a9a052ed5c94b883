package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/server"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// syncBuffer collects the server's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// secretsAPI is an API with a secrets store under a fresh keyring.
type secretsAPI struct {
	*api
	store *secrets.Store
	logs  *syncBuffer
}

func newSecretsAPI(t *testing.T, db *store.DB) *secretsAPI {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	kr, err := secrets.ParseKeyring("k1:" + secrets.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	st := secrets.New(secrets.Config{DB: db, Keyring: kr, Logger: log})
	authSvc := auth.New(auth.Config{DB: db})
	token, err := authSvc.Bootstrap(context.Background())
	if err != nil || token == "" {
		t.Fatalf("bootstrap: %q %v", token, err)
	}
	s := server.New(server.Deps{DB: db, Auth: authSvc, Projects: projects.NewService(db), Secrets: st, Logger: log})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	a := &api{t: t, url: ts.URL, token: token, db: db}
	for _, p := range []string{"billing", "shop"} {
		if r := a.do("POST", "/api/v1/projects", map[string]string{"name": p}); r.Status != 201 {
			t.Fatalf("create project: %d %s", r.Status, r.Body)
		}
	}
	return &secretsAPI{api: a, store: st, logs: logs}
}

func eachSecretsAPI(t *testing.T, f func(t *testing.T, a *secretsAPI)) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) { f(t, newSecretsAPI(t, db)) })
}

func scopeQuery(project, env string) string {
	v := url.Values{}
	if project != "" {
		v.Set("project", project)
	}
	if env != "" {
		v.Set("environment", env)
	}
	return v.Encode()
}

func TestSecretsAPIAllScopesAndResolutionOrder(t *testing.T) {
	eachSecretsAPI(t, func(t *testing.T, a *secretsAPI) {
		values := map[string]string{}
		scopes := []struct{ project, env, label string }{
			{"", "", "organization"},
			{"", "production", "environment"},
			{"billing", "", "project"},
			{"billing", "production", "project+environment"},
		}
		ids := map[string]string{}
		for _, sc := range scopes {
			v := "canary-" + sc.label + "-" + secrets.NewKey()
			values[sc.label] = v
			body := map[string]any{"name": "API_TOKEN", "value": v, "description": "the " + sc.label + " token"}
			if sc.project != "" {
				body["project"] = sc.project
			}
			if sc.env != "" {
				body["environment"] = sc.env
			}
			r := a.do("POST", "/api/v1/secrets", body)
			if r.Status != 201 {
				t.Fatalf("create in %s: %d %s", sc.label, r.Status, r.Body)
			}
			m := r.JSON(t)
			if m["scope_label"] != sc.label || m["version"].(float64) != 1 || m["kind"] != "string" || m["created_by"] != "admin" {
				t.Errorf("create response: %s", r.Body)
			}
			ids[sc.label] = m["id"].(string)
			// The exact-scope listing shows it, and only it.
			r = a.do("GET", "/api/v1/secrets?"+scopeQuery(sc.project, sc.env), nil)
			list := r.JSON(t)["secrets"].([]any)
			if len(list) != 1 || list[0].(map[string]any)["id"] != ids[sc.label] {
				t.Errorf("list %s: %s", sc.label, r.Body)
			}
		}
		// The resolved listing names the origin of each name.
		for _, c := range []struct{ project, env, from string }{
			{"billing", "production", "project+environment"},
			{"billing", "staging", "project"},
			{"shop", "production", "environment"},
			{"shop", "staging", "organization"},
		} {
			r := a.do("GET", "/api/v1/secrets?resolved=true&"+scopeQuery(c.project, c.env), nil)
			list := r.JSON(t)["secrets"].([]any)
			if len(list) != 1 || list[0].(map[string]any)["from"] != c.from {
				t.Errorf("resolved %s/%s: want from %s: %s", c.project, c.env, c.from, r.Body)
			}
			// The engine's resolution agrees.
			v, meta, err := a.store.Resolve(context.Background(), secrets.Access{Project: c.project, Environment: c.env, Name: "API_TOKEN", RunID: "run-1", BlockID: "call"})
			if err != nil || v.Reveal() != values[c.from] || meta.Scope.Label() != c.from {
				t.Errorf("resolve %s/%s: from %s, %v", c.project, c.env, meta.Scope.Label(), err)
			}
		}
		// Update: a new version, metadata only.
		r := a.do("PUT", "/api/v1/secrets/"+ids["project"], map[string]any{"value": "canary-updated-" + secrets.NewKey(), "allowed_hosts": []string{"api.example.com"}})
		if r.Status != 200 || r.JSON(t)["version"].(float64) != 2 {
			t.Fatalf("update: %d %s", r.Status, r.Body)
		}
		r = a.do("GET", "/api/v1/secrets/"+ids["project"]+"/versions", nil)
		if vs := r.JSON(t)["versions"].([]any); len(vs) != 2 {
			t.Fatalf("versions: %s", r.Body)
		}
		// Delete: 204, gone from listings and resolution falls back.
		if r := a.do("DELETE", "/api/v1/secrets/"+ids["project+environment"], nil); r.Status != 204 {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		r = a.do("GET", "/api/v1/secrets?resolved=true&"+scopeQuery("billing", "production"), nil)
		if list := r.JSON(t)["secrets"].([]any); list[0].(map[string]any)["from"] != "project" {
			t.Errorf("after delete: %s", r.Body)
		}
		if r := a.do("PUT", "/api/v1/secrets/"+ids["project+environment"], map[string]any{"value": "x"}); r.Status != 404 {
			t.Errorf("update deleted: %d", r.Status)
		}
		// Audit: create, update, delete, resolve records, no values.
		r = a.do("GET", "/api/v1/audit?secret=API_TOKEN&limit=100", nil)
		recs := r.JSON(t)["records"].([]any)
		counts := map[string]int{}
		for _, rec := range recs {
			counts[rec.(map[string]any)["action"].(string)]++
		}
		if counts["create"] != 4 || counts["update"] != 1 || counts["delete"] != 1 || counts["resolve"] != 4 {
			t.Errorf("audit counts %v", counts)
		}
		resolveRec := recs[0].(map[string]any)
		for _, rec := range recs {
			if m := rec.(map[string]any); m["action"] == "resolve" {
				resolveRec = m
				break
			}
		}
		if resolveRec["run_id"] != "run-1" || resolveRec["block_id"] != "call" || resolveRec["secret_id"] == "" || resolveRec["version"] == nil {
			t.Errorf("resolve record: %v", resolveRec)
		}
		all := a.do("GET", "/api/v1/audit", nil)
		for label, v := range values {
			if bytes.Contains(all.Body, []byte(v)) || bytes.Contains(r.Body, []byte(v)) {
				t.Errorf("audit leaks the %s value", label)
			}
		}
	})
}

// canaries are high-entropy values with characters that need escaping in
// JSON, HTML, URLs and SQL, and a multi-line PEM-like value.
func canaries() map[string]string {
	k := func() string { return secrets.NewKey()[:24] }
	return map[string]string{
		"PLAIN":     "cnry1-" + k(),
		"SPECIAL":   `cnry2-&<>"%\'` + k() + "`$;--",
		"MULTILINE": "-----BEGIN TEST KEY-----\ncnry3a" + k() + "\ncnry3b" + k() + "\r\ncnry3c" + k() + "\n-----END TEST KEY-----\n",
		"UPDATED":   "cnry4-" + k(),
		"DELETED":   "cnry5-" + k(),
		"FILE":      "cnry6-\x00\x01\xff" + k(),
	}
}

// forms are the strings that must not appear anywhere: the value, its
// encodings, and each long line of a multi-line value.
func forms(v string) []string {
	out := []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.URLEncoding.EncodeToString([]byte(v)),
		base64.RawStdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)),
		hex.EncodeToString([]byte(v)), strings.ToUpper(hex.EncodeToString([]byte(v))), url.QueryEscape(v)}
	for _, line := range strings.Split(v, "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 12 && !strings.HasPrefix(line, "-----") {
			out = append(out, line, hex.EncodeToString([]byte(line)), base64.StdEncoding.EncodeToString([]byte(line)))
		}
	}
	return out
}

// dumpTables returns every row of every table as text.
func dumpTables(t *testing.T, db *store.DB) string {
	t.Helper()
	var tables []string
	if db.Dialect == store.SQLite {
		db.Raw("SELECT name FROM sqlite_master WHERE type = 'table'").Scan(&tables)
	} else {
		db.Raw("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables)
	}
	if len(tables) < 5 {
		t.Fatalf("only %d tables found: %v", len(tables), tables)
	}
	var out strings.Builder
	for _, tbl := range tables {
		rows, err := db.Raw(`SELECT * FROM "` + tbl + `"`).Rows()
		if err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					out.Write(b)
				} else {
					fmt.Fprint(&out, v)
				}
				out.WriteByte('\t')
			}
			out.WriteByte('\n')
		}
		rows.Close()
		if db.Dialect == store.Postgres { // the server's own text form (bytea as \x hex)
			var texts []string
			db.Raw(`SELECT t::text FROM "` + tbl + `" t`).Scan(&texts)
			out.WriteString(strings.Join(texts, "\n"))
		}
	}
	return out.String()
}

func TestSecretsNeverStoredOrShown(t *testing.T) {
	eachSecretsAPI(t, func(t *testing.T, a *secretsAPI) {
		var bodies bytes.Buffer
		record := func(r response) response { bodies.Write(r.Body); bodies.WriteString(fmt.Sprint(r.Header)); return r }
		cs := canaries()
		ids := map[string]string{}
		for name, v := range cs {
			body := map[string]any{"name": name, "project": "billing", "environment": "production"}
			if name == "FILE" {
				body["file_base64"] = base64.StdEncoding.EncodeToString([]byte(v))
			} else {
				body["value"] = v
			}
			if name == "UPDATED" {
				body["value"] = "cnry-first-" + secrets.NewKey()
				cs["UPDATED_V1"] = body["value"].(string)
			}
			r := record(a.do("POST", "/api/v1/secrets", body))
			if r.Status != 201 {
				t.Fatalf("create %s: %d %s", name, r.Status, r.Body)
			}
			ids[name] = r.JSON(t)["id"].(string)
		}
		record(a.do("PUT", "/api/v1/secrets/"+ids["UPDATED"], map[string]any{"value": cs["UPDATED"]}))
		record(a.do("DELETE", "/api/v1/secrets/"+ids["DELETED"], nil))
		// Every read route.
		for _, p := range []string{"/api/v1/secrets?project=billing&environment=production",
			"/api/v1/secrets?project=billing&environment=production&resolved=true",
			"/api/v1/secrets/" + ids["PLAIN"], "/api/v1/secrets/" + ids["UPDATED"] + "/versions",
			"/api/v1/audit", "/api/v1/keys"} {
			if r := record(a.do("GET", p, nil)); r.Status != 200 {
				t.Fatalf("GET %s: %d %s", p, r.Status, r.Body)
			}
		}
		// Errors about a value never echo it.
		record(a.do("PUT", "/api/v1/secrets/"+ids["PLAIN"], map[string]any{"value": cs["PLAIN"], "file_base64": "x"}))
		record(a.do("POST", "/api/v1/secrets", map[string]any{"name": "PLAIN", "value": cs["PLAIN"], "project": "billing", "environment": "production"}))
		// Runtime resolution works and is audited.
		rr := a.store.NewRunResolver("billing", "production", "run-9")
		for name, v := range cs {
			if name == "DELETED" || name == "UPDATED_V1" {
				continue
			}
			got, _, err := rr.Resolve(context.Background(), "blk", name, secrets.Scope{})
			if err != nil || got.Reveal() != v {
				t.Fatalf("resolve %s: %v", name, err)
			}
		}
		if _, err := rr.RedactionValues(context.Background()); err != nil {
			t.Fatal(err)
		}
		record(a.do("GET", "/api/v1/audit", nil))

		dump := dumpTables(t, a.db)
		var files []byte
		if a.db.Dialect == store.SQLite { // the database file and its WAL
			for _, suffix := range []string{"", "-wal", "-shm"} {
				b, _ := os.ReadFile(a.db.Location + suffix)
				files = append(files, b...)
			}
			if len(files) == 0 {
				t.Fatalf("no database file at %s", filepath.Clean(a.db.Location))
			}
		}
		sinks := map[string]string{"database rows": dump, "database files": string(files), "API responses": bodies.String(), "server log": a.logs.String()}
		for name, v := range cs {
			for _, f := range forms(v) {
				for sink, text := range sinks {
					if strings.Contains(text, f) {
						t.Errorf("%s holds a form of canary %s", sink, name)
					}
				}
			}
		}
		if !strings.Contains(dump, "PLAIN") || !strings.Contains(dump, "k1") {
			t.Fatal("the dump is missing the secrets' rows: the scan is not looking at the data")
		}
	})
}

func TestSecretsBadInput(t *testing.T) {
	eachSecretsAPI(t, func(t *testing.T, a *secretsAPI) {
		if r := a.do("POST", "/api/v1/secrets", map[string]any{"name": "DUP", "value": "dup-value-123456789"}); r.Status != 201 {
			t.Fatal(r.Status)
		}
		big := strings.Repeat("x", 64<<10+1)
		bigFile := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 1<<20+1))
		cases := []struct {
			name   string
			body   any
			status int
			want   string
		}{
			{"name starts with digit", map[string]any{"name": "1TOKEN", "value": "v"}, 400, "JavaScript identifier"},
			{"name with dash", map[string]any{"name": "API-TOKEN", "value": "v"}, 400, `invalid secret name "API-TOKEN"`},
			{"name too long", map[string]any{"name": strings.Repeat("A", 129), "value": "v"}, 400, "up to 128 characters"},
			{"empty name", map[string]any{"value": "v"}, 400, "secret name is empty"},
			{"empty value", map[string]any{"name": "E", "value": ""}, 400, "value is empty"},
			{"no value", map[string]any{"name": "E"}, 400, `send "value" (a string secret) or "file_base64"`},
			{"both", map[string]any{"name": "E", "value": "a", "file_base64": "YQ=="}, 400, "not both"},
			{"value over 64 KiB", map[string]any{"name": "BIG", "value": big}, 413, "at most 64 KiB"},
			{"file over 1 MiB", map[string]any{"name": "BIG", "file_base64": bigFile}, 413, "at most 1 MiB"},
			{"bad base64", map[string]any{"name": "F", "file_base64": "%%%"}, 400, "not valid base64"},
			{"empty file", map[string]any{"name": "F", "file_base64": ""}, 400, "file is empty"},
			{"duplicate", map[string]any{"name": "DUP", "value": "other-value-12345678"}, 409, `secret "DUP" already exists in organization`},
			{"unknown environment", map[string]any{"name": "X", "value": "v", "environment": "prod"}, 400, `unknown environment "prod"; create it first or use one of: development, production, staging`},
			{"unknown project", map[string]any{"name": "X", "value": "v", "project": "nope"}, 404, `project "nope" not found`},
			{"unknown scope field", map[string]any{"name": "X", "value": "v", "scope": "team"}, 400, `unknown field "scope"`},
			{"value not a string", map[string]any{"name": "X", "value": 5}, 400, `"value" must be a string`},
			{"bad host", map[string]any{"name": "X", "value": "v", "allowed_hosts": []string{"https://a.com/x"}}, 400, "no scheme, no path"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := a.do("POST", "/api/v1/secrets", c.body)
				if r.Status != c.status {
					t.Fatalf("status %d, want %d: %.300s", r.Status, c.status, r.Body)
				}
				if msg := r.errorMessage(t); !strings.Contains(msg, c.want) {
					t.Errorf("message %q does not contain %q", msg, c.want)
				}
			})
		}
		if r := a.do("GET", "/api/v1/secrets?environment=nope", nil); r.Status != 400 {
			t.Errorf("list unknown environment: %d", r.Status)
		}
		if r := a.do("GET", "/api/v1/secrets?project=nope", nil); r.Status != 404 {
			t.Errorf("list unknown project: %d", r.Status)
		}
		if r := a.do("PUT", "/api/v1/secrets/no-such-id", map[string]any{"value": "v"}); r.Status != 404 {
			t.Errorf("update unknown id: %d", r.Status)
		}
		// A weak value is accepted with a warning.
		r := a.do("POST", "/api/v1/secrets", map[string]any{"name": "PIN", "value": "1234"})
		if r.Status != 201 || r.JSON(t)["weak"] != true || len(r.JSON(t)["warnings"].([]any)) != 1 {
			t.Errorf("weak: %d %s", r.Status, r.Body)
		}
	})
}

func TestSecretsAuthorization(t *testing.T) {
	eachSecretsAPI(t, func(t *testing.T, a *secretsAPI) {
		user := func(name, role string) string {
			r := a.do("POST", "/api/v1/users", map[string]any{"name": name})
			uid := r.JSON(t)["id"].(string)
			if role != "" {
				if r := a.do("PUT", "/api/v1/projects/billing/members/"+uid, map[string]string{"role": role}); r.Status >= 300 {
					t.Fatalf("member: %d %s", r.Status, r.Body)
				}
			}
			r = a.do("POST", "/api/v1/users/"+uid+"/tokens", map[string]string{"name": name})
			return r.JSON(t)["token"].(string)
		}
		viewer, editor, outsider := user("vic", "viewer"), user("eddie", "editor"), user("olga", "")
		r := a.doToken(editor, "POST", "/api/v1/secrets", map[string]any{"name": "K", "value": "editor-value-123456", "project": "billing"})
		if r.Status != 201 {
			t.Fatalf("editor create: %d %s", r.Status, r.Body)
		}
		id := r.JSON(t)["id"].(string)
		if r := a.doToken(viewer, "POST", "/api/v1/secrets", map[string]any{"name": "K2", "value": "v", "project": "billing"}); r.Status != 403 {
			t.Errorf("viewer create: %d", r.Status)
		}
		if r := a.doToken(viewer, "GET", "/api/v1/secrets?project=billing", nil); r.Status != 200 {
			t.Errorf("viewer list: %d", r.Status)
		}
		if r := a.doToken(viewer, "PUT", "/api/v1/secrets/"+id, map[string]any{"value": "x"}); r.Status != 403 {
			t.Errorf("viewer update: %d", r.Status)
		}
		if r := a.doToken(outsider, "GET", "/api/v1/secrets?project=billing", nil); r.Status != 404 {
			t.Errorf("outsider list: %d", r.Status)
		}
		if r := a.doToken(outsider, "DELETE", "/api/v1/secrets/"+id, nil); r.Status != 404 {
			t.Errorf("outsider delete: %d", r.Status)
		}
		if r := a.doToken(editor, "POST", "/api/v1/secrets", map[string]any{"name": "ORG", "value": "v"}); r.Status != 403 {
			t.Errorf("editor org create: %d", r.Status)
		}
		if r := a.doToken(editor, "POST", "/api/v1/secrets", map[string]any{"name": "E", "value": "v", "environment": "production"}); r.Status != 403 {
			t.Errorf("editor environment create: %d", r.Status)
		}
		if r := a.doToken(editor, "POST", "/api/v1/keys/rotate", nil); r.Status != 403 {
			t.Errorf("editor rotate: %d", r.Status)
		}
		if r := a.doToken(editor, "GET", "/api/v1/audit?project=billing", nil); r.Status != 200 || len(r.JSON(t)["records"].([]any)) != 1 {
			t.Errorf("editor audit: %d %s", r.Status, r.Body)
		}
		if r := a.doToken(editor, "GET", "/api/v1/audit", nil); r.Status != 403 {
			t.Errorf("editor whole audit: %d", r.Status)
		}
		if r := a.doToken(viewer, "GET", "/api/v1/audit?project=billing", nil); r.Status != 403 {
			t.Errorf("viewer audit: %d", r.Status)
		}
	})
}

func TestSecretsRotateAPI(t *testing.T) {
	eachSecretsAPI(t, func(t *testing.T, a *secretsAPI) {
		a.do("POST", "/api/v1/secrets", map[string]any{"name": "R", "value": "rotate-value-12345678"})
		r := a.do("POST", "/api/v1/keys/rotate", nil)
		if r.Status != 200 || r.JSON(t)["rewrapped"].(float64) != 0 || r.JSON(t)["primary"] != "k1" {
			t.Fatalf("rotate: %d %s", r.Status, r.Body)
		}
		if r := a.do("POST", "/api/v1/keys/rotate", map[string]any{"batch_size": -1}); r.Status != 400 {
			t.Errorf("bad batch: %d", r.Status)
		}
		r = a.do("GET", "/api/v1/keys", nil)
		if r.Status != 200 || r.JSON(t)["primary"] != "k1" {
			t.Errorf("keys: %d %s", r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), "rotate-value") {
			t.Error("leak")
		}
	})
}

func TestSecretsConcurrentUpdatesAPI(t *testing.T) {
	eachSecretsAPI(t, func(t *testing.T, a *secretsAPI) {
		r := a.do("POST", "/api/v1/secrets", map[string]any{"name": "HOT", "value": "hot-value-0-abcdefgh", "project": "shop"})
		id := r.JSON(t)["id"].(string)
		var wg sync.WaitGroup
		statuses := make(chan int, 50)
		for i := 1; i <= 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := strings.NewReader(fmt.Sprintf(`{"value":"hot-value-%d-abcdefgh"}`, i))
				req, _ := http.NewRequest("PUT", a.url+"/api/v1/secrets/"+id, body)
				req.Header.Set("Authorization", "Bearer "+a.token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					statuses <- 0
					return
				}
				resp.Body.Close()
				statuses <- resp.StatusCode
			}()
		}
		wg.Wait()
		close(statuses)
		for st := range statuses {
			if st != 200 {
				t.Fatalf("an update answered %d", st)
			}
		}
		r = a.do("GET", "/api/v1/secrets/"+id+"/versions", nil)
		vs := r.JSON(t)["versions"].([]any)
		seen := map[float64]bool{}
		for _, v := range vs {
			seen[v.(map[string]any)["version"].(float64)] = true
		}
		if len(vs) != 51 || len(seen) != 51 || !seen[51] || !seen[1] {
			t.Fatalf("%d versions (%d distinct), want 1..51", len(vs), len(seen))
		}
	})
}
