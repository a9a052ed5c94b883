package secrets

import (
	"embed"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/store"
)

// Limits on what a secret holds.
const (
	// MaxNameLength is the longest secret name.
	MaxNameLength = 128
	// MaxStringValue is the largest string value: 64 KiB.
	MaxStringValue = 64 << 10
	// MaxFileValue is the largest file value: 1 MiB.
	MaxFileValue = 1 << 20
	// MaxDescription is the longest description, in bytes.
	MaxDescription = 1024
	// MaxAllowedHosts is the most hosts a secret may be pinned to.
	MaxAllowedHosts = 32
)

// Kind is what a secret holds.
type Kind string

const (
	// KindString is text up to 64 KiB, set with "value".
	KindString Kind = "string"
	// KindFile is bytes up to 1 MiB, set with "file_base64" (or the CLI's
	// --from-file) and resolved as the file's bytes.
	KindFile Kind = "file"
)

// Scope is where a secret is defined: both empty is the organization; an
// empty field is "every" (every project, every environment).
type Scope struct {
	Project     string `json:"project,omitempty"`
	Environment string `json:"environment,omitempty"`
}

// Scope labels, from least to most specific.
const (
	LabelOrganization       = "organization"
	LabelEnvironment        = "environment"
	LabelProject            = "project"
	LabelProjectEnvironment = "project+environment"
)

// Label names the kind of scope: organization, environment, project or
// project+environment.
func (s Scope) Label() string {
	switch {
	case s.Project != "" && s.Environment != "":
		return LabelProjectEnvironment
	case s.Project != "":
		return LabelProject
	case s.Environment != "":
		return LabelEnvironment
	}
	return LabelOrganization
}

// Describe is the scope for people: "project billing, environment
// production", "organization".
func (s Scope) Describe() string {
	switch {
	case s.Project != "" && s.Environment != "":
		return "project " + s.Project + ", environment " + s.Environment
	case s.Project != "":
		return "project " + s.Project
	case s.Environment != "":
		return "environment " + s.Environment
	}
	return "organization"
}

// rank orders scopes by specificity: higher wins in resolution.
func (s Scope) rank() int {
	switch s.Label() {
	case LabelProjectEnvironment:
		return 4
	case LabelProject:
		return 3
	case LabelEnvironment:
		return 2
	}
	return 1
}

// Secret is a secret's metadata, as the API shows it. It never holds a
// value.
type Secret struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Scope        Scope    `json:"scope"`
	ScopeLabel   string   `json:"scope_label"`
	Kind         Kind     `json:"kind"`
	Version      int      `json:"version"`
	Description  string   `json:"description"`
	AllowedHosts []string `json:"allowed_hosts"`
	// ReadableFrom names the other environments whose runs may read this
	// secret of a protected environment.
	ReadableFrom []string  `json:"readable_from"`
	Weak         bool      `json:"weak"`
	CreatedAt    time.Time `json:"created_at"`
	CreatedBy    string    `json:"created_by"`
	UpdatedAt    time.Time `json:"updated_at"`
	UpdatedBy    string    `json:"updated_by"`
	// From is set in a resolved listing: the label of the scope the name
	// comes from.
	From string `json:"from,omitempty"`
	// Exposure is set when a run found the secret's value where it should
	// never be (see docs/secrets.md, "Exposure alerts"): the value may
	// have been seen outside Hushflow; rotate it. The next update clears
	// it. Null otherwise.
	Exposure *ExposureMark `json:"exposure"`
}

// ExposureMark says when and where a run first found a secret's value
// since the secret's last update.
type ExposureMark struct {
	At         time.Time `json:"at"`
	RunID      string    `json:"run_id"`
	RunProject string    `json:"run_project"`
	// Block is the block whose data held the value ("" for the run's
	// input) and Sink the place (see Sinks).
	Block string `json:"block,omitempty"`
	Sink  string `json:"sink"`
}

