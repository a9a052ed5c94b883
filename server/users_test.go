package server_test

import (
	"fmt"
	"testing"
)

// TestListUsersAndMemberNames (issue 18 item 5): GET /users lists every
// user for an organization admin only; a project's members carry the
// user's name, which the settings page shows.
func TestListUsersAndMemberNames(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		a.do("POST", "/api/v1/projects", map[string]string{"name": "alpha"})
		u := a.do("POST", "/api/v1/users", map[string]any{"name": "zoe"}).JSON(t)
		a.do("POST", "/api/v1/users", map[string]any{"name": "bob", "admin": true})
		uid := u["id"].(string)
		r := a.do("GET", "/api/v1/users", nil)
		if r.Status != 200 {
			t.Fatalf("list users: %d %s", r.Status, r.Body)
		}
		var names []string
		for _, x := range r.JSON(t)["users"].([]any) {
			m := x.(map[string]any)
			names = append(names, fmt.Sprint(m["name"], ":", m["admin"]))
		}
		if fmt.Sprint(names) != "[admin:true bob:true zoe:false]" {
			t.Errorf("users: %v", names)
		}
		tok := a.do("POST", "/api/v1/users/"+uid+"/tokens", map[string]string{"name": "t"}).JSON(t)["token"].(string)
		if r := a.doToken(tok, "GET", "/api/v1/users", nil); r.Status != 403 {
			t.Errorf("a non-admin lists users: %d %s", r.Status, r.Body)
		}
		a.do("PUT", "/api/v1/projects/alpha/members/"+uid, map[string]string{"role": "editor"})
		ms := a.do("GET", "/api/v1/projects/alpha/members", nil).JSON(t)["members"].([]any)
		if len(ms) != 1 || ms[0].(map[string]any)["name"] != "zoe" || ms[0].(map[string]any)["role"] != "editor" {
			t.Errorf("members: %v", ms)
		}
	})
}
