package server

import (
	"errors"

	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/store"
	"github.com/labstack/echo/v4"
)

// Role is what a caller may do in a project, from least to most.
type Role int

const (
	// Viewer reads flows, runs and secret names.
	Viewer Role = iota + 1
	// Editor also changes secrets, flows, installations and runs flows.
	Editor
	// Admin also manages members.
	Admin
)

// authorize checks that the caller holds at least role need in project
// (empty project: organization level, which needs an organization admin).
// A caller with no role at all in the project gets the same 404 as for a
// project that does not exist, so that names of other projects are not
// revealed.
//
// Organization admins hold every role everywhere. Project roles for other
// users are granted by project membership.
func (s *Server) authorize(c echo.Context, project string, need Role) error {
	p := principal(c)
	if p == nil {
		return apperr.New(apperr.Unauthenticated, "unauthenticated", "missing or invalid token")
	}
	if p.Admin {
		// Admins may act everywhere, but on projects that exist.
		if project != "" {
			return s.projectExists(c, project)
		}
		return nil
	}
	if project == "" {
		return apperr.New(apperr.Forbidden, "forbidden", "this action needs an organization admin")
	}
	have, err := s.roleIn(c, project)
	if err != nil {
		return err
	}
	if have == 0 {
		return notFound("project", project)
	}
	if have < need {
		return apperr.New(apperr.Forbidden, "forbidden", "this action needs the %s role in project %q", need, project)
	}
	return nil
}

// roleIn returns the caller's role in project, 0 for none.
func (s *Server) roleIn(c echo.Context, project string) (Role, error) {
	role, err := s.deps.Projects.RoleOf(c.Request().Context(), project, principal(c).UserID)
	if err != nil {
		return 0, err
	}
	switch role {
	case "viewer":
		return Viewer, nil
	case "editor":
		return Editor, nil
	case "admin":
		return Admin, nil
	}
	return 0, nil
}

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Editor:
		return "editor"
	case Admin:
		return "admin"
	}
	return "none"
}

// projectExists answers 404 for a project that does not exist. A name
// once found is remembered until this server deletes the project; another
// replica may remember a deleted project, which costs nothing but the
// lookup: the services find no project and answer 404 themselves.
func (s *Server) projectExists(c echo.Context, project string) error {
	if _, ok := s.knownProjects.Load(project); ok {
		return nil
	}
	if _, err := s.deps.Projects.Get(c.Request().Context(), project); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("project", project)
		}
		return err
	}
	s.knownProjects.Store(project, true)
	return nil
}
