package apps

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/internal/suggest"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/store"
)

// Limits of an installation.
const (
	MaxConfigFields = 32
	MaxExpression   = 4 << 10
)

// Installation is an app installed in a project. Config holds
// expressions, as written; the API shows them and never resolved values.
type Installation struct {
	ID        string            `json:"id"`
	Project   string            `json:"project"`
	App       string            `json:"app"`
	Name      string            `json:"name"`
	Config    map[string]string `json:"config"`
	CreatedAt time.Time         `json:"created_at"`
	CreatedBy string            `json:"created_by"`
	UpdatedAt time.Time         `json:"updated_at"`
	UpdatedBy string            `json:"updated_by"`
}

// row is an installation in the app_installations table.
type row struct {
	ID        string `gorm:"primaryKey;size:36"`
	ProjectID string `gorm:"size:36;not null;uniqueIndex:app_installations_project_name"`
	App       string `gorm:"size:63;not null"`
	Name      string `gorm:"size:63;not null;uniqueIndex:app_installations_project_name"`
	Config    string `gorm:"type:text;not null"` // JSON object of expressions
	CreatedAt time.Time
	CreatedBy string `gorm:"size:128"`
	UpdatedAt time.Time
	UpdatedBy string `gorm:"size:128"`
}

func (row) TableName() string { return "app_installations" }

// Migrations creates the app_installations table.
func Migrations() []store.Migration { return store.SQLMigrations(migrationFS, "migrations") }

//go:embed migrations/*.sql
var migrationFS embed.FS

// SecretNames lists the secret names defined for a project in any scope
// that one of its runs can see (any environment). The server wires it to
// the secrets store.
type SecretNames func(ctx context.Context, project string) ([]string, error)

// Service keeps installations and resolves app actions for the app block.
type Service struct {
	db    *store.DB
	names SecretNames
	now   func() time.Time
	// parser compiles installation config expressions to check them (it
	// never runs them: actions evaluate config fields in their run).
	parser *engine.Engine
}

// NewService returns a Service over db; names checks secret references at
// save time (nil: no check, no warnings).
func NewService(db *store.DB, names SecretNames) *Service {
	return &Service{db: db, names: names, now: func() time.Time { return time.Now().UTC() },
		parser: engine.New(engine.Config{CacheEntries: 256})}
}

var _ blocks.AppResolver = (*Service)(nil)

