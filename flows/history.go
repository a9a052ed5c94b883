package flows

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/redact"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Version returns one saved version of a flow and its definition.
func (s *Service) Version(ctx context.Context, project, name string, version int) (*FlowVersion, Definition, error) {
	f, _, err := s.Get(ctx, project, name)
	if err != nil {
		return nil, Definition{}, err
	}
	if version < 1 {
		return nil, Definition{}, apperr.Invalidf("invalid_version", "version must be a whole number from 1 (flow %s is at version %d)", apperr.Echo(name), f.Version)
	}
	var v FlowVersion
	err = s.db.WithContext(ctx).Where("flow_id = ? AND version = ?", f.ID, version).First(&v).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, Definition{}, fmt.Errorf("flow %s has no version %d; %s: %w", apperr.Echo(name), version, versionsOf(f.Version), store.ErrNotFound)
	}
	if err != nil {
		return nil, Definition{}, store.Translate(err)
	}
	var d Definition
	if err := json.Unmarshal([]byte(v.Definition), &d); err != nil {
		return nil, d, fmt.Errorf("flow %q version %d: stored definition: %w", name, version, err)
	}
	return &v, d, nil
}

// Rerun queues a new run of the flow of run id (its current version), in
// the same environment with the same input, the real input even when the
// stored one was redacted: an open run still holds it, an ended one keeps
// it sealed (model.Run.InputSealed). The new run's RerunOf is id.
func (s *Service) Rerun(ctx context.Context, id, actor string) (*Run, error) {
	r, err := s.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.InputSealed == nil && r.Finished() && strings.Contains(r.Input, "[REDACTED") {
		// Ended before reruns kept the real input: only the redacted text
		// is left, which is not what the run had.
		return nil, apperr.Invalidf("input_redacted",
			"run %s kept only its redacted input (it ended before reruns kept real inputs); start a new run with its input instead", r.ID)
	}
	// The real input, and the values the run knew beyond its scope's
	// secrets (what its parent passed on, secrets.mask values, other
	// environments' secrets) that the rerun must mask and pin as it did.
	input, masks, err := s.worker.RealInput(ctx, r)
	if err != nil {
		return nil, apperr.New(apperr.Unavailable, "input_unreadable",
			"the input of run %s cannot be opened (%v); start a new run with its input instead", r.ID, err)
	}
	f, _, err := s.Get(ctx, r.Project, r.Flow)
	if err != nil {
		return nil, fmt.Errorf("rerun of run %s: %w", r.ID, err)
	}
	if f.ID != r.FlowID {
		// The run's flow was deleted, and another saved under its name: a
		// rerun would run that one, not what the run ran.
		return nil, conflict(fmt.Sprintf("rerun of run %s: the flow %s it ran was deleted, and the flow of that name now is another one (created %s): start a run of it instead",
			r.ID, apperr.Echo(r.Flow), f.CreatedAt.UTC().Format(time.RFC3339)))
	}
	req := RunRequest{Project: r.Project, Flow: r.Flow, Environment: r.Environment, Trigger: "manual", Actor: actor, RerunOf: r.ID}
	if input != "" {
		req.Input = json.RawMessage(input)
	}
	if len(masks) == 0 {
		return s.enqueue(ctx, s.db.DB, f, req)
	}
	// Stored masked from the start, the real input sealed with the values
	// in the rerun's "$parent" checkpoint, as a sub-flow's.
	red := redact.New()
	for _, m := range masks {
		red.Add(m.Name, m.Value)
	}
	if masked := red.String(input); masked != input {
		req.Input = json.RawMessage(masked)
	}
	return s.enqueueRun(ctx, s.db.DB, f, req, func(nr *Run) ([]any, error) {
		sealed, err := s.worker.SealInherited(nr.ID, masks, json.RawMessage(input))
		if err != nil {
			return nil, err
		}
		return []any{&model.Checkpoint{RunID: nr.ID, Block: model.InheritedCheckpoint, State: model.CheckpointDone, Output: sealed, CreatedAt: nr.QueuedAt}}, nil
	})
}

