// Package doctor holds Hushflow's self-tests. The redaction self-test
// (hushflow doctor redaction) plants a random canary secret, pushes it in
// every encoding the redactor claims through every sink a run has, reads
// every sink back and reports each sink and form as masked or leaked,
// then removes what it created. Operators run it after an upgrade or a
// configuration change (docs/doctor.md).
package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store"
)

// Statuses of a result.
const (
	// StatusMasked: the sink received the form and masked it.
	StatusMasked = "masked"
	// StatusLeaked: the form of the canary appears in what the sink kept.
	StatusLeaked = "leaked"
	// StatusSkipped: this server has no such sink (exec disabled), or the
	// self-test could not exercise it here; Detail says why.
	StatusSkipped = "skipped"
	// StatusMissing: the sink should have received the form and did not,
	// so the self-test cannot say it is masked; a failure like a leak.
	StatusMissing = "missing"
)

// Sinks are the places checked, in report order.
var Sinks = []string{
	"log",           // console.log of a code block: the run's log events
	"error",         // an error thrown by a block (block_failed, continue_on_error)
	"output",        // a block's output (block_finished)
	"http_request",  // the http block's request record: header and body
	"http_response", // the echo's answer: header and body
	"exec",          // exec block output: log lines and its output
	"run_output",    // the run's output, GET /api/v1/runs/{id}
	"run_list",      // the run's entry in GET /api/v1/projects/{p}/runs
	"events",        // GET /api/v1/runs/{id}/events, whole
	"live_stream",   // GET /api/v1/runs/{id}/events?follow=1 (SSE), whole
	"database",      // the run's rows: runs, events, run_checkpoints, secret_audit
	"server_log",    // what the server log wrote during the test
}

