package security_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
)

// role is who calls: an organization admin, a member of the project with a
// role, or a user who is a member only of another project.
type role string

const (
	orgAdmin role = "org-admin"
	pAdmin   role = "admin"
	pEditor  role = "editor"
	pViewer  role = "viewer"
	outsider role = "outsider" // member (admin) of another project only
)

var rank = map[role]int{pViewer: 1, pEditor: 2, pAdmin: 3, orgAdmin: 4}

// route is one API route of the matrix. need is the least role; org is
// true for organization-level routes (org admins only, 403 for others).
type route struct {
	method, path string // placeholders: {p} project, {flow}, {run}, {secret}, {user}, {n} unique counter
	body         string
	need         role
	org          bool
	ok           int
}

// The table: every authenticated route but the caller's own tokens.
var routes = []route{
	{"GET", "/api/v1/projects/{p}", "", pViewer, false, 200},
	{"GET", "/api/v1/projects/{p}/members", "", pViewer, false, 200},
	{"PUT", "/api/v1/projects/{p}/members/{user}", `{"role":"viewer"}`, pAdmin, false, 200},
	{"GET", "/api/v1/projects/{p}/flows", "", pViewer, false, 200},
	{"GET", "/api/v1/projects/{p}/flows/main", "", pViewer, false, 200},
	{"GET", "/api/v1/projects/{p}/flows/main/versions", "", pViewer, false, 200},
	{"POST", "/api/v1/projects/{p}/flows", `{"name":"f{n}","trigger":{"type":"manual"},"blocks":[{"id":"l","type":"log","config":{"message":"'x'"}}]}`, pEditor, false, 201},
	{"PUT", "/api/v1/projects/{p}/flows/main", `{"name":"main","trigger":{"type":"manual"},"blocks":[{"id":"l","type":"log","config":{"message":"'y'"}}]}`, pEditor, false, 200},
	{"DELETE", "/api/v1/projects/{p}/flows/{flow}", "", pEditor, false, 204},
	{"POST", "/api/v1/projects/{p}/flows/main/runs", `{"environment":"development"}`, pEditor, false, 202},
	{"GET", "/api/v1/projects/{p}/runs", "", pViewer, false, 200},
	{"GET", "/api/v1/runs/{run}", "", pViewer, false, 200},
	{"GET", "/api/v1/runs/{run}/events", "", pViewer, false, 200},
	{"POST", "/api/v1/runs/{run}/cancel", "", pEditor, false, 200},
	{"POST", "/api/v1/projects/{p}/evaluate", `{"expression":"1+1","environment":"development"}`, pEditor, false, 200},
	{"POST", "/api/v1/projects/{p}/events", `{"topic":"a:b","environment":"development"}`, pEditor, false, 202},
	{"POST", "/api/v1/secrets", `{"name":"S{n}","value":"v4lue-{n}-Zq8","project":"{p}"}`, pEditor, false, 201},
	{"GET", "/api/v1/secrets?project={p}", "", pViewer, false, 200},
	{"GET", "/api/v1/secrets?project={p}&environment=production&resolved=true", "", pViewer, false, 200},
	{"GET", "/api/v1/secrets/{secret}", "", pViewer, false, 200},
	{"GET", "/api/v1/secrets/{secret}/versions", "", pViewer, false, 200},
	{"PUT", "/api/v1/secrets/{secret}", `{"value":"n3w-value-{n}-Xy"}`, pEditor, false, 200},
	{"DELETE", "/api/v1/secrets/{tmpsecret}", "", pEditor, false, 204},
	{"GET", "/api/v1/audit?project={p}", "", pEditor, false, 200},
	{"GET", "/api/v1/projects/{p}/installations", "", pViewer, false, 200},
	{"GET", "/api/v1/projects/{p}/installations/main", "", pViewer, false, 200},
	{"POST", "/api/v1/projects/{p}/installations", `{"app":"bearer_api","name":"i{n}","config":{"token":"secrets.TOKEN","base_url":"'http://127.0.0.1:1'"}}`, pEditor, false, 201},
	{"PUT", "/api/v1/projects/{p}/installations/main", `{"app":"bearer_api","name":"main","config":{"token":"secrets.TOKEN","base_url":"'http://127.0.0.1:2'"}}`, pEditor, false, 200},
	{"DELETE", "/api/v1/projects/{p}/installations/{inst}", "", pEditor, false, 204},
	// Organization level.
	{"POST", "/api/v1/projects", `{"name":"p{n}"}`, orgAdmin, true, 201},
	{"POST", "/api/v1/environments", `{"name":"env{n}"}`, orgAdmin, true, 201},
	{"PUT", "/api/v1/environments/staging", `{"protected":false}`, orgAdmin, true, 200},
	{"POST", "/api/v1/users", `{"name":"u{n}"}`, orgAdmin, true, 201},
	{"POST", "/api/v1/secrets", `{"name":"ORG{n}","value":"org-value-{n}-Kq"}`, orgAdmin, true, 201},
	{"POST", "/api/v1/keys/rotate", `{}`, orgAdmin, true, 200},
}