// Request is the body of a create or update.
type Request struct {
	App    string            `json:"app"`
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate checks r for project and returns warnings (secret names that
// resolve in no scope of the project). Errors are apperr Invalid and name
// the field.
func (s *Service) Validate(ctx context.Context, project string, r Request) (warnings []string, err error) {
	m, ok := Lookup(r.App)
	if !ok {
		names := []string{}
		for _, m := range Manifests() {
			names = append(names, m.Name)
		}
		return nil, apperr.Invalidf("unknown_app", "app %s does not exist (apps: %s)", apperr.Echo(r.App), strings.Join(names, ", "))
	}
	if !nameRE.MatchString(r.Name) {
		return nil, apperr.Invalidf("invalid_name", "installation name %s: 1 to 63 lowercase letters, digits, '-' and '_'", apperr.Echo(r.Name))
	}
	if len(r.Config) > MaxConfigFields {
		return nil, apperr.Invalidf("invalid_config", "config has %d fields; at most %d", len(r.Config), MaxConfigFields)
	}
	for k := range r.Config {
		if _, ok := m.Field(k); !ok && k != BaseURLField {
			fields := []string{}
			for _, f := range m.Config {
				fields = append(fields, f.Name)
			}
			return nil, apperr.Invalidf("invalid_config", "config field %s is not a field of app %s (fields: %s, base_url)", apperr.Echo(k), m.Name, strings.Join(fields, ", "))
		}
	}
	for _, f := range m.Config {
		if f.Required && strings.TrimSpace(r.Config[f.Name]) == "" {
			return nil, apperr.Invalidf("invalid_config", "config field %q is required: %s", f.Name, f.Doc)
		}
	}
	if m.BaseURL == "" && strings.TrimSpace(r.Config[BaseURLField]) == "" {
		return nil, apperr.Invalidf("invalid_config", "config field \"base_url\" is required for app %s", m.Name)
	}
	var refs []string
	keys := make([]string, 0, len(r.Config))
	for k := range r.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		expr := r.Config[k]
		if strings.TrimSpace(expr) == "" {
			continue
		}
		if len(expr) > MaxExpression {
			return nil, apperr.New(apperr.TooLarge, "too_large", "config field %q is %d bytes; at most %d", k, len(expr), MaxExpression)
		}
		p, err := s.parser.Compile(engine.Field, expr, engine.WithField(k))
		if err != nil {
			return nil, apperr.Invalidf("invalid_expression", "config field %q: %s", k, exprError(err))
		}
		rf := p.References()
		if f, _ := m.Field(k); f.Secret && len(rf.Secrets) == 0 && !rf.DynamicSecrets {
			return nil, apperr.Invalidf("literal_secret", "config field %q is secret: reference a stored secret (for example secrets.%s), never a literal value",
				k, strings.ToUpper(r.Name+"_"+k))
		} else if f.Secret && rf.LongestLiteral >= MaxSecretFieldText {
			// secrets.K || 'the-token-itself' references a secret too.
			return nil, apperr.Invalidf("literal_secret", "config field %q is secret: it holds a literal text of %d characters, and a credential never goes in a literal; "+
				"keep it in a stored secret (for example secrets.%s); text around a secret, like `Bearer ${secrets.X}`, may have at most %d characters in one piece",
				k, rf.LongestLiteral, strings.ToUpper(r.Name+"_"+k), MaxSecretFieldText-1)
		}
		refs = append(refs, rf.Secrets...)
	}
	if s.names != nil && len(refs) > 0 {
		known, err := s.names(ctx, project)
		if err != nil {
			return nil, err
		}
		known = slices.Sorted(slices.Values(known))
		have := map[string]bool{}
		for _, n := range known {
			have[n] = true
		}
		seen := map[string]bool{}
		for _, n := range refs {
			if !have[n] && !seen[n] {
				seen[n] = true
				w := fmt.Sprintf("secret %q is not defined for project %s in any environment", n, project)
				if near := suggest.Nearest(n, known); near != "" {
					w += fmt.Sprintf("; did you mean %q?", near)
				}
				warnings = append(warnings, w)
			}
		}
	}
	return warnings, nil
}

// MaxSecretFieldText bounds the literal text in a secret config field
// (a prefix such as "Bearer " is fine; a token is not).
const MaxSecretFieldText = 12

// exprError shortens an engine error to its message (no source snippet:
// the API shows the expression anyway).
func exprError(err error) string {
	var e *engine.Error
	if errors.As(err, &e) && e.Message != "" {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
	}
	return err.Error()
}

func (s *Service) projectID(ctx context.Context, project string) (string, error) {
	var p projects.Project
	if err := s.db.WithContext(ctx).Where("name = ?", project).First(&p).Error; err != nil {
		if err = store.Translate(err); errors.Is(err, store.ErrNotFound) {
			return "", notFound("project", project)
		}
		return "", err
	}
	return p.ID, nil
}

// Create saves a new installation.
func (s *Service) Create(ctx context.Context, project string, r Request, by string) (*Installation, []string, error) {
	pid, err := s.projectID(ctx, project)
	if err != nil {
		return nil, nil, err
	}
	warnings, err := s.Validate(ctx, project, r)
	if err != nil {
		return nil, nil, err
	}
	cfg, _ := json.Marshal(nonNil(r.Config))
	now := s.now()
	rw := &row{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: pid, App: r.App, Name: r.Name, Config: string(cfg),
		CreatedAt: now, CreatedBy: by, UpdatedAt: now, UpdatedBy: by}
	if err := store.Translate(s.db.WithContext(ctx).Create(rw).Error); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, nil, store.Conflict("installation", r.Name, "project "+project, "")
		}
		return nil, nil, err
	}
	return toInstallation(rw, project), warnings, nil
}

