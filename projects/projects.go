// Package projects keeps projects and environments: the two axes every
// secret, flow and run is scoped by.
package projects

import (
	"context"
	"embed"
	"errors"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Project groups flows, secrets and installations.
type Project struct {
	ID        string    `gorm:"primaryKey;size:36" json:"id"`
	Name      string    `gorm:"uniqueIndex;size:63;not null" json:"name"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `gorm:"size:128" json:"created_by"`
}

// Environment is a deployment stage such as production.
type Environment struct {
	ID        string    `gorm:"primaryKey;size:36" json:"id"`
	Name      string    `gorm:"uniqueIndex;size:63;not null" json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// Protected: the environment's secrets resolve only in its own runs
	// and in those of the environments a secret names in readable_from.
	Protected bool `gorm:"not null;default:false" json:"protected"`
}

// DefaultEnvironments exist in every new installation.
var DefaultEnvironments = []string{"development", "staging", "production"}

// Migrations creates the tables and the default environments.
func Migrations() []store.Migration {
	ms := store.SQLMigrations(migrationFS, "migrations")
	// The default environments are data, with generated ids, written
	// with the columns of that migration (not today's struct, which later
	// migrations extend).
	ms[0].Up = func(tx *gorm.DB) error {
		for _, n := range DefaultEnvironments {
			if err := tx.Exec("INSERT INTO environments (id, name, created_at) VALUES (?, ?, ?)", newID(), n, time.Now().UTC()).Error; err != nil {
				return err
			}
		}
		return nil
	}
	return ms
}

//go:embed migrations/*.sql
var migrationFS embed.FS

var nameRE = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// NameRule says what a valid project or environment name is.
const NameRule = "names are 1 to 63 characters of lowercase letters, digits and '-'"

// ValidateName checks a project or environment name; what names the field
// in the error message.
func ValidateName(what, name string) error {
	if !nameRE.MatchString(name) {
		return apperr.Invalidf("invalid_name", "invalid %s name %s: %s", what, apperr.Echo(name), NameRule)
	}
	return nil
}

// Service manages projects and environments.
type Service struct{ db *store.DB }

// NewService returns a Service over db.
func NewService(db *store.DB) *Service { return &Service{db: db} }

// Delete deletes the project called name and its members. The rest of
// what the project holds (flows, runs, installations, secrets) belongs to
// other packages, which delete it first (the API's DELETE
// /api/v1/projects/{p}).
func (s *Service) Delete(ctx context.Context, name string) error {
	p, err := s.Get(ctx, name)
	if err != nil {
		return err
	}
	return store.Translate(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("project_id = ?", p.ID).Delete(&Member{}).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", p.ID).Delete(&Project{}).Error
	}))
}

// Create adds a project.
func (s *Service) Create(ctx context.Context, name, createdBy string) (*Project, error) {
	if err := ValidateName("project", name); err != nil {
		return nil, err
	}
	p := &Project{ID: newID(), Name: name, CreatedAt: time.Now().UTC(), CreatedBy: createdBy}
	if err := store.Translate(s.db.WithContext(ctx).Create(p).Error); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, conflict("project", name)
		}
		return nil, err
	}
	return p, nil
}

// List returns every project by name.
func (s *Service) List(ctx context.Context) ([]Project, error) {
	var ps []Project
	return ps, store.Translate(s.db.WithContext(ctx).Order("name").Find(&ps).Error)
}

// Get returns the project called name, or store.ErrNotFound.
func (s *Service) Get(ctx context.Context, name string) (*Project, error) {
	var p Project
	if err := s.db.WithContext(ctx).Where("name = ?", name).First(&p).Error; err != nil {
		return nil, store.Translate(err)
	}
	return &p, nil
}