// LastRuns returns the latest run of each flow of fs that has run, by
// flow id: one lookup per flow in the index on (flow_id, id).
func (s *Service) LastRuns(ctx context.Context, fs []Flow) (map[string]Run, error) {
	out := map[string]Run{}
	if len(fs) == 0 {
		return out, nil
	}
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	var last []sql.NullString
	err := s.db.WithContext(ctx).Raw(`SELECT (SELECT r.id FROM runs r WHERE r.flow_id = f.id ORDER BY r.id DESC LIMIT 1)
FROM flows f WHERE f.id IN ?`, ids).Scan(&last).Error
	if err != nil {
		return nil, store.Translate(err)
	}
	var runIDs []string
	for _, id := range last {
		if id.Valid {
			runIDs = append(runIDs, id.String)
		}
	}
	if len(runIDs) == 0 {
		return out, nil
	}
	var rs []Run
	err = s.db.WithContext(ctx).Select("id", "flow_id", "status", "queued_at", "started_at", "finished_at").
		Where("id IN ?", runIDs).Find(&rs).Error
	if err != nil {
		return nil, store.Translate(err)
	}
	for _, r := range rs {
		out[r.FlowID] = r
	}
	return out, nil
}

// InstallationUse is where a project's flows name app installations.
type InstallationUse struct {
	// Flows maps an installation name to the flows whose app blocks name
	// it, in the order of the flow list.
	Flows map[string][]string
	// Unknown lists the flows with an app block whose installation is
	// computed at run time (not a plain string), which may use any.
	Unknown []string
}

// InstallationUsage reads the latest version of every flow of a project
// and returns the installations their app blocks (and on_error blocks)
// name.
func (s *Service) InstallationUsage(ctx context.Context, project string) (*InstallationUse, error) {
	fs, err := s.List(ctx, project)
	if err != nil {
		return nil, err
	}
	u := &InstallationUse{Flows: map[string][]string{}, Unknown: []string{}}
	for _, f := range fs {
		var d Definition
		if err := json.Unmarshal([]byte(f.Definition), &d); err != nil {
			u.Unknown = append(u.Unknown, f.Name)
			continue
		}
		names, dynamic := map[string]bool{}, false
		for _, b := range append(append([]BlockDef{}, d.Blocks...), d.OnError...) {
			if b.Type != "app" {
				continue
			}
			var expr string
			if json.Unmarshal(b.Config["installation"], &expr) != nil {
				dynamic = true
				continue
			}
			if n, ok := stringLiteral(expr); ok {
				names[n] = true
			} else {
				dynamic = true
			}
		}
		for n := range names {
			u.Flows[n] = append(u.Flows[n], f.Name)
		}
		if dynamic {
			u.Unknown = append(u.Unknown, f.Name)
		}
	}
	return u, nil
}

// stringLiteral returns the text of an expression that is one string
// literal without escapes or substitutions ('demo-bot', "demo-bot",
// `demo-bot`).
func stringLiteral(expr string) (string, bool) {
	e := strings.TrimSpace(expr)
	if len(e) < 2 || !strings.ContainsRune(`'"`+"`", rune(e[0])) || e[len(e)-1] != e[0] {
		return "", false
	}
	inner := e[1 : len(e)-1]
	if strings.ContainsAny(inner, `\'"`+"`$") {
		return "", false
	}
	return inner, true
}

// versionsOf says which versions a flow whose latest is n has.
func versionsOf(n int) string {
	if n == 1 {
		return "its only version is 1"
	}
	return fmt.Sprintf("its versions are 1 to %d", n)
}

// conflict is a 409 whose message says it all (store.ErrConflict's own
// text, "already exists", is not added to it).
type conflict string

func (c conflict) Error() string { return string(c) }
func (c conflict) Unwrap() error { return store.ErrConflict }
