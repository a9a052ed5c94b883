// Package triggers starts runs of flows: on a schedule (the Scheduler
// service, which fires each tick once across replicas), on an event whose
// topic matches a flow's pattern (Publish), and on a webhook, whose
// signature it checks (Webhook).
package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"log/slog"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hushflow/hushflow/apps"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/engine/ordered"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/plan"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/internal/beat"
	"github.com/hushflow/hushflow/internal/startstop"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Config is what the triggers need, given once to New.
type Config struct {
	DB    *store.DB
	Plans Plans
	// Secrets resolves a webhook's signing secret; nil refuses signed
	// webhooks.
	Secrets SigningSecrets
	// Enqueue queues a run of f in tx (the facade's checks included).
	Enqueue func(ctx context.Context, tx *gorm.DB, f *model.Flow, req model.RunRequest) (*model.Run, error)
	Logger  *slog.Logger
	// Now is the clock of schedules.
	Now func() time.Time
}

// Plans gives the compiled plan of a flow version (*plan.Cache).
type Plans interface {
	Get(ctx context.Context, flowID string, version int) (*plan.Plan, error)
}

// SigningSecrets resolves a webhook's signing secret (and audits it).
type SigningSecrets interface {
	Resolve(ctx context.Context, req model.ResolveRequest) (string, error)
}

// Triggers starts runs from schedules, events and webhooks.
type Triggers struct {
	cfg Config

	keysMu sync.Mutex // guards keys
	// keys are the signing secrets webhooks were verified with lately
	// (signingKey), by project, environment and secret name.
	keys map[string]signingKey
	// hooks are the flows webhooks were delivered to lately (the columns
	// Webhook reads), by project and flow name.
	hooks *lru.Cache[string, model.Flow]
}

// signingKey is a webhook signing secret as read (audited) at read.
type signingKey struct {
	value string
	read  time.Time
}

// Reading a webhook's signing secret decrypts it and writes an audit
// record. Done for every delivery, before its signature is checked, a
// flood of badly signed requests from anyone wrote as many records
// (attacker round six). A secret read is kept for keyFresh and used for
// the deliveries meanwhile; a signature it does not verify reads the
// secret again (it may have a new value), but not within keyReread of the
// last read: a flood leaves at most one record a second per secret.
const (
	keyFresh  = time.Minute
	keyReread = time.Second
)

// New returns the triggers of cfg.
func New(cfg Config) *Triggers {
	hooks, _ := lru.New[string, model.Flow](1024)
	return &Triggers{cfg: cfg, hooks: hooks}
}

// now is the triggers' clock (Config.Now, else time.Now): how old a
// signing secret read is. Signature timestamps are checked against the
// real time.
func (t *Triggers) now() time.Time {
	if t.cfg.Now != nil {
		return t.cfg.Now()
	}
	return time.Now()
}

// Scheduler is the background service that queues runs of
// schedule-triggered flows. Every replica runs one; the schedule_ticks
// primary key (flow, tick time) lets exactly one replica queue the run of
// a tick.
type Scheduler struct {
	startstop.Base
	t *Triggers
}

// Scheduler returns the scheduler service of t; Start runs it.
func (t *Triggers) Scheduler() *Scheduler { return &Scheduler{t: t} }

// Start fires the due schedules every second (on the process's beat:
// package beat) until Stop or ctx is done.
func (s *Scheduler) Start(ctx context.Context) {
	s.Base.Start(ctx, func(ctx context.Context) {
		tk := beat.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				s.t.FireSchedules(ctx, s.t.cfg.Now())
				tk.Next()
			}
		}
	})
}

// FireSchedules does what the scheduler does each second, for the time
// now: it queues one run for each due schedule tick not fired yet by any
// replica. Tests and tools call it to fire a tick without waiting for it.
func (t *Triggers) FireSchedules(ctx context.Context, now time.Time) {
	t.fireSchedules(ctx, now.UTC())
}

