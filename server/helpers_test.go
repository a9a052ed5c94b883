package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/server"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// api is a running API over a real database, with an admin token.
type api struct {
	server *server.Server
	t      *testing.T
	url    string
	token  string
	db     *store.DB
}

func newAPI(t *testing.T, db *store.DB) *api { return newAPIWith(t, db, nil) }

func newAPIWith(t *testing.T, db *store.DB, mod func(*server.Deps)) *api {
	t.Helper()
	deps := server.Deps{DB: db, Auth: auth.New(auth.Config{DB: db}), Projects: projects.NewService(db)}
	if mod != nil {
		mod(&deps)
	}
	token, err := deps.Auth.Bootstrap(context.Background())
	if err != nil || token == "" {
		t.Fatalf("bootstrap: %q %v", token, err)
	}
	s := server.New(deps)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &api{server: s, t: t, url: ts.URL, token: token, db: db}
}

// eachAPI runs f against an API on every backend.
func eachAPI(t *testing.T, f func(t *testing.T, a *api)) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) { f(t, newAPI(t, db)) })
}

type response struct {
	Status int
	Body   []byte
	Header http.Header
}

func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %q", r.Status, r.Body)
	}
	return m
}

// errorMessage returns error.message of an API error body.
func (r response) errorMessage(t *testing.T) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error object in %q", r.Body)
	}
	return e["message"].(string)
}

func (a *api) do(method, path string, body any) response {
	return a.doToken(a.token, method, path, body)
}

func (a *api) doToken(token, method, path string, body any) response {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.url+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: data, Header: resp.Header}
}

var _ = httptest.NewRecorder