// CreateEnvironment adds an environment.
func (s *Service) CreateEnvironment(ctx context.Context, name string) (*Environment, error) {
	if err := ValidateName("environment", name); err != nil {
		return nil, err
	}
	e := &Environment{ID: newID(), Name: name, CreatedAt: time.Now().UTC()}
	if err := store.Translate(s.db.WithContext(ctx).Create(e).Error); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, conflict("environment", name)
		}
		return nil, err
	}
	return e, nil
}

// SetProtected protects environment name (or stops protecting it).
func (s *Service) SetProtected(ctx context.Context, name string, protected bool) (*Environment, error) {
	res := s.db.WithContext(ctx).Model(&Environment{}).Where("name = ?", name).Update("protected", protected)
	if err := store.Translate(res.Error); err != nil {
		return nil, err
	}
	if res.RowsAffected == 0 {
		return nil, store.NotFound("environment", name)
	}
	return s.GetEnvironment(ctx, name)
}

// Environments returns every environment by name.
func (s *Service) Environments(ctx context.Context) ([]Environment, error) {
	var es []Environment
	return es, store.Translate(s.db.WithContext(ctx).Order("name").Find(&es).Error)
}

// GetEnvironment returns the environment called name, or store.ErrNotFound.
func (s *Service) GetEnvironment(ctx context.Context, name string) (*Environment, error) {
	var e Environment
	if err := s.db.WithContext(ctx).Where("name = ?", name).First(&e).Error; err != nil {
		return nil, store.Translate(err)
	}
	return &e, nil
}

func conflict(what, name string) error { return store.Conflict(what, name, "", "") }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Member gives a user a role in a project.
type Member struct {
	ProjectID string    `gorm:"primaryKey;size:36" json:"-"`
	UserID    string    `gorm:"primaryKey;size:36;index" json:"user_id"`
	Role      string    `gorm:"size:16;not null" json:"role"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Roles a member can hold, from least to most.
var Roles = []string{"viewer", "editor", "admin"}

// SetMember gives userID role in project (an empty role removes the
// membership).
func (s *Service) SetMember(ctx context.Context, project, userID, role string) error {
	p, err := s.Get(ctx, project)
	if err != nil {
		return err
	}
	db := s.db.WithContext(ctx)
	if role == "" {
		return store.Translate(db.Where("project_id = ? AND user_id = ?", p.ID, userID).Delete(&Member{}).Error)
	}
	valid := false
	for _, r := range Roles {
		valid = valid || r == role
	}
	if !valid {
		return apperr.Invalidf("invalid_role", "invalid role %s: use viewer, editor or admin", apperr.Echo(role))
	}
	m := Member{ProjectID: p.ID, UserID: userID, Role: role, UpdatedAt: time.Now().UTC()}
	return store.Translate(db.Save(&m).Error)
}

// RoleOf returns userID's role in project ("" for none, also when the
// project does not exist).
func (s *Service) RoleOf(ctx context.Context, project, userID string) (string, error) {
	var m Member
	err := s.db.WithContext(ctx).Table("members").
		Joins("JOIN projects ON projects.id = members.project_id").
		Where("projects.name = ? AND members.user_id = ?", project, userID).
		Select("members.role").Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", nil
	}
	return m.Role, store.Translate(err)
}

// Members lists a project's members.
func (s *Service) Members(ctx context.Context, project string) ([]Member, error) {
	p, err := s.Get(ctx, project)
	if err != nil {
		return nil, err
	}
	var ms []Member
	return ms, store.Translate(s.db.WithContext(ctx).Where("project_id = ?", p.ID).Order("user_id").Find(&ms).Error)
}

// ProjectsOf lists the names of the projects userID is a member of.
func (s *Service) ProjectsOf(ctx context.Context, userID string) ([]string, error) {
	var names []string
	err := s.db.WithContext(ctx).Table("projects").
		Joins("JOIN members ON members.project_id = projects.id").
		Where("members.user_id = ?", userID).Order("projects.name").Pluck("projects.name", &names).Error
	return names, store.Translate(err)
}