// fireSchedules queues one run for each schedule tick that fell in the last
// minute and was not fired yet.
func (t *Triggers) fireSchedules(ctx context.Context, now time.Time) {
	var fs []model.Flow
	if err := t.cfg.DB.WithContext(ctx).Where("trigger_type = ?", "schedule").Find(&fs).Error; err != nil {
		return
	}
	for i := range fs {
		f := &fs[i]
		plan, err := t.cfg.Plans.Get(ctx, f.ID, f.Version)
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
		if f.PausedAt != nil {
			// A paused flow's tick passes unfired, and is recorded so (no
			// run id) so that a resume within its minute does not fire it.
			if err := t.cfg.DB.WithContext(ctx).Exec("INSERT INTO schedule_ticks (flow_id, tick, run_id) VALUES (?, ?, '') ON CONFLICT DO NOTHING",
				f.ID, tick).Error; err != nil {
				t.cfg.Logger.Warn("schedule", "flow", f.Name, "project", f.Project, "err", err)
			}
			continue
		}
		var run *model.Run
		err = t.cfg.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			res := tx.Exec("INSERT INTO schedule_ticks (flow_id, tick, run_id) VALUES (?, ?, '') ON CONFLICT DO NOTHING", f.ID, tick)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return nil // another replica fired this tick, or it passed while the flow was paused
			}
			r, err := t.cfg.Enqueue(ctx, tx, f, model.RunRequest{Project: f.Project, Flow: f.Name, Environment: env,
				Input: map[string]any{"scheduled_at": tick.Format(time.RFC3339)}, Trigger: "schedule", Actor: "scheduler"})
			if err != nil {
				return err
			}
			run = r
			return tx.Model(&model.ScheduleTick{}).Where("flow_id = ? AND tick = ?", f.ID, tick).Update("run_id", r.ID).Error
		})
		if err != nil {
			t.cfg.Logger.Warn("schedule", "flow", f.Name, "project", f.Project, "err", err)
		} else if run != nil {
			t.cfg.Logger.Info("schedule fired", "flow", f.Name, "project", f.Project, "tick", tick, "run_id", run.ID)
		}
	}
}

// Publish queues a run of every event-triggered flow of project whose
// topic pattern matches topic and whose filter holds for payload.
func (t *Triggers) Publish(ctx context.Context, project, topic, environment string, payload any, actor string) ([]*model.Run, error) {
	if topic == "" {
		return nil, apperr.Invalidf("invalid_topic", "topic is required, for example \"records:created\"")
	}
	if environment == "" {
		environment = "development"
	}
	var fs []model.Flow
	// A paused flow takes no event (none is kept for it).
	if err := t.cfg.DB.WithContext(ctx).Where("project = ? AND trigger_type = ? AND paused_at IS NULL", project, "event").Order("name").Find(&fs).Error; err != nil {
		return nil, store.Translate(err)
	}
	input := map[string]any{"topic": topic, "payload": payload}
	var match []*model.Flow
	for i := range fs {
		f := &fs[i]
		plan, err := t.cfg.Plans.Get(ctx, f.ID, f.Version)
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
		match = append(match, f)
	}
	if len(match) == 0 {
		return nil, nil
	}
	// One transaction: the event's runs are stored all or none, so that a
	// sender told to retry (a flow at its max_concurrent_runs, the
	// database away) does not start again the runs that went in before.
	var runs []*model.Run
	err := t.cfg.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		runs = runs[:0]
		for _, f := range match {
			r, err := t.cfg.Enqueue(ctx, tx, f, model.RunRequest{Project: project, Flow: f.Name, Environment: environment,
				Input: input, Trigger: "event", Actor: actor})
			if model.IsPaused(err) || errors.Is(err, store.ErrNotFound) {
				continue // paused or deleted since it was listed
			}
			if err != nil {
				return err
			}
			runs = append(runs, r)
		}
		return nil
	})
	if err != nil {
		return nil, store.Translate(err)
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
func (t *Triggers) Webhook(ctx context.Context, project, flow string, header http.Header, body []byte) (*WebhookReply, error) {
	key := project + "\x00" + flow
	if f, ok := t.hooks.Get(key); ok {
		// The flow a delivery found lately: its run goes in only if the
		// flow is still that version under those names. Anything else
		// (it changed, or the delivery is refused or answered without a
		// run) is done again from the flow as it is now.
		if r, err := t.deliver(ctx, f, true, header, body); err == nil && r.Run != nil {
			return r, nil
		}
		t.hooks.Remove(key)
	}
	// A missing project, a missing flow and a flow without a webhook
	// trigger answer alike: the route needs no token and must not reveal
	// which flows exist.
	var f model.Flow
	// The columns a delivery needs: not the definition (the plan of the
	// version is cached).
	err := t.cfg.DB.WithContext(t.cfg.DB.Short(ctx)).Select("id", "project_id", "project", "name", "version", "paused_at", "paused_by").
		Scopes(model.FlowNamed(project, flow)).Take(&f).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, store.NotFound("webhook", project+"/"+flow)
	}
	if err != nil {
		return nil, store.Translate(err)
	}
	r, err := t.deliver(ctx, f, false, header, body)
	if err == nil && r.Run != nil {
		t.hooks.Add(key, f)
	}
	return r, err
}

