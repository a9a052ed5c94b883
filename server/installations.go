package server

import (
	"net/http"

	"github.com/hushflow/hushflow/apps"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/labstack/echo/v4"
)

func (s *Server) installationRoutes() {
	v1 := s.v1
	v1.GET("/apps", s.listApps)
	v1.POST("/projects/:project/installations", s.createInstallation)
	v1.GET("/projects/:project/installations", s.listInstallations)
	v1.GET("/projects/:project/installations/:name", s.getInstallation)
	v1.PUT("/projects/:project/installations/:name", s.updateInstallation)
	v1.DELETE("/projects/:project/installations/:name", s.deleteInstallation)
}

func (s *Server) appsService() (*apps.Service, error) {
	if s.deps.Apps == nil {
		return nil, apperr.New(apperr.Unavailable, "apps_unavailable", "app installations are not configured on this server")
	}
	return s.deps.Apps, nil
}

// installationResponse is an installation (its config as expressions,
// never resolved values) with the warnings of its validation.
type installationResponse struct {
	*apps.Installation
	Warnings []string `json:"warnings,omitempty"`
}

type appAction struct {
	Name   string       `json:"name"`
	Title  string       `json:"title"`
	Method string       `json:"method"`
	Path   string       `json:"path"`
	Inputs []apps.Input `json:"inputs"`
}

type appInfo struct {
	Name    string             `json:"name"`
	Title   string             `json:"title"`
	Doc     string             `json:"doc,omitempty"`
	BaseURL string             `json:"base_url"`
	Config  []apps.ConfigField `json:"config"`
	Webhook *apps.Webhook      `json:"webhook,omitempty"`
	Actions []appAction        `json:"actions"`
}

// listApps is GET /api/v1/apps: the shipped manifests.
func (s *Server) listApps(c echo.Context) error {
	out := []appInfo{}
	for _, m := range apps.Manifests() {
		ai := appInfo{Name: m.Name, Title: m.Title, Doc: m.Doc, BaseURL: m.BaseURL, Webhook: m.Webhook,
			Config: append(append([]apps.ConfigField{}, m.Config...), apps.ConfigField{
				Name: apps.BaseURLField, Required: m.BaseURL == "",
				Doc: "Overrides the app's base URL (a self-hosted service, a test server); an expression such as 'https://slack.example.com/api'.",
			})}
		for _, n := range m.ActionNames() {
			a := m.Actions[n]
			inputs := a.Inputs
			if inputs == nil {
				inputs = []apps.Input{}
			}
			ai.Actions = append(ai.Actions, appAction{Name: n, Title: a.Title, Method: a.Method, Path: a.Path, Inputs: inputs})
		}
		out = append(out, ai)
	}
	return c.JSON(http.StatusOK, map[string]any{"apps": out})
}

func (s *Server) createInstallation(c echo.Context) error {
	svc, project, err := s.installationScope(c, Editor)
	if err != nil {
		return err
	}
	var req apps.Request
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.refusePasted(c, project, req.Config, nil); err != nil {
		return err
	}
	inst, warnings, err := svc.Create(c.Request().Context(), project, req, principal(c).Name)
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusCreated, project, installationResponse{Installation: inst, Warnings: warnings})
}

func (s *Server) listInstallations(c echo.Context) error {
	svc, project, err := s.installationScope(c, Viewer)
	if err != nil {
		return err
	}
	list, err := svc.List(c.Request().Context(), project)
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusOK, project, map[string]any{"installations": list})
}

func (s *Server) getInstallation(c echo.Context) error {
	svc, project, err := s.installationScope(c, Viewer)
	if err != nil {
		return err
	}
	inst, err := svc.Get(c.Request().Context(), project, c.Param("name"))
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusOK, project, installationResponse{Installation: inst})
}

func (s *Server) updateInstallation(c echo.Context) error {
	svc, project, err := s.installationScope(c, Editor)
	if err != nil {
		return err
	}
	var req apps.Request
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.refusePasted(c, project, req.Config, nil); err != nil {
		return err
	}
	inst, warnings, err := svc.Update(c.Request().Context(), project, c.Param("name"), req, principal(c).Name)
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusOK, project, installationResponse{Installation: inst, Warnings: warnings})
}

func (s *Server) deleteInstallation(c echo.Context) error {
	svc, project, err := s.installationScope(c, Editor)
	if err != nil {
		return err
	}
	if err := svc.Delete(c.Request().Context(), project, c.Param("name")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// installationScope checks the caller's role in the route's project and
// returns the installations service and the project.
func (s *Server) installationScope(c echo.Context, need Role) (*apps.Service, string, error) {
	project := c.Param("project")
	if err := s.authorize(c, project, need); err != nil {
		return nil, "", err
	}
	svc, err := s.appsService()
	return svc, project, err
}
