package server

import (
	"net/http"
	"strconv"

	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/secrets"
	"github.com/labstack/echo/v4"
)

// listAudit serves GET /api/v1/audit?secret=ID|NAME&project=P&limit=N:
// the secrets audit trail, newest first. Organization admins see
// everything; a project's editors and admins see their project's records
// (project=P is then required). Records never hold values.
func (s *Server) listAudit(c echo.Context) error {
	st, err := s.secretStore()
	if err != nil {
		return err
	}
	q := c.QueryParams()
	aq := secrets.AuditQuery{Secret: q.Get("secret"), Project: q.Get("project")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return apperr.Invalidf("invalid_query", "limit must be a number from 1 to 1000")
		}
		aq.Limit = n
	}
	if p := principal(c); !p.Admin && aq.Project == "" {
		return apperr.New(apperr.Forbidden, "forbidden", "the whole audit trail needs an organization admin; project editors add project=<name>")
	}
	if err := s.authorize(c, aq.Project, Editor); err != nil {
		return err
	}
	recs, err := st.Audit(c.Request().Context(), aq)
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []secrets.AuditRecord{}
	}
	// Records quote what people typed (names, details): masked as every
	// answer is, with the project's values, or every value for the whole
	// trail.
	return s.maskedJSON(c, http.StatusOK, aq.Project, map[string]any{"records": recs})
}
