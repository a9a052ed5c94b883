// Package apps holds app manifests and installations.
//
// A manifest (apps/manifests/*.yaml, embedded in the binary) declares an
// app: its configuration fields (which are secret) and its actions, each
// an HTTP request built from the installation's configuration and the
// action's inputs (`with`). Manifests are data: a tiny {{config.x}} /
// {{with.y}} substitution fills them in, no script runs.
//
// An installation is a project's instance of an app: a name and a
// configuration whose fields are expressions such as
// `secrets.DEMO_BOT_SLACK_BOT_TOKEN`, stored as written and evaluated only
// when an action runs. The reserved field base_url overrides the
// manifest's base URL (tests, self-hosted services).
package apps

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed manifests/*.yaml
var manifestFS embed.FS

// BaseURLField is the reserved configuration field that overrides a
// manifest's base URL.
const BaseURLField = "base_url"

// Manifest declares an app.
type Manifest struct {
	Name    string `yaml:"name" json:"name"`
	Title   string `yaml:"title" json:"title"`
	Doc     string `yaml:"doc" json:"doc,omitempty"`
	BaseURL string `yaml:"base_url" json:"base_url"`
	// Config lists the installation's configuration fields.
	Config []ConfigField `yaml:"config" json:"config"`
	// Webhook says how incoming requests (events) of the app are
	// verified.
	Webhook *Webhook `yaml:"webhook" json:"webhook,omitempty"`
	// Actions by name.
	Actions map[string]*Action `yaml:"actions" json:"actions"`
}

// ConfigField is one configuration field of an app.
type ConfigField struct {
	Name     string `yaml:"name" json:"name"`
	Secret   bool   `yaml:"secret" json:"secret,omitempty"`
	Required bool   `yaml:"required" json:"required,omitempty"`
	Doc      string `yaml:"doc" json:"doc"`
}

// Webhook is the verification of an app's incoming requests.
type Webhook struct {
	// Verify is the scheme: "slack" (VerifySlack) or "github"
	// (VerifyGitHub).
	Verify string `yaml:"verify" json:"verify"`
	// Secret names the configuration field holding the signing secret.
	Secret string `yaml:"secret" json:"secret"`
}

// Action is an HTTP request template.
type Action struct {
	Title string `yaml:"title" json:"title"`
	// Method and Path may hold {{config.x}} and {{with.y}}; values put
	// into the path are escaped per segment. An empty method is GET.
	Method string `yaml:"method" json:"method"`
	Path   string `yaml:"path" json:"path"`
	// Idempotent marks an action that is safe to send twice (it changes
	// nothing, or the service deduplicates it), so that a run interrupted
	// while sending it may send it again when it resumes. Actions whose
	// method is GET, HEAD, OPTIONS, PUT or DELETE are idempotent anyway.
	Idempotent bool `yaml:"idempotent" json:"idempotent,omitempty"`
	// Headers are templates; a header that comes out empty is left out.
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	// Query is a template of an object of query parameters (or one
	// placeholder that gives an object).
	Query any `yaml:"query" json:"query,omitempty"`
	// Body is a JSON template: a string leaf that is exactly one
	// placeholder takes that value (any type; left out when missing),
	// other strings are substituted as text. Without Body, the body is
	// the `with` object over Defaults (a JSON object).
	Body any `yaml:"body" json:"body,omitempty"`
	// Defaults are merged under `with` when Body is not set.
	Defaults map[string]any `yaml:"defaults" json:"defaults,omitempty"`
	// Inputs document the keys of `with`.
	Inputs []Input `yaml:"inputs" json:"inputs,omitempty"`
}

// Input documents one key of an action's `with`.
type Input struct {
	Name     string `yaml:"name" json:"name"`
	Required bool   `yaml:"required" json:"required,omitempty"`
	Doc      string `yaml:"doc" json:"doc"`
}

// Field returns the named configuration field.
func (m *Manifest) Field(name string) (ConfigField, bool) {
	for _, f := range m.Config {
		if f.Name == name {
			return f, true
		}
	}
	return ConfigField{}, false
}

// ActionNames returns the action names, sorted.
func (m *Manifest) ActionNames() []string {
	out := make([]string, 0, len(m.Actions))
	for k := range m.Actions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var manifests = func() map[string]*Manifest {
	ms, err := loadManifests(manifestFS)
	if err != nil {
		panic(err) // the embedded files are part of the program
	}
	return ms
}()

var identRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func loadManifests(fsys fs.FS) (map[string]*Manifest, error) {
	files, err := fs.Glob(fsys, "manifests/*.yaml")
	if err != nil {
		return nil, err
	}
	out := map[string]*Manifest{}
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		var m Manifest
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("apps: manifest %s: %w", f, err)
		}
		if err := m.check(); err != nil {
			return nil, fmt.Errorf("apps: manifest %s: %w", f, err)
		}
		if want := strings.TrimSuffix(path.Base(f), ".yaml"); m.Name != want {
			return nil, fmt.Errorf("apps: manifest %s: name %q differs from the file name", f, m.Name)
		}
		out[m.Name] = &m
	}
	return out, nil
}

func (m *Manifest) check() error {
	if !identRE.MatchString(m.Name) {
		return fmt.Errorf("name %q: lowercase letters, digits and _", m.Name)
	}
	seen := map[string]bool{}
	for _, f := range m.Config {
		if !identRE.MatchString(f.Name) || f.Name == BaseURLField || seen[f.Name] {
			return fmt.Errorf("config field %q: invalid, reserved or duplicate", f.Name)
		}
		seen[f.Name] = true
	}
	if m.Webhook != nil {
		if f, ok := m.Field(m.Webhook.Secret); !ok || !f.Secret {
			return fmt.Errorf("webhook secret %q is not a secret config field", m.Webhook.Secret)
		}
		if m.Webhook.Verify != "slack" && m.Webhook.Verify != "github" {
			return fmt.Errorf("webhook verify %q: use slack or github", m.Webhook.Verify)
		}
	}
	if len(m.Actions) == 0 {
		return fmt.Errorf("no actions")
	}
	for name, a := range m.Actions {
		if !identRE.MatchString(name) || a == nil {
			return fmt.Errorf("action %q: invalid", name)
		}
		for _, s := range append([]string{a.Method, a.Path}, headerValues(a.Headers)...) {
			for _, ph := range placeholderRE.FindAllStringSubmatch(s, -1) {
				if ph[1] == "config" {
					if _, ok := m.Field(ph[2]); !ok {
						return fmt.Errorf("action %q: {{config.%s}} is not a config field", name, ph[2])
					}
				}
			}
		}
	}
	return nil
}

func headerValues(h map[string]string) []string {
	out := make([]string, 0, len(h))
	for _, v := range h {
		out = append(out, v)
	}
	return out
}

// Manifests returns every shipped manifest, sorted by name.
func Manifests() []*Manifest {
	out := make([]*Manifest, 0, len(manifests))
	for _, m := range manifests {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the manifest of app name.
func Lookup(name string) (*Manifest, bool) {
	m, ok := manifests[name]
	return m, ok
}