// TestRoleMatrix calls every route as every role, on its own project and on
// another project, and checks the status against one rule: no role in the
// project -> 404 (as if it did not exist); a role below the need -> 403;
// otherwise the route's success status.
func TestRoleMatrix(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		var n atomic.Int64
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "alpha"})
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "beta"})
		tokens := map[role]string{orgAdmin: s.Token}
		ids := map[role]string{}
		for _, r := range []role{pAdmin, pEditor, pViewer, outsider} {
			u := s.Must(201, "POST", "/api/v1/users", map[string]any{"name": "user-" + string(r)})
			ids[r] = u["id"].(string)
			tokens[r] = s.Must(201, "POST", "/api/v1/users/"+ids[r]+"/tokens", map[string]string{"name": "t"})["token"].(string)
			p, want := "alpha", string(r)
			if r == outsider {
				p, want = "beta", "admin"
			}
			s.Must(200, "PUT", "/api/v1/projects/"+p+"/members/"+ids[r], map[string]string{"role": want})
		}
		extra := s.Must(201, "POST", "/api/v1/users", map[string]any{"name": "extra"})["id"].(string)
		fixture := map[string]map[string]string{}
		for _, p := range []string{"alpha", "beta"} {
			s.Must(201, "POST", "/api/v1/projects/"+p+"/flows", map[string]any{"name": "main", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'hi'"}}}})
			run := s.Must(202, "POST", "/api/v1/projects/"+p+"/flows/main/runs", map[string]any{"environment": "development"})
			sec := s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "TOKEN", "value": "matrix-" + p + "-Hq7Zp2", "project": p})
			s.Must(201, "POST", "/api/v1/projects/"+p+"/installations", map[string]any{"app": "bearer_api", "name": "main",
				"config": map[string]any{"token": "secrets.TOKEN", "base_url": "'http://127.0.0.1:1'"}})
			fixture[p] = map[string]string{"run": run["id"].(string), "secret": sec["id"].(string)}
		}
		expand := func(tmpl, p string) string {
			k := n.Add(1)
			r := strings.NewReplacer("{p}", p, "{user}", extra, "{n}", fmt.Sprint(k),
				"{run}", fixture[p]["run"], "{secret}", fixture[p]["secret"])
			out := r.Replace(tmpl)
			if strings.Contains(out, "{flow}") {
				name := fmt.Sprintf("tmp%d", k)
				s.Must(201, "POST", "/api/v1/projects/"+p+"/flows", map[string]any{"name": name, "trigger": map[string]any{"type": "manual"},
					"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'x'"}}}})
				out = strings.ReplaceAll(out, "{flow}", name)
			}
			if strings.Contains(out, "{inst}") {
				name := fmt.Sprintf("tmp%d", k)
				s.Must(201, "POST", "/api/v1/projects/"+p+"/installations", map[string]any{"app": "bearer_api", "name": name,
					"config": map[string]any{"token": "secrets.TOKEN", "base_url": "'http://127.0.0.1:1'"}})
				out = strings.ReplaceAll(out, "{inst}", name)
			}
			if strings.Contains(out, "{tmpsecret}") {
				sec := s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": fmt.Sprintf("TMP%d", k), "value": fmt.Sprintf("tmp-%d-value-Pz", k), "project": p})
				out = strings.ReplaceAll(out, "{tmpsecret}", sec["id"].(string))
			}
			return out
		}
		for _, rt := range routes {
			for _, who := range []role{orgAdmin, pAdmin, pEditor, pViewer, outsider} {
				// Project routes are called on alpha; the outsider is an
				// admin of beta and sees alpha as nonexistent.
				want := rt.ok
				switch {
				case rt.org && who != orgAdmin:
					want = http.StatusForbidden
				case !rt.org && who == outsider:
					want = http.StatusNotFound
				case !rt.org && rank[who] < rank[rt.need]:
					want = http.StatusForbidden
				}
				path, body := expand(rt.path, "alpha"), expand(rt.body, "alpha")
				var b any
				if body != "" {
					b = body
				}
				r := s.DoToken(tokens[who], rt.method, path, b)
				if r.Status != want {
					t.Errorf("%s %s as %s: %d, want %d: %.200s", rt.method, rt.path, who, r.Status, want, r.Body)
				}
				if want == http.StatusNotFound && strings.Contains(string(r.Body), "alpha-") {
					t.Errorf("404 body reveals data: %s", r.Body)
				}
			}
		}
	}, func(c *app.Config) { c.RateLimit = -1 })
}
