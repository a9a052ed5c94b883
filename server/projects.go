package server

import (
	"net/http"

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
	p, err := s.deps.Projects.Create(c.Request().Context(), req.Name, principal(c).Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

func (s *Server) listProjects(c echo.Context) error {
	ps, err := s.deps.Projects.List(c.Request().Context())
	if err != nil {
		return err
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
	e, err := s.deps.Projects.CreateEnvironment(c.Request().Context(), req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, e)
}
