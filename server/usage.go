package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// secretUse is where a project's saved flows and installations name one
// secret.
type secretUse struct {
	Flows         []string `json:"flows"`
	Installations []string `json:"installations"`
}

// secretUsage answers GET /projects/:project/secret-usage: for every secret
// name the project's flows (latest versions: expressions, webhook signing
// secrets, exec secrets lists) and app installations reference, which of
// them do; and the flows whose use is not all known (they compute names at
// run time). The Secrets page marks a secret "unused" and warns before a
// delete from it.
func (s *Server) secretUsage(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Viewer); err != nil {
		return err
	}
	ctx := c.Request().Context()
	use := map[string]*secretUse{}
	entry := func(name string) *secretUse {
		if use[name] == nil {
			use[name] = &secretUse{Flows: []string{}, Installations: []string{}}
		}
		return use[name]
	}
	unknown := []string{}
	if s.deps.Flows != nil {
		u, err := s.deps.Flows.SecretUsage(ctx, project)
		if err != nil {
			return err
		}
		for name, fs := range u.Flows {
			entry(name).Flows = fs
		}
		unknown = u.Unknown
	}
	if s.deps.Apps != nil {
		by, err := s.deps.Apps.SecretUsage(ctx, project)
		if err != nil {
			return err
		}
		for name, is := range by {
			entry(name).Installations = is
		}
	}
	return s.maskedJSON(c, http.StatusOK, project, map[string]any{"secrets": use, "unknown_flows": unknown})
}

// installationUsage answers GET /projects/:project/installation-usage:
// for every installation the project's flows (latest versions) name in an
// app block, which flows do; and the flows whose app blocks compute the
// installation at run time. The Apps page shows "used by" and warns
// before a delete from it.
func (s *Server) installationUsage(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Viewer); err != nil {
		return err
	}
	use, unknown := map[string][]string{}, []string{}
	if s.deps.Flows != nil {
		u, err := s.deps.Flows.InstallationUsage(c.Request().Context(), project)
		if err != nil {
			return err
		}
		use, unknown = u.Flows, u.Unknown
	}
	return s.maskedJSON(c, http.StatusOK, project, map[string]any{"installations": use, "unknown_flows": unknown})
}
