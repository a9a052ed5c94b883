package server

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"

	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store"
	"github.com/labstack/echo/v4"
)

// secretRoutes registers the secrets API. No route ever returns a value:
// responses carry metadata only.
func (s *Server) secretRoutes() {
	v1 := s.v1
	v1.POST("/secrets", s.createSecret)
	v1.GET("/secrets", s.listSecrets)
	v1.GET("/secrets/:id", s.getSecret)
	v1.PUT("/secrets/:id", s.updateSecret)
	v1.DELETE("/secrets/:id", s.deleteSecret)
	v1.GET("/secrets/:id/versions", s.listSecretVersions)
	v1.GET("/keys", s.keyStatus)
	v1.POST("/keys/rotate", s.rotateKeys)
	v1.GET("/audit", s.listAudit)
}

type secretCreateRequest struct {
	Name         string   `json:"name"`
	Value        *string  `json:"value"`
	FileBase64   *string  `json:"file_base64"`
	Project      string   `json:"project"`
	Environment  string   `json:"environment"`
	Description  string   `json:"description"`
	AllowedHosts []string `json:"allowed_hosts"`
	ReadableFrom []string `json:"readable_from"`
}

type secretUpdateRequest struct {
	Value        *string   `json:"value"`
	FileBase64   *string   `json:"file_base64"`
	Description  *string   `json:"description"`
	AllowedHosts *[]string `json:"allowed_hosts"`
	ReadableFrom *[]string `json:"readable_from"`
}

// secretResponse is a secret's metadata plus the warnings of a write.
type secretResponse struct {
	*secrets.Secret
	Warnings []string `json:"warnings,omitempty"`
}

func (s *Server) secretStore() (*secrets.Store, error) {
	if s.deps.Secrets == nil {
		return nil, apperr.New(apperr.Unavailable, "secrets_unavailable", "the secrets store is not configured on this server")
	}
	return s.deps.Secrets, nil
}

// authorizeScope checks the caller's role for a secret scope: a project's
// role for project scopes, an organization admin for organization and
// environment scopes.
func (s *Server) authorizeScope(c echo.Context, sc secrets.Scope, need Role) error {
	return s.authorize(c, sc.Project, need)
}

// payload turns "value" or "file_base64" into a kind and a value.
func payload(value, fileB64 *string, required bool) (secrets.Kind, secrets.Value, error) {
	switch {
	case value != nil && fileB64 != nil:
		return "", secrets.Value{}, apperr.Invalidf("invalid_value", `send either "value" (a string secret) or "file_base64" (a file secret), not both`)
	case value != nil:
		return secrets.KindString, secrets.NewValue(*value), nil
	case fileB64 != nil:
		b, err := base64.StdEncoding.DecodeString(*fileB64)
		if err != nil {
			return "", secrets.Value{}, apperr.Invalidf("invalid_file", `"file_base64" is not valid base64 (standard alphabet with padding, as base64 -w0 prints)`)
		}
		return secrets.KindFile, secrets.NewValue(string(b)), nil
	case required:
		return "", secrets.Value{}, apperr.Invalidf("missing_value", `send "value" (a string secret) or "file_base64" (a file secret)`)
	}
	return "", secrets.Value{}, nil
}

