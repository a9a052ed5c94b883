package server

import (
	"net/http"
	"time"

	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/labstack/echo/v4"
)

type tokenRequest struct {
	Name string `json:"name"`
	// ExpiresIn is a Go duration such as "720h"; empty means no expiry.
	ExpiresIn string `json:"expires_in,omitempty"`
}

type tokenResponse struct {
	*auth.Token
	// Token is the secret token, returned only by the create call.
	Value string `json:"token"`
}

func (s *Server) createOwnToken(c echo.Context) error {
	return s.createToken(c, principal(c).UserID)
}

func (s *Server) createUserToken(c echo.Context) error {
	id := c.Param("id")
	if p := principal(c); !p.Admin && p.UserID != id {
		return apperr.New(apperr.Forbidden, "forbidden", "only an organization admin may create tokens for another user")
	}
	if _, err := s.deps.Auth.GetUser(c.Request().Context(), id); err != nil {
		return err
	}
	return s.createToken(c, id)
}

func (s *Server) createToken(c echo.Context, userID string) error {
	var req tokenRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	var ttl time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return apperr.Invalidf("invalid_expiry", "expires_in %s is not a positive duration such as \"720h\"", apperr.Echo(req.ExpiresIn))
		}
		ttl = d
	}
	if err := s.refuseValueAsName(c, "token", req.Name); err != nil {
		return err
	}
	raw, t, err := s.deps.Auth.CreateToken(c.Request().Context(), userID, req.Name, ttl)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, tokenResponse{Token: t, Value: raw})
}

func (s *Server) listOwnTokens(c echo.Context) error {
	ts, err := s.deps.Auth.ListTokens(c.Request().Context(), principal(c).UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"tokens": ts})
}

func (s *Server) revokeToken(c echo.Context) error {
	if err := s.deps.Auth.RevokeToken(c.Request().Context(), principal(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type userRequest struct {
	Name  string `json:"name"`
	Admin bool   `json:"admin"`
}

func (s *Server) createUser(c echo.Context) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	var req userRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.refuseValueAsName(c, "user", req.Name); err != nil {
		return err
	}
	u, err := s.deps.Auth.CreateUser(c.Request().Context(), req.Name, req.Admin)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, u)
}

// listUsers is GET /api/v1/users: every user (organization admins only).
func (s *Server) listUsers(c echo.Context) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	us, err := s.deps.Auth.ListUsers(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"users": us})
}

func (s *Server) whoami(c echo.Context) error {
	p := principal(c)
	return c.JSON(http.StatusOK, map[string]any{"user_id": p.UserID, "name": p.Name, "admin": p.Admin})
}
