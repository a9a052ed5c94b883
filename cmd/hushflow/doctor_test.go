package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// TestDoctorRedaction: hushflow doctor redaction exits 0 with "all
// masked" on a server that masks every sink, and 1 naming the sink on a
// server whose server-log masking is turned off (a test-only setting);
// -o json prints the report.
func TestDoctorRedaction(t *testing.T) {
	apptest.SkipShort(t)
	for _, tc := range []struct {
		name, disable string
		status        int
		want          string
	}{
		{"masked", "", exitOK, "all masked: 12 sinks x 7 forms in project billing, environment staging"},
		{"leak", "server_log", exitError, "LEAKED in server_log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := apptest.Start(t, storetest.SQLiteConfig(t), func(c *app.Config) { c.TestDisableMasking = tc.disable })
			t.Setenv("HUSHFLOW_ADDR", s.URL)
			t.Setenv("HUSHFLOW_TOKEN", s.Token)
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
			c := &flowCLI{t: t}
			out, err := c.run("doctor", "redaction", "-p", "billing", "-e", "staging")
			if got := exitStatus(err); got != tc.status || !strings.Contains(out, tc.want) {
				t.Fatalf("exit status %d, want %d; output:\n%s", got, tc.status, out)
			}
			if !strings.Contains(out, "SINK") || !strings.Contains(out, "server_log") {
				t.Errorf("no table:\n%s", out)
			}
			if tc.status != exitOK && (err == nil || !strings.Contains(err.Error(), "server_log")) {
				t.Errorf("the error does not name the sink: %v", err)
			}
			out, err = c.run("doctor", "redaction", "-p", "billing", "-e", "staging", "-o", "json")
			var rep doctorReport
			if jerr := json.Unmarshal([]byte(strings.SplitN(out, "\nredaction self-test failed", 2)[0]), &rep); jerr != nil || exitStatus(err) != tc.status || len(rep.Results) != 84 {
				t.Errorf("-o json: exit %d, %d results, %v:\n%s", exitStatus(err), len(rep.Results), jerr, out)
			}
		})
	}
	t.Run("usage", func(t *testing.T) {
		c := &flowCLI{t: t}
		if _, err := c.run("doctor", "redaction", "-p", "billing"); exitStatus(err) != exitUsage || !strings.Contains(err.Error(), "--environment is required") {
			t.Errorf("missing --environment: %v", err)
		}
	})
}
