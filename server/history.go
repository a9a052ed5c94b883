package server

import (
	"net/http"
	"strconv"

	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/labstack/echo/v4"
)

// historyRoutes are a flow's versions one by one, rollback and rerun.
func (s *Server) historyRoutes() {
	g := s.v1
	g.GET("/projects/:project/flows/:flow/versions/:version", s.getFlowVersion)
	g.POST("/projects/:project/flows/:flow/rollback", s.rollbackFlow)
	g.POST("/runs/:id/rerun", s.rerunRun)
}

// versionParam reads the {version} of the URL.
func versionParam(c echo.Context) (int, error) {
	n, err := strconv.Atoi(c.Param("version"))
	if err != nil || n < 1 {
		return 0, apperr.Invalidf("invalid_version", "version in the URL must be a whole number from 1")
	}
	return n, nil
}

type versionResponse struct {
	*flows.FlowVersion
	Definition flows.Definition `json:"definition"`
}

// getFlowVersion is GET /projects/{p}/flows/{name}/versions/{n}: one
// version's definition (the editor's diff between versions).
func (s *Server) getFlowVersion(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Viewer); err != nil {
		return err
	}
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	v, def, err := s.deps.Flows.Version(c.Request().Context(), project, c.Param("flow"), n)
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusOK, project, versionResponse{FlowVersion: v, Definition: def})
}

type rollbackRequest struct {
	// Version is the earlier version whose definition becomes the new one.
	Version int `json:"version"`
}

// rollbackFlow is POST /projects/{p}/flows/{name}/rollback {"version": N}:
// version N's definition saved as a new version, as a PUT of it would
// (the same role, validation and refusal of pasted secret values). The
// versions in between stay; rolling back to the current definition
// stores nothing ("unchanged": true).
func (s *Server) rollbackFlow(c echo.Context) error {
	project, name := c.Param("project"), c.Param("flow")
	if err := s.authorize(c, project, Editor); err != nil {
		return err
	}
	var req rollbackRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Version < 1 {
		return apperr.Invalidf("invalid_version", "version is required: the number of the earlier version to roll back to, from 1")
	}
	ctx := c.Request().Context()
	_, def, err := s.deps.Flows.Version(ctx, project, name, req.Version)
	if err != nil {
		return err
	}
	if err := s.refusePasted(c, project, def, nil); err != nil {
		return err
	}
	f, warn, unchanged, err := s.deps.Flows.Save(ctx, project, def, principal(c).Name, false)
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusOK, project, flowResponse{Flow: f, Definition: def, Warnings: warn, Unchanged: unchanged})
}

// rerunRun is POST /runs/{id}/rerun: a new run of the run's flow (its
// current version) in the same environment with the same input (the real
// one, which views show redacted), whose rerun_of is id. It needs the
// role that starting a run needs.
func (s *Server) rerunRun(c echo.Context) error {
	r, err := s.runOf(c, Editor)
	if err != nil {
		return err
	}
	nr, err := s.deps.Flows.Rerun(c.Request().Context(), r.ID, principal(c).Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, nr.View())
}