// Update replaces the configuration of an installation (its name and app
// stay).
func (s *Service) Update(ctx context.Context, project, name string, r Request, by string) (*Installation, []string, error) {
	cur, err := s.getRow(ctx, project, name)
	if err != nil {
		return nil, nil, err
	}
	if r.Name != "" && r.Name != name {
		return nil, nil, apperr.Invalidf("invalid_name", "an installation cannot be renamed; create a new one")
	}
	if r.App != "" && r.App != cur.App {
		return nil, nil, apperr.Invalidf("invalid_app", "an installation's app cannot change (it is %s)", cur.App)
	}
	r.Name, r.App = name, cur.App
	warnings, err := s.Validate(ctx, project, r)
	if err != nil {
		return nil, nil, err
	}
	cfg, _ := json.Marshal(nonNil(r.Config))
	cur.Config, cur.UpdatedAt, cur.UpdatedBy = string(cfg), s.now(), by
	res := s.db.WithContext(ctx).Model(&row{}).Where("id = ?", cur.ID).
		Updates(map[string]any{"config": cur.Config, "updated_at": cur.UpdatedAt, "updated_by": by})
	if err := store.Translate(res.Error); err != nil {
		return nil, nil, err
	}
	if res.RowsAffected == 0 {
		return nil, nil, notFound("installation", name)
	}
	return toInstallation(cur, project), warnings, nil
}

// DeleteProject deletes every installation of project and returns how
// many it deleted.
func (s *Service) DeleteProject(ctx context.Context, project string) (int, error) {
	pid, err := s.projectID(ctx, project)
	if err != nil {
		return 0, err
	}
	res := s.db.WithContext(ctx).Where("project_id = ?", pid).Delete(&row{})
	return int(res.RowsAffected), store.Translate(res.Error)
}

// Get returns one installation.
func (s *Service) Get(ctx context.Context, project, name string) (*Installation, error) {
	rw, err := s.getRow(ctx, project, name)
	if err != nil {
		return nil, err
	}
	return toInstallation(rw, project), nil
}

func (s *Service) getRow(ctx context.Context, project, name string) (*row, error) {
	pid, err := s.projectID(ctx, project)
	if err != nil {
		return nil, err
	}
	var rw row
	if err := s.db.WithContext(ctx).Where("project_id = ? AND name = ?", pid, name).First(&rw).Error; err != nil {
		if err = store.Translate(err); errors.Is(err, store.ErrNotFound) {
			return nil, notFound("installation", name)
		}
		return nil, err
	}
	return &rw, nil
}

// List returns a project's installations by name.
func (s *Service) List(ctx context.Context, project string) ([]Installation, error) {
	pid, err := s.projectID(ctx, project)
	if err != nil {
		return nil, err
	}
	var rows []row
	if err := s.db.WithContext(ctx).Where("project_id = ?", pid).Order("name").Find(&rows).Error; err != nil {
		return nil, store.Translate(err)
	}
	out := make([]Installation, 0, len(rows))
	for i := range rows {
		out = append(out, *toInstallation(&rows[i], project))
	}
	return out, nil
}

// Delete removes an installation.
func (s *Service) Delete(ctx context.Context, project, name string) error {
	pid, err := s.projectID(ctx, project)
	if err != nil {
		return err
	}
	res := s.db.WithContext(ctx).Where("project_id = ? AND name = ?", pid, name).Delete(&row{})
	if err := store.Translate(res.Error); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return notFound("installation", name)
	}
	return nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func toInstallation(r *row, project string) *Installation {
	cfg := map[string]string{}
	_ = json.Unmarshal([]byte(r.Config), &cfg)
	return &Installation{ID: r.ID, Project: project, App: r.App, Name: r.Name, Config: cfg,
		CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy, UpdatedAt: r.UpdatedAt, UpdatedBy: r.UpdatedBy}
}

// Resolve evaluates an installation's configuration with eval (the run's
// Script for kind "field"): each value must be a string (numbers and
// booleans are converted). Values of secret fields are passed to mask
// (nil: none) before they are used.
func Resolve(ctx context.Context, m *Manifest, inst *Installation, eval func(ctx context.Context, expr string) (any, error), mask func(string)) (map[string]string, error) {
	out := make(map[string]string, len(inst.Config))
	keys := make([]string, 0, len(inst.Config))
	for k := range inst.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		expr := inst.Config[k]
		if strings.TrimSpace(expr) == "" {
			continue
		}
		v, err := eval(ctx, expr)
		if err != nil {
			return nil, fmt.Errorf("installation %q: config field %q: %w", inst.Name, k, err)
		}
		if v == nil {
			continue
		}
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("installation %q: config field %q must be a string, not an object or array", inst.Name, k)
		}
		s, err := toText(v)
		if err != nil {
			return nil, fmt.Errorf("installation %q: config field %q must be a string", inst.Name, k)
		}
		if f, _ := m.Field(k); f.Secret && mask != nil {
			mask(s)
		}
		out[k] = s
	}
	return out, nil
}

