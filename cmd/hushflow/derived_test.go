package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hushflow/hushflow/internal/apptest"
)

// Issue 20 item 1: a value a code block or a field derives from a secret
// with a common string operation is masked in every view, while the
// service the flow calls receives the real derived value. One case per
// derived form: the code block logs it and returns it, and an http block
// sends it in its body twice (the code block's output, and the same
// expression evaluated as the body field) to a local service that echoes
// the body back. The views: the run's events, its live stream, the run,
// the run list, the CLI's run get, run logs and run list, the server log
// and every database row.

// derivedCanary is a unique value with mixed case (so that upper- and
// lower-casing change it) and the characters encodings treat specially.
func derivedCanary(t *testing.T) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 24)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alnum))))
		if err != nil {
			t.Fatal(err)
		}
		b[i] = alnum[n.Int64()]
	}
	return `cnry_D20_&<>"%\_` + string(b)
}

func reverseString(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// jsPercent escapes s as JavaScript's encodeURIComponent (keep =
// "-_.!~*'()") or escape (keep = "@*_+-./") do for ASCII text.
func jsPercent(s, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(keep, c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func jsonStringify(s string) string {
	var b strings.Builder
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

var derivedForms = []struct {
	name string
	js   string                // the expression, with secrets.K
	want func(k string) string // what it gives, computed in Go
}{
	{"slice", "secrets.K.slice(0, 12)", func(k string) string { return k[:12] }},
	{"substring", "secrets.K.substring(3, 21)", func(k string) string { return k[3:21] }},
	{"substr", "secrets.K.substr(-16)", func(k string) string { return k[len(k)-16:] }},
	{"toUpperCase", "secrets.K.toUpperCase()", strings.ToUpper},
	{"toLowerCase", "secrets.K.toLowerCase()", strings.ToLower},
	{"split-reverse-join", "secrets.K.split('').reverse().join('')", reverseString},
	{"replace", "secrets.K.replace('cnry', 'CANARY')", func(k string) string { return strings.Replace(k, "cnry", "CANARY", 1) }},
	{"replaceAll", "secrets.K.replaceAll('_', '.')", func(k string) string { return strings.ReplaceAll(k, "_", ".") }},
	{"trim", "('  ' + secrets.K.slice(2) + '\\t').trim()", func(k string) string { return k[2:] }},
	{"padStart", "secrets.K.slice(0, 16).padStart(24, '*')", func(k string) string { return "********" + k[:16] }},
	{"padEnd", "secrets.K.slice(-16).padEnd(24, '.')", func(k string) string { return k[len(k)-16:] + "........" }},
	{"concat", "'id:'.concat(secrets.K.slice(1))", func(k string) string { return "id:" + k[1:] }},
	{"plus", "'user=' + secrets.K.toUpperCase()", func(k string) string { return "user=" + strings.ToUpper(k) }},
	{"template", "`key ${secrets.K.substring(4)}!`", func(k string) string { return "key " + k[4:] + "!" }},
	{"btoa-prefixed-slice", "btoa('user:' + secrets.K.slice(0, 20))", func(k string) string { return base64.StdEncoding.EncodeToString([]byte("user:" + k[:20])) }},
	{"btoa-upper", "btoa(secrets.K.toUpperCase())", func(k string) string { return base64.StdEncoding.EncodeToString([]byte(strings.ToUpper(k))) }},
	{"encodeURIComponent", "encodeURIComponent(secrets.K.slice(6))", func(k string) string { return jsPercent(k[6:], "-_.!~*'()") }},
	{"escape", "escape(secrets.K.toLowerCase())", func(k string) string { return jsPercent(strings.ToLower(k), "@*_+-./") }},
	{"JSON.stringify", "JSON.stringify(secrets.K.slice(3))", func(k string) string { return jsonStringify(k[3:]) }},
	{"Array.from-join", "Array.from(secrets.K.toUpperCase()).join('')", strings.ToUpper},
	{"spread-reverse-join", "[...secrets.K.slice(2)].reverse().join('')", func(k string) string { return reverseString(k[2:]) }},
	{"fromCharCode", "String.fromCharCode(...Array.from(secrets.K.slice(0, 18)).map(c => c.charCodeAt(0)))", func(k string) string { return k[:18] }},
}

func TestIssue20DerivedValuesMasked(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		t.Setenv("HUSHFLOW_ADDR", s.URL)
		t.Setenv("HUSHFLOW_TOKEN", s.Token)
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "p"})
		k := derivedCanary(t)
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "K", "value": k, "project": "p"})
		var mu sync.Mutex
		received := map[string]map[string]string{} // flow -> body fields
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			var got map[string]string
			if err := json.Unmarshal(body, &got); err == nil {
				mu.Lock()
				received[got["flow"]] = got
				mu.Unlock()
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"echo": string(body)})
		}))
		defer target.Close()
		c := &flowCLI{t: t}
		for _, f := range derivedForms {
			t.Run(f.name, func(t *testing.T) {
				want := f.want(k)
				name := "derived-" + strings.ToLower(strings.NewReplacer(".", "-", "_", "-").Replace(f.name))
				s.Must(201, "POST", "/api/v1/projects/p/flows", map[string]any{
					"name": name, "trigger": map[string]any{"type": "manual"},
					"blocks": []any{
						map[string]any{"id": "c", "type": "code", "config": map[string]any{
							"code": "const d = " + f.js + "; console.log('derived', d); return {d}"}},
						map[string]any{"id": "h", "type": "http", "config": map[string]any{
							"method": "'POST'", "url": fmt.Sprintf("%q", target.URL+"/echo"),
							"body": fmt.Sprintf("({flow: %q, d: steps.c.output.d, f: %s})", name, f.js)}},
					}})
				run := s.Must(200, "POST", "/api/v1/projects/p/flows/"+name+"/runs?wait=60s", map[string]any{"environment": "development"})
				if run["status"] != "succeeded" {
					t.Fatalf("run: %v", run)
				}
				id := run["id"].(string)
				mu.Lock()
				got := received[name]
				mu.Unlock()
				if got["d"] != want || got["f"] != want {
					t.Errorf("the service received %q and %q, want the real derived value %q", got["d"], got["f"], want)
				}
				evResp := s.Do("GET", "/api/v1/runs/"+id+"/events", nil)
				events := string(evResp.Body)
				var list struct {
					Events []struct {
						Type string         `json:"type"`
						Data map[string]any `json:"data"`
					} `json:"events"`
				}
				_ = json.Unmarshal(evResp.Body, &list)
				logged := false
				for _, e := range list.Events {
					if msg, _ := e.Data["message"].(string); e.Type == "log" && strings.HasPrefix(msg, "derived ") {
						logged = strings.Contains(msg, "[REDACTED:K]")
					}
				}
				if !logged {
					t.Errorf("no log event shows the mask: %.2000s", events)
				}
				surfaces := map[string]string{
					"events":       events,
					"live stream":  string(s.Do("GET", "/api/v1/runs/"+id+"/events?follow=1", nil).Body),
					"run":          string(s.Do("GET", "/api/v1/runs/"+id, nil).Body),
					"run list":     string(s.Do("GET", "/api/v1/projects/p/runs", nil).Body),
					"CLI run get":  c.must("run", "get", id),
					"CLI run logs": c.must("run", "logs", id),
					"CLI run list": c.must("run", "list", "-p", "p"),
					"server log":   s.Logs.String(),
					"database":     apptest.DumpTables(t, s.App.DB),
				}
				for where, text := range surfaces {
					apptest.AssertAbsent(t, where, text, want, k)
				}
			})
		}
		// The editor's preview of a field masks what it derives as well.
		prev := s.Do("POST", "/api/v1/projects/p/evaluate", map[string]any{
			"expression": "'key ' + secrets.K.slice(2).toUpperCase()", "environment": "development"})
		if prev.Status != 200 || !strings.Contains(string(prev.Body), "key [REDACTED:K]") {
			t.Errorf("evaluate: %d %s", prev.Status, prev.Body)
		}
		apptest.AssertAbsent(t, "preview", string(prev.Body), strings.ToUpper(k[2:]))
	})
}

