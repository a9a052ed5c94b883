// Package projects keeps projects and environments: the two axes every
// secret, flow and run is scoped by.
package projects

import (
	"context"
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
}

// DefaultEnvironments exist in every new installation.
var DefaultEnvironments = []string{"development", "staging", "production"}

// Migrations creates the tables and the default environments.
func Migrations() []store.Migration {
	return []store.Migration{{ID: "0001_projects_environments", Up: func(tx *gorm.DB) error {
		if err := tx.Migrator().CreateTable(&Project{}, &Environment{}); err != nil {
			return err
		}
		for _, n := range DefaultEnvironments {
			if err := tx.Create(&Environment{ID: newID(), Name: n, CreatedAt: time.Now().UTC()}).Error; err != nil {
				return err
			}
		}
		return nil
	}}}
}

var nameRE = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// NameRule says what a valid project or environment name is.
const NameRule = "names are 1 to 63 characters of lowercase letters, digits and '-'"

// ValidateName checks a project or environment name; what names the field
// in the error message.
func ValidateName(what, name string) error {
	if !nameRE.MatchString(name) {
		return apperr.Invalidf("invalid_name", "invalid %s name %q: %s", what, truncate(name, 70), NameRule)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Service manages projects and environments.
type Service struct{ db *store.DB }

// NewService returns a Service over db.
func NewService(db *store.DB) *Service { return &Service{db: db} }

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

// ConflictError reports a name that already exists (409).
type ConflictError struct{ What, Name string }

func (e *ConflictError) Error() string {
	return e.What + " " + `"` + e.Name + `"` + " already exists"
}
func (e *ConflictError) Unwrap() error { return store.ErrConflict }

func conflict(what, name string) error { return &ConflictError{What: what, Name: name} }

func newID() string { return uuid.Must(uuid.NewV7()).String() }