// VersionInfo is one version's metadata.
type VersionInfo struct {
	Version   int       `json:"version"`
	KeyID     string    `json:"key_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	Current   bool      `json:"current"`
	Wiped     bool      `json:"wiped"`
}

// secretRow is a row of the secrets table. Project and Environment hold
// names ("" for every), so that the unique index on (project,
// environment, name) works without NULLs; the ids are kept for the
// ciphertext's additional data.
type secretRow struct {
	ID             string `gorm:"primaryKey;size:36"`
	Name           string `gorm:"size:128;not null;index"`
	ProjectID      string `gorm:"size:36;not null;default:''"`
	Project        string `gorm:"size:63;not null;default:''"`
	EnvironmentID  string `gorm:"size:36;not null;default:''"`
	Environment    string `gorm:"size:63;not null;default:''"`
	Kind           string `gorm:"size:8;not null"`
	Description    string `gorm:"size:1024;not null;default:''"`
	AllowedHosts   string `gorm:"type:text;not null;default:'[]'"` // JSON array
	ReadableFrom   string `gorm:"type:text;not null;default:'[]'"` // JSON array of environment names
	Weak           bool   `gorm:"not null;default:false"`
	CurrentVersion int    `gorm:"not null"`
	CreatedAt      time.Time
	CreatedBy      string `gorm:"size:128;not null;default:''"`
	UpdatedAt      time.Time
	UpdatedBy      string `gorm:"size:128;not null;default:''"`
	DeletedAt      *time.Time
	DeletedBy      string `gorm:"size:128;not null;default:''"`
	// The exposure mark (see ExposureMark); ExposedAt nil: none.
	ExposedAt    *time.Time
	ExposedRunID string `gorm:"size:64;not null;default:''"`
	// ExposedRunProject is the project of the run (which may be another
	// than the secret's, for an organization or environment secret).
	ExposedRunProject string `gorm:"size:63;not null;default:''"`
	ExposedBlock      string `gorm:"size:128;not null;default:''"`
	ExposedSink       string `gorm:"size:32;not null;default:''"`
}

func (secretRow) TableName() string { return "secrets" }

func (r *secretRow) scope() Scope { return Scope{Project: r.Project, Environment: r.Environment} }

func (r *secretRow) identity(version int) identity {
	return identity{SecretID: r.ID, ProjectID: r.ProjectID, EnvironmentID: r.EnvironmentID, Name: r.Name, Version: version}
}

func (r *secretRow) meta() Secret {
	var hosts, readers []string
	_ = json.Unmarshal([]byte(r.AllowedHosts), &hosts)
	if hosts == nil {
		hosts = []string{}
	}
	_ = json.Unmarshal([]byte(r.ReadableFrom), &readers)
	if readers == nil {
		readers = []string{}
	}
	m := Secret{
		ID: r.ID, Name: r.Name, Scope: r.scope(), ScopeLabel: r.scope().Label(), Kind: Kind(r.Kind),
		Version: r.CurrentVersion, Description: r.Description, AllowedHosts: hosts, ReadableFrom: readers, Weak: r.Weak,
		CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy, UpdatedAt: r.UpdatedAt, UpdatedBy: r.UpdatedBy,
	}
	if r.ExposedAt != nil {
		m.Exposure = &ExposureMark{At: r.ExposedAt.UTC(), RunID: r.ExposedRunID, RunProject: r.ExposedRunProject, Block: r.ExposedBlock, Sink: r.ExposedSink}
	}
	return m
}

// versionRow is a row of secret_versions: one encrypted value. A wiped
// row (deleted secret) has no ciphertext and no wrapped key.
type versionRow struct {
	SecretID   string `gorm:"primaryKey;size:36"`
	Version    int    `gorm:"primaryKey;autoIncrement:false"`
	Ciphertext []byte
	WrappedKey []byte
	KeyID      string `gorm:"size:32;not null;default:'';index"`
	CreatedAt  time.Time
	CreatedBy  string `gorm:"size:128;not null;default:''"`
	Wiped      bool   `gorm:"not null;default:false"`
}

func (versionRow) TableName() string { return "secret_versions" }

func (v *versionRow) sealed() sealed {
	return sealed{Ciphertext: v.Ciphertext, WrappedKey: v.WrappedKey, KeyID: v.KeyID}
}

// AuditRecord is one audited event. It names the secret, the version, the
// scope and who or what acted; it never holds a value, a hash or a length
// of a value.
type AuditRecord struct {
	ID          string    `gorm:"primaryKey;size:36" json:"id"`
	At          time.Time `gorm:"index;not null" json:"at"`
	Actor       string    `gorm:"size:128;not null;default:''" json:"actor"`
	Action      string    `gorm:"size:32;not null" json:"action"`
	SecretID    string    `gorm:"size:36;not null;default:''" json:"secret_id,omitempty"`
	SecretName  string    `gorm:"size:128;not null;default:''" json:"secret_name,omitempty"`
	Version     int       `gorm:"not null;default:0" json:"version,omitempty"`
	Project     string    `gorm:"size:63;not null;default:''" json:"project,omitempty"`
	Environment string    `gorm:"size:63;not null;default:''" json:"environment,omitempty"`
	ScopeLabel  string    `gorm:"size:24;not null;default:''" json:"scope,omitempty"`
	RunProject  string    `gorm:"size:63;not null;default:''" json:"run_project,omitempty"`
	RunEnv      string    `gorm:"column:run_environment;size:63;not null;default:''" json:"run_environment,omitempty"`
	RunID       string    `gorm:"size:64;not null;default:''" json:"run_id,omitempty"`
	BlockID     string    `gorm:"size:128;not null;default:''" json:"block_id,omitempty"`
	// Sink is where an exposure record's run found the value (see
	// Sinks).
	Sink   string `gorm:"size:32;not null;default:''" json:"sink,omitempty"`
	Detail string `gorm:"size:512;not null;default:''" json:"detail,omitempty"`
}

func (AuditRecord) TableName() string { return "secret_audit" }

// Audit actions.
const (
	ActionCreate         = "create"
	ActionUpdate         = "update"
	ActionDelete         = "delete"
	ActionRotate         = "rotate"
	ActionResolve        = "resolve"
	ActionRedactionLoad  = "redaction_load"
	ActionDecryptFailure = "decrypt_failure"
	ActionReadDenied     = "read_denied"
	// ActionExposure is a secret value a run found where it should never
	// be (RecordExposure).
	ActionExposure = "exposure"
	// ActionEgressRefused is a request of a run refused because it would
	// have carried a pinned secret to another host (RecordEgressRefused).
	ActionEgressRefused = "egress_refused"
)

// Migrations creates the secrets, secret_versions and secret_audit tables.
// The unique index on (project, environment, name) covers live secrets
// only, so a deleted name can be created again.
func Migrations() []store.Migration { return store.SQLMigrations(migrationFS, "migrations") }

//go:embed migrations/*.sql
var migrationFS embed.FS

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NameRule says what a valid secret name is.
const NameRule = "a secret name is a JavaScript identifier: a letter or '_' followed by letters, digits or '_', up to 128 characters (for example API_TOKEN)"

// ValidateName checks a secret name.
func ValidateName(name string) error {
	if name == "" {
		return apperr.Invalidf("invalid_name", "secret name is empty: %s", NameRule)
	}
	if len(name) > MaxNameLength {
		return apperr.Invalidf("invalid_name", "secret name is %d characters long: %s", len(name), NameRule)
	}
	if !nameRE.MatchString(name) {
		return apperr.Invalidf("invalid_name", "invalid secret name %s: %s", apperr.Echo(name), NameRule)
	}
	return nil
}

// validateValue checks a value's size for its kind. Messages give the
// size and the limit, never the value.
func validateValue(kind Kind, v Value) error {
	n := len(v.Reveal())
	switch kind {
	case KindString:
		if n == 0 {
			return apperr.Invalidf("empty_value", "value is empty: a secret needs a value")
		}
		if n > MaxStringValue {
			return apperr.New(apperr.TooLarge, "value_too_large",
				"value is %d bytes; a string secret holds at most 64 KiB (65536 bytes): store larger data as a file secret (file_base64, up to 1 MiB)", n)
		}
	case KindFile:
		if n == 0 {
			return apperr.Invalidf("empty_value", "file is empty: a file secret needs content")
		}
		if n > MaxFileValue {
			return apperr.New(apperr.TooLarge, "file_too_large",
				"file is %d bytes; a file secret holds at most 1 MiB (1048576 bytes)", n)
		}
	default:
		return apperr.Invalidf("invalid_kind", "unknown secret kind %s: use %q or %q", apperr.Echo(string(kind)), KindString, KindFile)
	}
	return nil
}

var hostRE = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$`)