// A condition (expr-lang) that fails on what it made of a secret quotes
// that derived value in its error: `int(lower(secrets.K))` fails with
// "invalid operation: int(<the value, lower-cased>)". The error reaches
// the block_failed and on_error_started events and the run's error; each
// shows the mask, never the derived value.
func TestConditionErrorsMaskDerivedValues(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "p"})
		k := "cnryIF" + derivedCanary(t)[16:] // letters and digits: int() fails on every form
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "K", "value": k, "project": "p"})
		forms := map[string]string{
			"int(lower(secrets.K)) > 0":                        strings.ToLower(k),
			"int(upper(secrets.K)) > 0":                        strings.ToUpper(k),
			`int(join(reverse(split(secrets.K, "")), "")) > 0`: reverseString(k),
			"int(secrets.K[0:20]) > 0":                         k[:20],
		}
		var blocks []any
		i := 0
		for cond := range forms {
			i++
			blocks = append(blocks, map[string]any{"id": fmt.Sprintf("b%d", i), "type": "log", "if": cond,
				"continue_on_error": i < len(forms), "config": map[string]any{"message": "'never'"}})
		}
		s.Must(201, "POST", "/api/v1/projects/p/flows", map[string]any{
			"name": "conds", "trigger": map[string]any{"type": "manual"}, "blocks": blocks,
			"on_error": []any{map[string]any{"id": "h", "type": "log", "config": map[string]any{"message": "'handled: ' + error"}}},
		})
		run := s.Must(200, "POST", "/api/v1/projects/p/flows/conds/runs?wait=60s", map[string]any{"environment": "development"})
		if run["status"] != "failed" {
			t.Fatalf("run: %v", run)
		}
		id := run["id"].(string)
		events := string(s.Do("GET", "/api/v1/runs/"+id+"/events", nil).Body)
		if n := strings.Count(events, `"block_failed"`); n != len(forms) {
			t.Errorf("%d block_failed events, want %d: %.3000s", n, len(forms), events)
		}
		if !strings.Contains(events, "[REDACTED:K]") {
			t.Errorf("no event shows the mask: %.3000s", events)
		}
		surfaces := map[string]string{
			"events":      events,
			"live stream": string(s.Do("GET", "/api/v1/runs/"+id+"/events?follow=1", nil).Body),
			"run":         string(s.Do("GET", "/api/v1/runs/"+id, nil).Body),
			"server log":  s.Logs.String(),
			"database":    apptest.DumpTables(t, s.App.DB),
		}
		for where, text := range surfaces {
			for _, derived := range forms {
				apptest.AssertAbsent(t, where, text, derived, k)
			}
		}
	})
}
