package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hushflow/hushflow/apps"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// scheduler queues runs of schedule-triggered flows. Every replica runs
// it; the schedule_ticks primary key (flow, tick time) lets exactly one
// replica queue the run of a tick.
func (s *Service) scheduler(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.fireSchedules(ctx, now.UTC())
		}
	}
}

// FireSchedules does what the scheduler does each second, for the time
// now: it queues one run for each due schedule tick not fired yet by any
// replica. Tests and tools call it to fire a tick without waiting for it.
func (s *Service) FireSchedules(ctx context.Context, now time.Time) {
	s.fireSchedules(ctx, now.UTC())
}

// fireSchedules queues one run for each schedule tick that fell in the last
// minute and was not fired yet.
func (s *Service) fireSchedules(ctx context.Context, now time.Time) {
	var fs []Flow
	if err := s.db.WithContext(ctx).Where("trigger_type = ?", "schedule").Find(&fs).Error; err != nil {
		return
	}
	for i := range fs {
		f := &fs[i]
		plan, err := s.plan(ctx, f.ID, f.Version)
		if err != nil || plan.Cron == nil {
			continue
		}
		// The latest tick at or before now, looking back one minute.
		var tick time.Time
		for t := plan.Cron.Next(now.Add(-time.Minute).Truncate(time.Second)); !t.After(now); t = plan.Cron.Next(t) {
			tick = t
		}
		if tick.IsZero() || tick.Before(f.UpdatedAt.Truncate(time.Second)) {
			continue
		}
		env := plan.Def.Trigger.Environment
		if env == "" {
			env = "development"
		}
		var run *Run
		err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			res := tx.Exec("INSERT INTO schedule_ticks (flow_id, tick, run_id) VALUES (?, ?, '') ON CONFLICT DO NOTHING", f.ID, tick)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return nil // another replica fired this tick
			}
			r, err := s.enqueue(ctx, tx, f, RunRequest{Project: f.Project, Flow: f.Name, Environment: env,
				Input: map[string]any{"scheduled_at": tick.Format(time.RFC3339)}, Trigger: "schedule", Actor: "scheduler"})
			if err != nil {
				return err
			}
			run = r
			return tx.Model(&ScheduleTick{}).Where("flow_id = ? AND tick = ?", f.ID, tick).Update("run_id", r.ID).Error
		})
		if err != nil {
			s.log.Warn("schedule", "flow", f.Name, "project", f.Project, "err", err)
		} else if run != nil {
			s.log.Info("schedule fired", "flow", f.Name, "project", f.Project, "tick", tick, "run_id", run.ID)
		}
	}
}

// Publish queues a run of every event-triggered flow of project whose
// topic pattern matches topic and whose filter holds for payload.
func (s *Service) Publish(ctx context.Context, project, topic, environment string, payload any, actor string) ([]*Run, error) {
	if topic == "" {
		return nil, apperr.Invalidf("invalid_topic", "topic is required, for example \"records:created\"")
	}
	if environment == "" {
		environment = "development"
	}
	var fs []Flow
	if err := s.db.WithContext(ctx).Where("project = ? AND trigger_type = ?", project, "event").Find(&fs).Error; err != nil {
		return nil, store.Translate(err)
	}
	input := map[string]any{"topic": topic, "payload": payload}
	var runs []*Run
	for i := range fs {
		f := &fs[i]
		plan, err := s.plan(ctx, f.ID, f.Version)
		if err != nil || !TopicMatch(plan.Def.Trigger.Topic, topic) {
			continue
		}
		if plan.Filter != nil {
			env := &engine.Env{Input: input, Run: engine.RunInfo{Flow: f.Name, Project: project, Environment: environment}}
			ok, err := plan.Filter.Eval(ctx, env)
			if err != nil || !ok {
				continue
			}
		}
		r, err := s.enqueue(ctx, s.db.DB, f, RunRequest{Project: project, Flow: f.Name, Environment: environment,
			Input: input, Trigger: "event", Actor: actor})
		if err != nil {
			return runs, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// TopicMatch reports whether topic matches pattern. Segments are separated
// by ':' or '.'; `*` matches one segment, `**` any number (also none).
func TopicMatch(pattern, topic string) bool {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '.' })
	}
	return matchSegs(split(pattern), split(topic))
}

func matchSegs(p, t []string) bool {
	for len(p) > 0 {
		if p[0] == "**" {
			for i := 0; i <= len(t); i++ {
				if matchSegs(p[1:], t[i:]) {
					return true
				}
			}
			return false
		}
		if len(t) == 0 || (p[0] != "*" && p[0] != t[0]) {
			return false
		}
		p, t = p[1:], t[1:]
	}
	return len(t) == 0
}

// ErrBadSignature is returned for a webhook whose signature does not
// verify (401).
var ErrBadSignature = apperr.New(apperr.Unauthenticated, "bad_signature", "webhook signature is missing, wrong or stale")

// Webhook handles POST /hooks/{project}/{flow}: it checks the signature
// when the trigger names a signing secret, then queues a run with the
// JSON body (or the raw text) as input.
func (s *Service) Webhook(ctx context.Context, project, flow string, header http.Header, body []byte) (*Run, error) {
	// A missing project, a missing flow and a flow without a webhook
	// trigger answer alike: the route needs no token and must not reveal
	// which flows exist.
	hidden := store.NotFound("webhook", project+"/"+flow)
	f, _, err := s.Get(ctx, project, flow)
	if errors.Is(err, store.ErrNotFound) {
		return nil, hidden
	}
	if err != nil {
		return nil, err
	}
	plan, err := s.plan(ctx, f.ID, f.Version)
	if err != nil {
		return nil, err
	}
	t := plan.Def.Trigger
	if t.Type != "webhook" {
		return nil, hidden
	}
	env := t.Environment
	if env == "" {
		env = "development"
	}
	if t.SigningSecret != "" {
		if s.secrets == nil {
			return nil, ErrBadSignature
		}
		key, err := s.secrets.Resolve(ctx, ResolveRequest{Project: project, Environment: env, Name: t.SigningSecret, BlockID: "webhook"})
		if err != nil {
			s.log.Warn("webhook signing secret does not resolve", "project", project, "flow", flow, "secret", t.SigningSecret)
			return nil, ErrBadSignature
		}
		if err := VerifySignature(t.Signature, key, header, body, time.Now()); err != nil {
			return nil, ErrBadSignature
		}
	}
	var input any
	if err := json.Unmarshal(body, &input); err != nil {
		input = map[string]any{"body": string(body)}
	}
	return s.enqueue(ctx, s.db.DB, f, RunRequest{Project: project, Flow: flow, Environment: env, Input: input, Trigger: "webhook", Actor: "webhook"})
}

// VerifySignature checks an HMAC-SHA256 webhook signature. style "slack"
// (the default) checks X-Slack-Signature over "v0:<timestamp>:<body>" and
// refuses timestamps more than five minutes from now; "github" checks
// X-Hub-Signature-256 over the body.
func VerifySignature(style, key string, h http.Header, body []byte, now time.Time) error {
	switch style {
	case "github":
		return apps.VerifyGitHub(key, h, body)
	case "slack", "":
		return apps.VerifySlack(key, h, body, now)
	}
	return fmt.Errorf("unknown signature style %q", style)
}
