package flows_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hushflow/hushflow/internal/apptest"
)

// TestIssue16KeyOrderThroughARun (issue 16, item 16): the keys of the
// run's input (sent as JSON to the API), of an HTTP block's JSON response
// and of an object a code block returns reach the next blocks' scripts in
// their original order (as V8 would list them: array indices first), in
// process (a bounded field) and in the sandbox (code blocks), and a
// condition reads them too.
func TestIssue16KeyOrderThroughARun(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"zeta":1,"alpha":{"y":true,"x":null},"7":"seven"}`))
		}))
		defer srv.Close()
		flow := map[string]any{
			"name": "order", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "call", "type": "http", "config": map[string]any{"url": "'" + srv.URL + "/x'"}},
				map[string]any{"id": "shape", "type": "code", "config": map[string]any{
					"code": "return {tail: 1, head: JSON.stringify(input), 0: JSON.stringify(steps.call.output.body)}"}},
				map[string]any{"id": "show", "type": "log", "if": `steps.call.output.body.alpha.y == true && steps.shape.output.tail == 1`,
					"config": map[string]any{"message": "JSON.stringify(steps.shape.output) + ' ' + JSON.stringify(input)"}},
				map[string]any{"id": "last", "type": "code", "config": map[string]any{
					"code": "return JSON.stringify([input, steps.call.output.body, steps.shape.output])"}},
			},
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow)
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/order/runs?wait=60s",
			`{"environment":"development","input":{"b":1,"a":{"d":1,"c":[2]},"10":0,"2":0}}`)
		if run["status"] != "succeeded" {
			t.Fatalf("run: %v", run)
		}
		const input = `{"2":0,"10":0,"b":1,"a":{"d":1,"c":[2]}}`
		const body = `{"7":"seven","zeta":1,"alpha":{"y":true,"x":null}}`
		shape := `{"0":` + quote(body) + `,"tail":1,"head":` + quote(input) + `}`
		if want := "[" + input + "," + body + "," + shape + "]"; run["output"] != want {
			t.Fatalf("output\n%v\nwant\n%s", run["output"], want)
		}
		ev := s.Must(200, "GET", "/api/v1/runs/"+run["id"].(string)+"/events", nil)
		for _, e := range ev["events"].([]any) {
			m := e.(map[string]any)
			if m["type"] == "log" && m["block"] == "show" {
				if d := m["data"].(map[string]any); d["message"] != shape+" "+input {
					t.Fatalf("log block: %v", d["message"])
				}
				return
			}
		}
		t.Fatalf("no log event of block show: %s", eventList(ev))
	})
}

func quote(s string) string {
	b := []byte{'"'}
	for _, c := range []byte(s) {
		if c == '"' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return string(append(b, '"'))
}