func (s *Server) createSecret(c echo.Context) error {
	st, err := s.secretStore()
	if err != nil {
		return err
	}
	var req secretCreateRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	sc := secrets.Scope{Project: req.Project, Environment: req.Environment}
	if err := s.authorizeScope(c, sc, Editor); err != nil {
		return err
	}
	kind, val, err := payload(req.Value, req.FileBase64, true)
	if err != nil {
		return err
	}
	// A name is shown everywhere the secret is (mask labels, the audit
	// trail): it may not be a value either.
	if err := s.refusePasted(c, sc.Project, map[string]string{"name": req.Name, "description": req.Description}, map[string]string{req.Name: val.Reveal()}); err != nil {
		return err
	}
	// Another project's value too: a secret's name is shown to its
	// project's viewers, unmasked (attacker round six).
	if err := s.refuseValueAsName(c, "secret", req.Name); err != nil {
		return err
	}
	if err := s.refuseNameAsValue(c, val); err != nil {
		return err
	}
	m, warnings, err := st.Create(c.Request().Context(), principal(c).Name, secrets.CreateInput{
		Name: req.Name, Scope: sc, Kind: kind, Value: val, Description: req.Description, AllowedHosts: req.AllowedHosts,
		ReadableFrom: req.ReadableFrom,
	})
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusCreated, sc.Project, secretResponse{Secret: m, Warnings: warnings})
}

func (s *Server) listSecrets(c echo.Context) error {
	st, err := s.secretStore()
	if err != nil {
		return err
	}
	q := c.QueryParams()
	sc := secrets.Scope{Project: q.Get("project"), Environment: q.Get("environment")}
	resolved := false
	if r := q.Get("resolved"); r != "" {
		resolved, err = strconv.ParseBool(r)
		if err != nil {
			return apperr.Invalidf("invalid_query", "resolved must be true or false")
		}
	}
	if err := s.authorizeScope(c, sc, Viewer); err != nil {
		return err
	}
	var list []secrets.Secret
	if resolved {
		list, err = st.Resolved(c.Request().Context(), sc.Project, sc.Environment)
	} else {
		list, err = st.List(c.Request().Context(), sc)
	}
	if err != nil {
		return err
	}
	if list == nil {
		list = []secrets.Secret{}
	}
	return s.maskedJSON(c, http.StatusOK, sc.Project, map[string]any{"secrets": list, "scope": sc, "scope_label": sc.Label(), "resolved": resolved})
}

// loadSecret returns secret id after checking the caller's role in its
// scope. A secret of a project the caller cannot see is "not found".
func (s *Server) loadSecret(c echo.Context, need Role) (*secrets.Store, *secrets.Secret, error) {
	st, err := s.secretStore()
	if err != nil {
		return nil, nil, err
	}
	id := c.Param("id")
	m, err := st.Get(c.Request().Context(), id)
	if err != nil {
		return nil, nil, err
	}
	if err := s.authorizeScope(c, m.Scope, need); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, notFound("secret", id)
		}
		return nil, nil, err
	}
	return st, m, nil
}

func (s *Server) getSecret(c echo.Context) error {
	_, m, err := s.loadSecret(c, Viewer)
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusOK, m.Scope.Project, m)
}

func (s *Server) updateSecret(c echo.Context) error {
	var req secretUpdateRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	st, m, err := s.loadSecret(c, Editor)
	if err != nil {
		return err
	}
	// Without a value, only the description changes (no new version; the
	// store refuses allowed_hosts and readable_from without one).
	keep := req.Value == nil && req.FileBase64 == nil && (req.Description != nil || req.AllowedHosts != nil || req.ReadableFrom != nil)
	kind, val, err := payload(req.Value, req.FileBase64, !keep)
	if err != nil {
		return err
	}
	if req.Description != nil {
		own := map[string]string{}
		if !keep {
			own[m.Name] = val.Reveal()
		}
		if err := s.refusePasted(c, m.Scope.Project, map[string]string{"description": *req.Description}, own); err != nil {
			return err
		}
	}
	if !keep {
		if err := s.refuseNameAsValue(c, val); err != nil {
			return err
		}
	}
	in := secrets.UpdateInput{Kind: kind, Value: val, Description: req.Description, KeepValue: keep}
	if req.AllowedHosts != nil {
		in.AllowedHosts = *req.AllowedHosts
		if in.AllowedHosts == nil {
			in.AllowedHosts = []string{}
		}
	}
	if req.ReadableFrom != nil {
		in.ReadableFrom = *req.ReadableFrom
		if in.ReadableFrom == nil {
			in.ReadableFrom = []string{}
		}
	}
	out, warnings, err := st.Update(c.Request().Context(), principal(c).Name, m.ID, in)
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusOK, m.Scope.Project, secretResponse{Secret: out, Warnings: warnings})
}