// normalizeHosts checks allowed_hosts: host names (optionally
// "*.example.com" or with a port), no scheme or path.
func normalizeHosts(hosts []string) ([]string, error) {
	if len(hosts) > MaxAllowedHosts {
		return nil, apperr.Invalidf("invalid_allowed_hosts", "allowed_hosts has %d entries; at most %d", len(hosts), MaxAllowedHosts)
	}
	out := make([]string, 0, len(hosts))
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if len(h) > 253 || !hostRE.MatchString(h) {
			return nil, apperr.Invalidf("invalid_allowed_hosts",
				"allowed_hosts entry %s is not a host name: write api.example.com, *.example.com or api.example.com:8443 (no scheme, no path)", apperr.Echo(h))
		}
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out, nil
}

// normalizeReaders checks readable_from: environment names.
func normalizeReaders(envs []string) ([]string, error) {
	if len(envs) > MaxAllowedHosts {
		return nil, apperr.Invalidf("invalid_readable_from", "readable_from has %d entries; at most %d", len(envs), MaxAllowedHosts)
	}
	out := make([]string, 0, len(envs))
	for _, e := range envs {
		if err := projects.ValidateName("readable_from entry", e); err != nil {
			return nil, err
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func validateDescription(d string) error {
	if len(d) > MaxDescription {
		return apperr.Invalidf("invalid_description", "description is %d bytes; at most %d", len(d), MaxDescription)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func hostsJSON(h []string) string {
	if h == nil {
		h = []string{}
	}
	b, _ := json.Marshal(h)
	return string(b)
}

func notFoundSecret(id string) error {
	return store.NotFound("secret", id)
}