// Action implements blocks.AppResolver: it finds installation in the
// run's project, evaluates its configuration with the run's Script (so
// secret reads are audited and join the run's redactor) and builds the
// request of action.
func (s *Service) Action(ctx context.Context, in *blocks.Input, installation, action string, with map[string]any) (*http.Request, error) {
	if in == nil || in.Script == nil {
		return nil, errors.New("app action: no script runner for this run")
	}
	inst, err := s.Get(ctx, in.Project, installation)
	if err != nil {
		return nil, fmt.Errorf("app installation %q: %w", installation, err)
	}
	m, ok := Lookup(inst.App)
	if !ok {
		return nil, fmt.Errorf("installation %q: app %q is no longer shipped", installation, inst.App)
	}
	if _, ok := m.Actions[action]; !ok {
		return nil, fmt.Errorf("app %s has no action %q (actions: %s)", m.Name, action, strings.Join(m.ActionNames(), ", "))
	}
	eval := func(ctx context.Context, expr string) (any, error) { return in.Script(ctx, "field", expr) }
	cfg, err := Resolve(ctx, m, inst, eval, in.Mask)
	if err != nil {
		return nil, err
	}
	return m.Build(ctx, action, cfg, with)
}

// RepeatSafe reports whether running action of installation again, with
// these inputs, is safe (Manifest.RepeatSafe).
func (s *Service) RepeatSafe(ctx context.Context, in *blocks.Input, installation, action string, with map[string]any) (bool, error) {
	inst, err := s.Get(ctx, in.Project, installation)
	if err != nil {
		return false, fmt.Errorf("app installation %q: %w", installation, err)
	}
	m, ok := Lookup(inst.App)
	if !ok {
		return false, fmt.Errorf("installation %q: app %q is no longer shipped", installation, inst.App)
	}
	return m.RepeatSafe(action, with), nil
}

// VerifyWebhook checks an incoming request of installation name with the
// scheme its app declares (Slack signing secret, GitHub webhook secret).
// eval evaluates the signing secret's expression (with the project's
// secrets); header and body are the raw request's.
func (s *Service) VerifyWebhook(ctx context.Context, project, name string, eval func(ctx context.Context, expr string) (any, error), header http.Header, body []byte) error {
	inst, err := s.Get(ctx, project, name)
	if err != nil {
		return err
	}
	m, ok := Lookup(inst.App)
	if !ok || m.Webhook == nil {
		return fmt.Errorf("%w: app %s has no webhook verification", ErrSignature, inst.App)
	}
	expr := inst.Config[m.Webhook.Secret]
	if strings.TrimSpace(expr) == "" {
		return fmt.Errorf("%w: installation %q has no %s", ErrSignature, name, m.Webhook.Secret)
	}
	v, err := eval(ctx, expr)
	if err != nil {
		return fmt.Errorf("installation %q: config field %q: %w", name, m.Webhook.Secret, err)
	}
	secret, _ := v.(string)
	switch m.Webhook.Verify {
	case "slack":
		return VerifySlack(secret, header, body, s.now())
	default:
		return VerifyGitHub(secret, header, body)
	}
}

// notFound is a 404 error naming the thing, worded the same whether it
// does not exist or is not visible.
func notFound(what, name string) error { return store.NotFound(what, name) }

// SecretUsage maps each secret name the project's installations reference
// in their configs to the installations that do, sorted.
func (s *Service) SecretUsage(ctx context.Context, project string) (map[string][]string, error) {
	list, err := s.List(ctx, project)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, inst := range list {
		seen := map[string]bool{}
		for k, expr := range inst.Config {
			if strings.TrimSpace(expr) == "" {
				continue
			}
			p, err := s.parser.Compile(engine.Field, expr, engine.WithField(k))
			if err != nil {
				continue // saved before a rule that refuses it: it names nothing readable
			}
			for _, name := range p.References().Secrets {
				if !seen[name] {
					seen[name] = true
					out[name] = append(out[name], inst.Name)
				}
			}
		}
	}
	return out, nil
}