// deliver is Webhook's delivery to flow f. With ifCurrent, f may be out
// of date: its run is inserted only if f is still its flow's version
// (model.RunRequest.IfCurrent).
func (t *Triggers) deliver(ctx context.Context, f model.Flow, ifCurrent bool, header http.Header, body []byte) (*WebhookReply, error) {
	project, flow := f.Project, f.Name
	hidden := store.NotFound("webhook", project+"/"+flow)
	p, err := t.cfg.Plans.Get(ctx, f.ID, f.Version)
	if err != nil {
		return nil, err
	}
	tr := p.Def.Trigger
	if tr.Type != "webhook" {
		return nil, hidden
	}
	env := tr.Environment
	if env == "" {
		env = "development"
	}
	if tr.SigningSecret != "" {
		if t.cfg.Secrets == nil {
			return nil, ErrBadSignature
		}
		now := t.now()
		ck := project + "\x00" + env + "\x00" + tr.SigningSecret
		t.keysMu.Lock()
		k, known := t.keys[ck]
		t.keysMu.Unlock()
		known = known && now.Sub(k.read) < keyFresh
		verified := known && VerifySignature(tr.Signature, k.value, header, body, time.Now()) == nil
		if !verified {
			if known && now.Sub(k.read) < keyReread {
				return nil, ErrBadSignature // read a moment ago: not again
			}
			key, err := t.cfg.Secrets.Resolve(ctx, model.ResolveRequest{Project: project, Environment: env, Name: tr.SigningSecret, BlockID: "webhook"})
			if err != nil {
				if store.IsUnavailable(err) {
					return nil, err // 503: refused, the sender retries
				}
				t.cfg.Logger.Warn("webhook signing secret does not resolve", "project", project, "flow", flow, "secret", tr.SigningSecret)
				return nil, ErrBadSignature
			}
			t.keysMu.Lock()
			if t.keys == nil {
				t.keys = map[string]signingKey{}
			}
			for c, old := range t.keys {
				if now.Sub(old.read) >= keyFresh {
					delete(t.keys, c) // a value past its minute goes at the next read
				}
			}
			t.keys[ck] = signingKey{value: key, read: now}
			t.keysMu.Unlock()
			if err := VerifySignature(tr.Signature, key, header, body, time.Now()); err != nil {
				return nil, ErrBadSignature
			}
		}
	}
	// Slack's Events API checks a request URL with a signed
	// url_verification event before it sends any: answered with its
	// challenge, no run (on a flow set up for Slack's signature only, so
	// that the check is signed).
	if tr.SigningSecret != "" && (tr.Signature == "slack" || tr.Signature == "") {
		if c, ok := slackChallenge(body); ok {
			return &WebhookReply{Challenge: c}, nil
		}
	}
	input, err := webhookInput(header, body)
	if errors.Is(err, ordered.ErrTooDeep) {
		return nil, apperr.Invalidf("invalid_input", "the webhook's body nests deeper than 10000 levels")
	}
	if err != nil {
		input = map[string]any{"body": string(body)}
	}
	r, err := t.cfg.Enqueue(ctx, t.cfg.DB.DB, &f, model.RunRequest{Project: project, Flow: flow, Environment: env, Input: input,
		Trigger: "webhook", Actor: "webhook", IfCurrent: ifCurrent})
	if model.IsPaused(err) {
		return nil, model.ErrPausedHook // not who paused it, nor when
	}
	if err != nil {
		return nil, err
	}
	return &WebhookReply{Run: r}, nil
}

// WebhookReply is what a webhook delivery produced: a queued run, or for
// Slack's URL verification the challenge to answer with (no run).
type WebhookReply struct {
	Run       *model.Run
	Challenge string
}

// slackChallenge returns the challenge of a Slack url_verification event.
func slackChallenge(body []byte) (string, bool) {
	var ev struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}
	if json.Unmarshal(body, &ev) != nil || ev.Type != "url_verification" || ev.Challenge == "" {
		return "", false
	}
	return ev.Challenge, true
}

// webhookInput is a webhook body as the run's input: JSON decoded with
// the order of its keys (which scripts see); a form-encoded body (Slack's
// slash commands and interactivity) as an object of its fields in order,
// a field given twice as an array, and a field named payload that holds
// JSON (Slack's interactivity) decoded.
func webhookInput(header http.Header, body []byte) (any, error) {
	ct, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return engine.DecodeJSON(body)
	}
	var keys []string
	vals := map[string][]string{}
	for _, kv := range strings.Split(string(body), "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("form body: %w", errors.Join(err1, err2))
		}
		if _, seen := vals[k]; !seen {
			keys = append(keys, k)
		}
		vals[k] = append(vals[k], v)
	}
	// An object in the form's order, as a JSON body's object keeps its own.
	var o ordered.Builder
	for _, k := range keys {
		switch vs := vals[k]; {
		case len(vs) > 1:
			a := make([]any, len(vs))
			for i, v := range vs {
				a[i] = v
			}
			o.Set(k, a)
		case k == "payload":
			if p, err := engine.DecodeJSON([]byte(vs[0])); err == nil {
				o.Set(k, p)
				break
			}
			o.Set(k, vs[0])
		default:
			o.Set(k, vs[0])
		}
	}
	return o.Object(), nil
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
