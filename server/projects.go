package server

import (
	"github.com/hushflow/hushflow/auth"
	"net/http"

	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/projects"
	"github.com/labstack/echo/v4"
)

type nameRequest struct {
	Name string `json:"name"`
}

func (s *Server) createProject(c echo.Context) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	var req nameRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.refuseValueAsName(c, "project", req.Name); err != nil {
		return err
	}
	p, err := s.deps.Projects.Create(c.Request().Context(), req.Name, principal(c).Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

func (s *Server) listProjects(c echo.Context) error {
	ctx := c.Request().Context()
	ps, err := s.deps.Projects.List(ctx)
	if err != nil {
		return err
	}
	if p := principal(c); !p.Admin {
		// Other users see only the projects they are members of.
		mine, err := s.deps.Projects.ProjectsOf(ctx, p.UserID)
		if err != nil {
			return err
		}
		member := map[string]bool{}
		for _, n := range mine {
			member[n] = true
		}
		visible := []projects.Project{}
		for _, pr := range ps {
			if member[pr.Name] {
				visible = append(visible, pr)
			}
		}
		ps = visible
	}
	return c.JSON(http.StatusOK, map[string]any{"projects": ps})
}

func (s *Server) listEnvironments(c echo.Context) error {
	es, err := s.deps.Projects.Environments(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"environments": es})
}

func (s *Server) createEnvironment(c echo.Context) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	var req nameRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.refuseValueAsName(c, "environment", req.Name); err != nil {
		return err
	}
	e, err := s.deps.Projects.CreateEnvironment(c.Request().Context(), req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, e)
}

type environmentUpdate struct {
	Protected *bool `json:"protected"`
}

// updateEnvironment is PUT /api/v1/environments/{name}: {"protected":
// true} protects it (organization admins only).
func (s *Server) updateEnvironment(c echo.Context) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	var req environmentUpdate
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Protected == nil {
		return apperr.Invalidf("invalid_environment", "send {\"protected\": true} or {\"protected\": false}")
	}
	e, err := s.deps.Projects.SetProtected(c.Request().Context(), c.Param("name"), *req.Protected)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

type memberRequest struct {
	Role string `json:"role"`
}

// setMember is PUT /api/v1/projects/{p}/members/{user}; project admins only.
func (s *Server) setMember(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Admin); err != nil {
		return err
	}
	var req memberRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Role == "" {
		return apperr.Invalidf("invalid_role", "role is required: viewer, editor or admin")
	}
	ctx := c.Request().Context()
	u, err := s.memberUser(c)
	if err != nil {
		return err
	}
	if err := s.deps.Projects.SetMember(ctx, project, u.ID, req.Role); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"project": project, "user_id": u.ID, "role": req.Role})
}

// deleteMember is DELETE /api/v1/projects/{p}/members/{user}.
func (s *Server) deleteMember(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Admin); err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := s.memberUser(c)
	if err != nil {
		return err
	}
	if err := s.deps.Projects.SetMember(ctx, project, u.ID, ""); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listMembers(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Viewer); err != nil {
		return err
	}
	ctx := c.Request().Context()
	ms, err := s.deps.Projects.Members(ctx, project)
	if err != nil {
		return err
	}
	// Each member with the user's name, which the settings page shows.
	out := make([]memberView, len(ms))
	for i := range ms {
		out[i].Member = &ms[i]
		if u, err := s.deps.Auth.GetUser(ctx, ms[i].UserID); err == nil {
			out[i].Name = u.Name
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"members": out})
}

type memberView struct {
	*projects.Member
	Name string `json:"name,omitempty"`
}

func (s *Server) getProject(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Viewer); err != nil {
		return err
	}
	p, err := s.deps.Projects.Get(c.Request().Context(), project)
	if err != nil {
		return notFound("project", project)
	}
	return c.JSON(http.StatusOK, p)
}

// projectDeletion is the answer of DELETE /api/v1/projects/{p}: what was
// deleted with the project.
type projectDeletion struct {
	Project       string `json:"project"`
	Flows         int    `json:"flows"`
	Runs          int    `json:"runs"`
	Installations int    `json:"installations"`
	Secrets       int    `json:"secrets"`
}

// deleteProject is DELETE /api/v1/projects/{p} (organization admins): the
// project with everything it holds, its flows (and versions), runs (and
// events), installations, secrets (ciphertext wiped, audited) and
// members. It is refused (409) while a run of the project is queued,
// running or waiting. The parts are deleted in that order, each in its
// own transaction and the project last, so a deletion cut short leaves
// the project in place and is finished by deleting it again.
func (s *Server) deleteProject(c echo.Context) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	ctx, project := c.Request().Context(), c.Param("project")
	if _, err := s.deps.Projects.Get(ctx, project); err != nil {
		return notFound("project", project)
	}
	out := projectDeletion{Project: project}
	if s.deps.Flows != nil {
		d, err := s.deps.Flows.DeleteProject(ctx, project)
		if err != nil {
			return err
		}
		out.Flows, out.Runs = d.Flows, d.Runs
	}
	if s.deps.Apps != nil {
		n, err := s.deps.Apps.DeleteProject(ctx, project)
		if err != nil {
			return err
		}
		out.Installations = n
	}
	if s.deps.Secrets != nil {
		n, err := s.deps.Secrets.DeleteProject(ctx, principal(c).Name, project)
		if err != nil {
			return err
		}
		out.Secrets = n
	}
	if err := s.deps.Projects.Delete(ctx, project); err != nil {
		return err
	}
	s.knownProjects.Delete(project)
	return c.JSON(http.StatusOK, out)
}

// memberUser is the user of a members route: by id, or by name for an
// organization admin (who may list users anyway; a project admin who may
// not would otherwise learn which names exist by trying them).
func (s *Server) memberUser(c echo.Context) (*auth.User, error) {
	ref := c.Param("user")
	if principal(c).Admin {
		return s.deps.Auth.FindUser(c.Request().Context(), ref)
	}
	return s.deps.Auth.GetUser(c.Request().Context(), ref)
}