func (s *Server) deleteSecret(c echo.Context) error {
	st, m, err := s.loadSecret(c, Editor)
	if err != nil {
		return err
	}
	if err := st.Delete(c.Request().Context(), principal(c).Name, m.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listSecretVersions(c echo.Context) error {
	st, m, err := s.loadSecret(c, Viewer)
	if err != nil {
		return err
	}
	vs, err := st.Versions(c.Request().Context(), m.ID)
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusOK, m.Scope.Project, map[string]any{"secret": m, "versions": vs})
}

type rotateRequest struct {
	BatchSize  int `json:"batch_size"`
	MaxBatches int `json:"max_batches"`
}

func (s *Server) rotateKeys(c echo.Context) error {
	st, err := s.secretStore()
	if err != nil {
		return err
	}
	if err := s.authorize(c, "", Admin); err != nil {
		return err
	}
	var req rotateRequest
	if c.Request().ContentLength != 0 {
		if err := bind(c, &req); err != nil {
			return err
		}
	}
	if req.BatchSize < 0 || req.BatchSize > 10000 || req.MaxBatches < 0 {
		return apperr.Invalidf("invalid_batch", "batch_size must be between 1 and 10000 (default %d); max_batches must not be negative", secrets.DefaultRotateBatch)
	}
	res, err := st.Rotate(c.Request().Context(), principal(c).Name, secrets.RotateOptions{Batch: req.BatchSize, MaxBatches: req.MaxBatches})
	if err != nil {
		if errors.Is(err, secrets.ErrDecrypt) {
			return &apperr.Error{Kind: apperr.Unavailable, Code: "key_error", Message: err.Error(), Err: err}
		}
		return err
	}
	out := rotateResponse{RotateResult: res}
	if s.deps.Flows != nil && res.Remaining == 0 {
		// Once the secrets are done: the run data sealed under the old
		// keys (waiting runs' checkpoints, inputs kept for reruns).
		rd, err := s.deps.Flows.RewrapSealed(c.Request().Context(), st.Keyring(), req.MaxBatches)
		if err != nil {
			return err
		}
		if err := st.RecordRunDataRotation(c.Request().Context(), principal(c).Name, rd.Checkpoints, rd.Inputs, rd.Remaining); err != nil {
			return err
		}
		out.RunData = &rd
	}
	return c.JSON(http.StatusOK, out)
}

// rotateResponse is what POST /keys/rotate did: to the secret versions,
// and to the run data sealed under the keyring (absent while secret
// versions remain: it goes once they are done).
type rotateResponse struct {
	secrets.RotateResult
	RunData *flows.SealedRewrap `json:"run_data,omitempty"`
}

func (s *Server) keyStatus(c echo.Context) error {
	st, err := s.secretStore()
	if err != nil {
		return err
	}
	if err := s.authorize(c, "", Admin); err != nil {
		return err
	}
	usage, err := st.KeyUsage(c.Request().Context())
	if err != nil {
		return err
	}
	kr := st.Keyring()
	body := map[string]any{
		"primary": kr.PrimaryID(), "keys": kr.IDs(), "versions_by_key": usage,
		"warnings": nonNil(st.CheckKeys(c.Request().Context())),
	}
	if s.deps.Flows != nil {
		// Checkpoints of open runs and inputs kept for reruns that a
		// rotation has yet to move to the primary key.
		n, err := s.deps.Flows.SealedElsewhere(c.Request().Context(), kr)
		if err != nil {
			return err
		}
		body["run_data_not_under_primary"] = n
	}
	return c.JSON(http.StatusOK, body)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