// Result is one sink and form. Detail never holds the value.
type Result struct {
	Sink   string `json:"sink"`
	Form   string `json:"form"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Report is the answer of a redaction self-test.
type Report struct {
	// OK is true when no result is leaked or missing.
	OK          bool     `json:"ok"`
	Project     string   `json:"project"`
	Environment string   `json:"environment"`
	Database    string   `json:"database"`
	Forms       []string `json:"forms"`
	Sinks       []string `json:"sinks"`
	Results     []Result `json:"results"`
	// Leaked lists the sinks with a leaked or missing result.
	Leaked  []string `json:"leaked,omitempty"`
	Elapsed string   `json:"elapsed"`
	// Notes says what the run did that an operator may see elsewhere
	// (the audit records it leaves, an exposure record of the echo).
	Notes []string `json:"notes,omitempty"`
}

// Config is what the self-test needs, given once to New.
type Config struct {
	DB      *store.DB
	Secrets *secrets.Store
	Flows   *flows.Service
	// Log is the server's logger: the self-test writes the canary through
	// it on purpose and checks what Tap saw.
	Log *slog.Logger
	Tap *LogTap
	// Egress routes the throwaway run's requests to the echo listener.
	Egress *Egress
	// Exec says whether the exec block is enabled; ExecAllow is its
	// allow-list of command paths.
	Exec      bool
	ExecAllow []string
	// Timeout bounds one self-test (default 60s).
	Timeout time.Duration
}

// Doctor runs self-tests.
type Doctor struct{ cfg Config }

// New returns a Doctor.
func New(cfg Config) *Doctor {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	return &Doctor{cfg: cfg}
}

// Request asks for a redaction self-test.
type Request struct {
	Project, Environment string
	// Actor is who asked (audit records and the run's created_by).
	Actor string
	// API answers a GET of an API path as the caller would get it, through
	// the server's own routes (the live stream included): the self-test
	// reads runs back the way users do.
	API func(ctx context.Context, path string) ([]byte, error)
}

// Redaction runs the redaction self-test in req's project and
// environment and returns its report. It returns an error only when the
// test could not be carried out (the project or environment does not
// exist, the database does not answer); leaks are in the report.
//
//  1. A canary secret HUSHFLOW_DOCTOR_<random> is created in the
//     project+environment scope, and a loopback echo listener started.
//  2. A throwaway flow hushflow-doctor-<random> is saved: its blocks put
//     every form of the canary in a log line, a thrown error, a block
//     output, an http request to the echo (header and body, echoed back),
//     exec output when exec is enabled, and the run's output.
//  3. Its run is followed on the live stream while it runs; then the
//     run, its events and its run-list entry are read through the API,
//     its database rows directly, and the canary is logged through the
//     server's logger on purpose.
//  4. Each sink's text is searched for each form; the run's rows, the
//     flow and the canary are deleted (audit records stay).
func (d *Doctor) Redaction(ctx context.Context, req Request) (rep *Report, err error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	// Clean-up runs even when the caller went away.
	cleanCtx := context.WithoutCancel(ctx)
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	canary := newCanary()
	name := "HUSHFLOW_DOCTOR_" + strings.ToUpper(randomToken(8))
	actor := "doctor:" + req.Actor
	sec, _, err := d.cfg.Secrets.Create(ctx, actor, secrets.CreateInput{Name: name,
		Scope: secrets.Scope{Project: req.Project, Environment: req.Environment}, Value: secrets.NewValue(canary),
		Description: "canary of the redaction self-test (hushflow doctor redaction); deleted when the test ends"})
	if err != nil {
		return nil, fmt.Errorf("create the canary secret: %w", err)
	}
	cleanups = append(cleanups, func() {
		if err := d.cfg.Secrets.Delete(cleanCtx, actor, sec.ID); err != nil {
			d.cfg.Log.Warn("doctor: delete the canary secret", "secret", name, "err", err)
		}
	})

	echo, err := startEcho()
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, echo.close)

	execPath, execSkip := d.execCommand()
	def, err := definition(name, echo.url(), execPath)
	if err != nil {
		return nil, err
	}
	f, _, _, err := d.cfg.Flows.Save(ctx, req.Project, def, actor, true)
	if err != nil {
		return nil, fmt.Errorf("save the self-test's flow: %w", err)
	}
	cleanups = append(cleanups, func() {
		if err := d.cfg.Flows.Delete(cleanCtx, req.Project, f.Name); err != nil {
			d.cfg.Log.Warn("doctor: delete the self-test's flow", "flow", f.Name, "err", err)
		}
	})
	if d.cfg.Egress != nil {
		cleanups = append(cleanups, d.cfg.Egress.allow(echo.hostport(), f.ID))
	}

	stopLog := func() string { return "" }
	if d.cfg.Tap != nil {
		stopLog = d.cfg.Tap.capture()
	}
	logText := ""
	logStopped := false
	defer func() {
		if !logStopped {
			stopLog()
		}
	}()

	run, err := d.cfg.Flows.Enqueue(ctx, flows.RunRequest{Project: req.Project, Flow: f.Name,
		Environment: req.Environment, Trigger: "manual", Actor: actor})
	if err != nil {
		return nil, fmt.Errorf("start the self-test's run: %w", err)
	}
	cleanups = append(cleanups, func() {
		// A run cut short by the deadline stops before its rows go.
		if _, err := d.cfg.Flows.Cancel(cleanCtx, run.ID, actor); err != nil {
			d.cfg.Log.Warn("doctor: cancel the self-test's run", "run_id", run.ID, "err", err)
		}
		d.deleteRun(cleanCtx, run.ID)
	})

	// The live stream, from the run's first event, while it runs.
	type streamed struct {
		body []byte
		err  error
	}
	live := make(chan streamed, 1)
	go func() {
		b, err := req.API(ctx, "/api/v1/runs/"+run.ID+"/events?follow=1")
		live <- streamed{b, err}
	}()
	if run, err = d.cfg.Flows.Wait(ctx, run.ID); err != nil {
		return nil, fmt.Errorf("wait for the self-test's run: %w", err)
	}
	if !run.Finished() {
		return nil, fmt.Errorf("the self-test's run %s did not finish within %s (status %s): are run workers up?", run.ID, d.cfg.Timeout, run.Status)
	}
	ls := <-live
	if ls.err != nil {
		return nil, fmt.Errorf("follow the self-test's run: %w", ls.err)
	}

	// The canary through the server's logger, on purpose: as an attribute,
	// in the message's attributes and in an error.
	text := markedText(canary)
	d.cfg.Log.Info("doctor: redaction self-test writes its canary to the server log", "canary", text,
		"err", errors.New("self-test error carrying "+text))

	sinks := map[string]string{"live_stream": string(ls.body)}
	var readErr error
	read := func(sink, path string) []byte {
		b, err := req.API(ctx, path)
		if err != nil && readErr == nil {
			readErr = fmt.Errorf("read %s: %w", path, err)
		}
		sinks[sink] = string(b)
		return b
	}
	read("run_output", "/api/v1/runs/"+run.ID)
	read("run_list", "/api/v1/projects/"+req.Project+"/runs?flow="+f.Name)
	evBody := read("events", "/api/v1/runs/"+run.ID+"/events")
	if readErr != nil {
		return nil, readErr
	}
	db, err := d.dumpRun(ctx, run.ID)
	if err != nil {
		return nil, err
	}
	sinks["database"] = db
	logText = stopLog()
	logStopped = true
	sinks["server_log"] = logText

	var evs struct {
		Events []flows.EventView `json:"events"`
	}
	if err := json.Unmarshal(evBody, &evs); err != nil {
		return nil, fmt.Errorf("read the self-test's events: %w", err)
	}
	pick := func(block string, types ...string) string {
		var b strings.Builder
		for _, e := range evs.Events {
			if e.Block == block && slices.Contains(types, e.Type) {
				j, _ := json.Marshal(e)
				b.Write(j)
				b.WriteByte('\n')
			}
		}
		return b.String()
	}
	sinks["log"] = pick("log", "log")
	sinks["error"] = pick("error", "block_failed")
	sinks["output"] = pick("forms", "block_finished")
	sinks["http_request"] = pick("http", "http_request")
	sinks["http_response"] = pick("http", "http_response")
	sinks["exec"] = pick("exec", "log", "block_finished")

	skip := map[string]string{}
	if execPath == "" {
		skip["exec"] = execSkip
	}
	worker := ""
	for _, e := range evs.Events {
		if e.Type == "run_started" {
			if m, ok := e.Data.(map[string]any); ok {
				worker, _ = m["worker"].(string)
			}
		}
	}
	if worker != "" && worker != d.cfg.Flows.WorkerID() {
		why := "the run was executed by another replica (" + worker + "), which cannot reach this replica's echo listener; run the self-test again, or on a single replica"
		skip["http_request"], skip["http_response"] = why, why
	}

	rep = &Report{Project: req.Project, Environment: req.Environment, Database: string(d.cfg.DB.Dialect), Sinks: Sinks,
		Notes: []string{
			"the canary's create, read and delete audit records stay in the audit log (they never hold a value)",
			"the echoed response carries the canary back into the run, as an outside service that reflects a secret would",
		}}
	for _, fm := range Forms {
		rep.Forms = append(rep.Forms, fm.Name)
	}
	for _, sink := range Sinks {
		for _, fm := range Forms {
			r := Result{Sink: sink, Form: fm.Name}
			switch {
			case skip[sink] != "":
				r.Status, r.Detail = StatusSkipped, skip[sink]
			default:
				r.Status, r.Detail = judge(sinks[sink], fm.Go(canary), fm.Name)
			}
			rep.Results = append(rep.Results, r)
			if (r.Status == StatusLeaked || r.Status == StatusMissing) && !slices.Contains(rep.Leaked, sink) {
				rep.Leaked = append(rep.Leaked, sink)
			}
		}
	}
	rep.OK = len(rep.Leaked) == 0
	rep.Elapsed = time.Since(start).Round(time.Millisecond).String()
	d.cfg.Log.Info("doctor: redaction self-test", "project", req.Project, "environment", req.Environment,
		"ok", rep.OK, "leaked", strings.Join(rep.Leaked, ","), "run_id", run.ID)
	return rep, nil
}

// judge says whether text, a sink's content, leaks form (the canary's
// form named name) or masks it.
func judge(text, form, name string) (status, detail string) {
	for _, s := range shapes(form) {
		if strings.Contains(text, s) {
			return StatusLeaked, "the " + name + " form of the canary appears in this sink"
		}
	}
	if !strings.Contains(text, marker(name)) {
		return StatusMissing, "this sink did not receive the test text, so its masking could not be checked"
	}
	return StatusMasked, ""
}

// markedText is the text the run pushes: each form after its marker.
func markedText(v string) string {
	var b strings.Builder
	for i, f := range Forms {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(marker(f.Name) + f.Go(v))
	}
	return b.String()
}

// markedJS is markedText as a JavaScript expression of v.
func markedJS() string {
	parts := make([]string, len(Forms))
	for i, f := range Forms {
		parts[i] = fmt.Sprintf("'%s' + (%s)", marker(f.Name), f.JS)
	}
	return strings.Join(parts, " + ' ' + ")
}

// definition is the throwaway flow: secret names the canary, echo is the
// echo listener's URL, execPath the printf command (empty: no exec block).
func definition(secret, echo, execPath string) (flows.Definition, error) {
	blocks := []any{
		map[string]any{"id": "forms", "type": "code", "config": map[string]any{
			"code": "const v = secrets." + secret + "; return {text: " + markedJS() + "}"}},
		map[string]any{"id": "log", "type": "code", "config": map[string]any{
			"code": "console.log(steps.forms.output.text); return null"}},
		map[string]any{"id": "error", "type": "code", "continue_on_error": true, "config": map[string]any{
			"code": "throw new Error(steps.forms.output.text)"}},
		map[string]any{"id": "http", "type": "http", "continue_on_error": true, "config": map[string]any{
			"method": "'POST'", "url": "'" + echo + "'",
			"headers": "({'" + echoHeader + "': steps.forms.output.text})",
			// As text: each form stands in the body as the flow made it
			// (a JSON body would add a layer of escaping to every form).
			"body": "steps.forms.output.text", "body_type": "'text'"}},
	}
	if execPath != "" {
		blocks = append(blocks, map[string]any{"id": "exec", "type": "exec", "continue_on_error": true, "config": map[string]any{
			"command": "['" + execPath + "', '%s\\n', steps.forms.output.text]"}})
	}
	blocks = append(blocks, map[string]any{"id": "final", "type": "code", "config": map[string]any{
		"code": "return steps.forms.output.text"}})
	b, err := json.Marshal(map[string]any{"name": "hushflow-doctor-" + randomToken(6),
		"description": "throwaway flow of the redaction self-test; deleted when the test ends",
		"trigger":     map[string]any{"type": "manual"}, "blocks": blocks})
	if err != nil {
		return flows.Definition{}, err
	}
	return flows.ParseDefinition(b)
}

// execCommand is the absolute path of printf for the exec block, or "" and
// why the exec sink is skipped.
func (d *Doctor) execCommand() (path, skip string) {
	if !d.cfg.Exec {
		return "", "the exec block is disabled on this server (HUSHFLOW_EXEC=on enables it)"
	}
	p, err := exec.LookPath("printf")
	if err != nil {
		return "", "no printf command on this server's PATH for the exec block"
	}
	if p, err = filepath.Abs(p); err != nil {
		return "", "no printf command on this server's PATH for the exec block"
	}
	if len(d.cfg.ExecAllow) > 0 && !slices.Contains(d.cfg.ExecAllow, p) {
		return "", "HUSHFLOW_EXEC_ALLOW does not list " + p + ", which the self-test's exec block runs"
	}
	return p, ""
}

// dumpRun returns the database rows of run id as text: the run, its
// events and checkpoints, and the audit records that name it.
func (d *Doctor) dumpRun(ctx context.Context, id string) (string, error) {
	var b strings.Builder
	for _, q := range []struct{ table, col string }{
		{"runs", "id"}, {"events", "run_id"}, {"run_checkpoints", "run_id"}, {"secret_audit", "run_id"},
	} {
		rows, err := d.cfg.DB.WithContext(ctx).Table(q.table).Where(q.col+" = ?", id).Rows()
		if err != nil {
			return "", fmt.Errorf("read the self-test's %s rows: %w", q.table, store.Translate(err))
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return "", fmt.Errorf("read the self-test's %s rows: %w", q.table, err)
			}
			b.WriteString(q.table + ":")
			for _, v := range vals {
				if x, ok := v.([]byte); ok {
					fmt.Fprintf(&b, " %s", x)
				} else {
					fmt.Fprintf(&b, " %v", v)
				}
			}
			b.WriteByte('\n')
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return "", fmt.Errorf("read the self-test's %s rows: %w", q.table, err)
		}
	}
	return b.String(), nil
}

// deleteRun removes the run's rows (events, checkpoints, the run); its
// audit records stay.
func (d *Doctor) deleteRun(ctx context.Context, id string) {
	db := d.cfg.DB.WithContext(ctx)
	for _, t := range []struct{ table, col string }{{"events", "run_id"}, {"run_checkpoints", "run_id"}, {"runs", "id"}} {
		if err := db.Exec("DELETE FROM "+t.table+" WHERE "+t.col+" = ?", id).Error; err != nil {
			d.cfg.Log.Warn("doctor: delete the self-test's run", "run_id", id, "table", t.table, "err", err)
		}
	}
}
