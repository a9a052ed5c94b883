package doctor_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	_ "github.com/hushflow/hushflow/blocks/all"
	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/internal/doctor"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// report runs the self-test through the API.
func report(t *testing.T, s *apptest.Server) doctor.Report {
	t.Helper()
	r := s.Do("POST", "/api/v1/projects/billing/doctor/redaction", map[string]any{"environment": "production"})
	if r.Status != 200 {
		t.Fatalf("doctor: %d %s", r.Status, r.Body)
	}
	var rep doctor.Report
	if err := json.Unmarshal(r.Body, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func setup(t *testing.T, s *apptest.Server) {
	s.Must(201, "POST", "/api/v1/projects", map[string]any{"name": "billing"})
	s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": "sk_live_doctor_neighbour_0123456789",
		"project": "billing", "environment": "production"})
}

// statuses maps sink -> form -> status.
func statuses(rep doctor.Report) map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, r := range rep.Results {
		if m[r.Sink] == nil {
			m[r.Sink] = map[string]string{}
		}
		m[r.Sink][r.Form] = r.Status
	}
	return m
}

// assertGone checks that the self-test left no secret, flow or run behind
// (its audit records stay).
func assertGone(t *testing.T, s *apptest.Server) {
	t.Helper()
	secs := s.Must(200, "GET", "/api/v1/secrets?project=billing&environment=production", nil)
	if b, _ := json.Marshal(secs); strings.Contains(string(b), "HUSHFLOW_DOCTOR_") {
		t.Errorf("the canary secret is still listed: %s", b)
	}
	fl := s.Must(200, "GET", "/api/v1/projects/billing/flows", nil)
	if b, _ := json.Marshal(fl); strings.Contains(string(b), "hushflow-doctor-") {
		t.Errorf("the self-test's flow is still listed: %s", b)
	}
	runs := s.Must(200, "GET", "/api/v1/projects/billing/runs", nil)
	if rs, _ := runs["runs"].([]any); len(rs) != 0 {
		t.Errorf("the self-test's run is still listed: %v", rs)
	}
	for _, table := range []string{"runs", "events", "run_checkpoints"} {
		var n int64
		if err := s.App.DB.Table(table).Count(&n).Error; err != nil || n != 0 {
			t.Errorf("%s holds %d rows after the self-test (%v)", table, n, err)
		}
	}
	audit := s.Must(200, "GET", "/api/v1/audit?project=billing", nil)
	b, _ := json.Marshal(audit)
	if !strings.Contains(string(b), "HUSHFLOW_DOCTOR_") || !strings.Contains(string(b), `"delete"`) {
		t.Errorf("the canary's audit records (create, delete) are not kept: %.500s", b)
	}
}

// TestRedactionSelfTest: on both databases, every sink and form is
// reported masked (exec enabled, loopback refused by the egress policy:
// the echo is reached through the self-test's own route), and the
// self-test leaves nothing behind.
func TestRedactionSelfTest(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		rep := report(t, s)
		if !rep.OK || len(rep.Leaked) != 0 {
			t.Errorf("report not ok: leaked %v", rep.Leaked)
		}
		st := statuses(rep)
		for _, sink := range doctor.Sinks {
			for _, f := range doctor.Forms {
				if got := st[sink][f.Name]; got != doctor.StatusMasked {
					t.Errorf("%s/%s: %q, want masked", sink, f.Name, got)
				}
			}
		}
		if len(rep.Results) != len(doctor.Sinks)*len(doctor.Forms) {
			t.Errorf("%d results, want %d", len(rep.Results), len(doctor.Sinks)*len(doctor.Forms))
		}
		assertGone(t, s)
	}, func(c *app.Config) { c.Exec = true; c.HTTPAllow = "" })
}

// TestRedactionSelfTestExecDisabled: without exec the exec sink is
// skipped, and the report is still ok.
func TestRedactionSelfTestExecDisabled(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		rep := report(t, s)
		st := statuses(rep)
		if !rep.OK || st["exec"]["plain"] != doctor.StatusSkipped || st["log"]["plain"] != doctor.StatusMasked {
			t.Errorf("ok %v, exec %v, log %v", rep.OK, st["exec"], st["log"])
		}
		// Project admins only: an editor is refused, and nothing is created.
		user := s.Must(201, "POST", "/api/v1/users", map[string]any{"name": "ed"})
		tok := s.Must(201, "POST", "/api/v1/users/"+user["id"].(string)+"/tokens", map[string]string{"name": "t"})["token"].(string)
		s.Must(200, "PUT", "/api/v1/projects/billing/members/"+user["id"].(string), map[string]string{"role": "editor"})
		if r := s.DoToken(tok, "POST", "/api/v1/projects/billing/doctor/redaction", map[string]any{"environment": "production"}); r.Status != 403 {
			t.Errorf("editor: %d %s", r.Status, r.Body)
		}
		if r := s.Do("POST", "/api/v1/projects/billing/doctor/redaction", map[string]any{"environment": "nope"}); r.Status != 404 {
			t.Errorf("unknown environment: %d %s", r.Status, r.Body)
		}
		assertGone(t, s)
	})
}

// TestRedactionSelfTestCatchesLeaks: a server whose masking of one sink is
// turned off (a test-only setting) gets a report that is not ok and names
// that sink, every form leaked, and the sinks that do not depend on it
// masked.
func TestRedactionSelfTestCatchesLeaks(t *testing.T) {
	apptest.SkipShort(t)
	for _, tc := range []struct {
		disable string
		leaked  []string
	}{
		{"server_log", []string{"server_log"}},
		{"events", []string{"log", "error", "output", "http_request", "http_response", "events", "live_stream", "database"}},
	} {
		t.Run(tc.disable, func(t *testing.T) {
			apptest.Each(t, func(t *testing.T, s *apptest.Server) {
				setup(t, s)
				rep := report(t, s)
				if rep.OK {
					t.Fatalf("report ok with %s unmasked", tc.disable)
				}
				if !slices.Equal(rep.Leaked, tc.leaked) {
					t.Errorf("leaked sinks %v, want %v", rep.Leaked, tc.leaked)
				}
				st := statuses(rep)
				for _, sink := range doctor.Sinks {
					want := doctor.StatusMasked
					if slices.Contains(tc.leaked, sink) {
						want = doctor.StatusLeaked
					}
					if sink == "exec" {
						want = doctor.StatusSkipped
					}
					for _, f := range doctor.Forms {
						if got := st[sink][f.Name]; got != want {
							t.Errorf("%s/%s: %q, want %q", sink, f.Name, got, want)
						}
					}
				}
				for _, r := range rep.Results {
					if strings.Contains(r.Detail, "hfdoc_") {
						t.Errorf("a detail quotes the canary: %s", r.Detail)
					}
				}
				assertGone(t, s)
			}, func(c *app.Config) { c.TestDisableMasking = tc.disable })
		})
	}
}
