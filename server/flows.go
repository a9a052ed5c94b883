package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/labstack/echo/v4"
)

func (s *Server) flowRoutes() {
	if s.deps.Flows == nil {
		return
	}
	g := s.v1
	g.GET("/blocks", s.listBlockTypes)
	g.POST("/projects/:project/flows", s.createFlow)
	g.GET("/projects/:project/flows", s.listFlows)
	g.GET("/projects/:project/flows/:flow", s.getFlow)
	g.GET("/projects/:project/flows/:flow/versions", s.flowVersions)
	g.PUT("/projects/:project/flows/:flow", s.updateFlow)
	g.DELETE("/projects/:project/flows/:flow", s.deleteFlow)
	g.POST("/projects/:project/flows/:flow/pause", s.pauseFlow(true))
	g.POST("/projects/:project/flows/:flow/resume", s.pauseFlow(false))
	g.POST("/projects/:project/flows/:flow/runs", s.startRun)
	g.GET("/projects/:project/runs", s.listRuns)
	g.GET("/runs/:id", s.getRun)
	g.POST("/runs/:id/cancel", s.cancelRun)
	g.GET("/runs/:id/events", s.runEvents)
	g.POST("/projects/:project/evaluate", s.evaluate)
	g.POST("/projects/:project/events", s.publishEvent)
	s.echo.POST("/hooks/:project/:flow", s.webhook)
	s.historyRoutes()
}

func (s *Server) listBlockTypes(c echo.Context) error {
	type info struct {
		ID   string `json:"id"`
		Spec any    `json:"spec"`
	}
	var out []info
	for _, i := range s.deps.Flows.Registry().List() {
		out = append(out, info{ID: string(i.ID), Spec: i.Spec})
	}
	return c.JSON(http.StatusOK, map[string]any{"blocks": out})
}

// readDefinition decodes a flow definition from JSON or, with a YAML
// content type, YAML; for YAML it returns the document too, so that the
// problems found when the definition is saved name its lines
// (flows.Source.Locate).
func readDefinition(c echo.Context) (flows.Definition, *flows.Source, error) {
	data, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return flows.Definition{}, nil, echo.ErrStatusRequestEntityTooLarge
	}
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct == "application/yaml" || ct == "application/x-yaml" || ct == "text/yaml" {
		return flows.ParseYAMLDefinition(data)
	}
	d, err := flows.ParseDefinition(data)
	return d, nil, err
}

type flowResponse struct {
	*flows.Flow
	Definition flows.Definition `json:"definition"`
	Warnings   []string         `json:"warnings,omitempty"`
	// Unchanged says that a PUT's definition was identical to the
	// current version's: no version was made.
	Unchanged bool `json:"unchanged,omitempty"`
}

func (s *Server) createFlow(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Editor); err != nil {
		return err
	}
	def, src, err := readDefinition(c)
	if err != nil {
		return err
	}
	if err := s.refusePasted(c, project, def, nil); err != nil {
		return err
	}
	f, warn, _, err := s.deps.Flows.Save(c.Request().Context(), project, def, principal(c).Name, true)
	if err != nil {
		src.Locate(err)
		return err
	}
	return s.maskedJSON(c, http.StatusCreated, project, flowResponse{Flow: f, Definition: def, Warnings: warn})
}

func (s *Server) updateFlow(c echo.Context) error {
	project, name := c.Param("project"), c.Param("flow")
	if err := s.authorize(c, project, Editor); err != nil {
		return err
	}
	def, src, err := readDefinition(c)
	if err != nil {
		return err
	}
	if def.Name == "" {
		def.Name = name
	}
	if def.Name != name {
		return apperr.Invalidf("name_mismatch", "the definition's name %s differs from the flow %s in the URL", apperr.Echo(def.Name), apperr.Echo(name))
	}
	if err := s.refusePasted(c, project, def, nil); err != nil {
		return err
	}
	f, warn, unchanged, err := s.deps.Flows.Save(c.Request().Context(), project, def, principal(c).Name, false)
	if err != nil {
		src.Locate(err)
		return err
	}
	return s.maskedJSON(c, http.StatusOK, project, flowResponse{Flow: f, Definition: def, Warnings: warn, Unchanged: unchanged})
}

func (s *Server) listFlows(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Viewer); err != nil {
		return err
	}
	ctx := c.Request().Context()
	fs, err := s.deps.Flows.List(ctx, project)
	if err != nil {
		return err
	}
	last, err := s.deps.Flows.LastRuns(ctx, fs)
	if err != nil {
		return err
	}
	items := make([]flowListItem, len(fs))
	for i := range fs {
		items[i].Flow = &fs[i]
		if r, ok := last[fs[i].ID]; ok {
			items[i].LastRun = &lastRun{ID: r.ID, Status: r.Status, QueuedAt: r.QueuedAt, FinishedAt: r.FinishedAt}
		}
	}
	return s.maskedJSON(c, http.StatusOK, project, map[string]any{"flows": items})
}

// flowListItem is a flow in the list, with its latest run.
type flowListItem struct {
	*flows.Flow
	LastRun *lastRun `json:"last_run,omitempty"`
}

type lastRun struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	QueuedAt   time.Time  `json:"queued_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

func (s *Server) getFlow(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Viewer); err != nil {
		return err
	}
	f, def, err := s.deps.Flows.Get(c.Request().Context(), project, c.Param("flow"))
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusOK, project, flowResponse{Flow: f, Definition: def})
}

func (s *Server) flowVersions(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Viewer); err != nil {
		return err
	}
	vs, err := s.deps.Flows.Versions(c.Request().Context(), project, c.Param("flow"))
	if err != nil {
		return err
	}
	return s.maskedJSON(c, http.StatusOK, project, map[string]any{"versions": vs})
}

func (s *Server) deleteFlow(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Editor); err != nil {
		return err
	}
	if err := s.deps.Flows.Delete(c.Request().Context(), project, c.Param("flow")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// pauseFlow is POST /projects/{p}/flows/{name}/pause (paused) or
// .../resume (not): a paused flow starts no run until it is resumed
// (flows.Service.Pause). The answer is the flow, with paused_at and
// paused_by while it is paused.
func (s *Server) pauseFlow(paused bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		project, name := c.Param("project"), c.Param("flow")
		if err := s.authorize(c, project, Editor); err != nil {
			return err
		}
		ctx := c.Request().Context()
		var err error
		if paused {
			err = s.deps.Flows.Pause(ctx, project, name, principal(c).Name)
		} else {
			err = s.deps.Flows.Resume(ctx, project, name, principal(c).Name)
		}
		if err != nil {
			return err
		}
		f, def, err := s.deps.Flows.Get(ctx, project, name)
		if err != nil {
			return err
		}
		return s.maskedJSON(c, http.StatusOK, project, flowResponse{Flow: f, Definition: def})
	}
}

type runRequest struct {
	Environment string          `json:"environment"`
	Input       json.RawMessage `json:"input"`
}

// jsonInput decodes a run input or event payload keeping the order of its
// objects' keys, which scripts see (JSON.stringify(input)).
func jsonInput(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	v, err := engine.DecodeJSON(raw)
	if err != nil {
		return nil, apperr.Invalidf("invalid_input", "input is not a JSON value: %v", err)
	}
	return v, nil
}

// startRun queues a run (202); ?wait=30s waits for its end (at most 5m).
func (s *Server) startRun(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Editor); err != nil {
		return err
	}
	var req runRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	input, err := jsonInput(req.Input)
	if err != nil {
		return err
	}
	var wait time.Duration // checked before the run is queued
	if w := c.QueryParam("wait"); w != "" {
		wait, err = time.ParseDuration(w)
		if err != nil || wait <= 0 || wait > 5*time.Minute {
			return apperr.Invalidf("invalid_wait", "wait must be a duration up to 5m, such as 30s; no run was started")
		}
	}
	ctx := c.Request().Context()
	r, err := s.deps.Flows.Enqueue(ctx, flows.RunRequest{Project: project, Flow: c.Param("flow"),
		Environment: req.Environment, Input: input, Trigger: "manual", Actor: principal(c).Name})
	if err != nil {
		return err
	}
	if wait > 0 {
		s.waiting(c)
		wctx, cancel := contextWithTimeout(ctx, wait)
		defer cancel()
		// A replica that shuts down answers at once: 202 with the run as
		// it is, as when the wait is over.
		wctx, stop := s.untilShutdown(wctx)
		defer stop()
		if r, err = s.deps.Flows.Wait(wctx, r.ID); err != nil {
			return err
		}
		if r.Finished() {
			return c.JSON(http.StatusOK, r.View())
		}
	}
	return c.JSON(http.StatusAccepted, r.View())
}

// runOf loads a run and checks the caller may see its project; a run of
// another project is a 404 like a missing one.
func (s *Server) runOf(c echo.Context, need Role) (*flows.Run, error) {
	r, err := s.deps.Flows.GetRun(c.Request().Context(), c.Param("id"))
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, r.Project, need); err != nil {
		if errors.Is(err, errNotFoundSentinel) {
			return nil, notFound("run", c.Param("id"))
		}
		return nil, err
	}
	return r, nil
}

func (s *Server) getRun(c echo.Context) error {
	r, err := s.runOf(c, Viewer)
	if err != nil {
		return err
	}
	v := r.View()
	children, err := s.deps.Flows.Children(c.Request().Context(), r.ID)
	if err != nil {
		return err
	}
	for _, ch := range children {
		v.Children = append(v.Children, flows.ChildView{ID: ch.ID, Flow: ch.Flow, Status: ch.Status, ParentBlock: ch.ParentBlock})
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) cancelRun(c echo.Context) error {
	r, err := s.runOf(c, Editor)
	if err != nil {
		return err
	}
	r, err = s.deps.Flows.Cancel(c.Request().Context(), r.ID, principal(c).Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r.View())
}

func (s *Server) listRuns(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Viewer); err != nil {
		return err
	}
	limit := 0
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return apperr.Invalidf("invalid_limit", "limit must be a whole number from 1 to 200 (default 50; more than 200 gives 200)")
		}
		limit = n
	}
	if cur := c.QueryParam("cursor"); cur != "" {
		if _, err := uuid.Parse(cur); err != nil {
			return apperr.Invalidf("invalid_cursor", "cursor must be the next_cursor of an earlier page (a run id), not %s", apperr.Echo(cur))
		}
	}
	rs, next, err := s.deps.Flows.ListRuns(c.Request().Context(), flows.RunFilter{Project: project,
		Flow: c.QueryParam("flow"), Status: c.QueryParam("status"), Environment: c.QueryParam("environment"),
		Parent: c.QueryParam("parent"), Cursor: c.QueryParam("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	views := make([]flows.RunView, len(rs))
	for i := range rs {
		views[i] = rs[i].View()
	}
	return c.JSON(http.StatusOK, map[string]any{"runs": views, "next_cursor": next})
}

// runEvents lists a run's events; ?follow=1 streams them as Server-Sent
// Events until the run ends.
func (s *Server) runEvents(c echo.Context) error {
	r, err := s.runOf(c, Viewer)
	if err != nil {
		return err
	}
	after := 0
	if v := c.QueryParam("after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return apperr.Invalidf("invalid_after", "after must be a whole number: the seq of the last event you have (0 for all), not %s", apperr.Echo(v))
		}
		after = n
	}
	ctx := c.Request().Context()
	if f := c.QueryParam("follow"); f == "" || f == "0" || f == "false" {
		es, more, err := s.deps.Flows.EventsPage(ctx, r, after)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"events": es, "more": more})
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()
	s.waiting(c)
	// A replica that shuts down ends its streams without "end": clients
	// follow again, from the last seq they saw, on another replica.
	ctx, cancel := s.untilShutdown(ctx)
	defer cancel()
	ctx, stop := s.whileAuthenticated(ctx, c)
	defer stop()
	err = s.deps.Flows.Follow(ctx, r.ID, after, func(e flows.EventView) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, b); err != nil {
			return err
		}
		w.Flush()
		return nil
	})
	switch {
	case err == nil:
		fmt.Fprint(w, "event: end\ndata: {}\n\n")
	case errors.Is(context.Cause(ctx), errCredentialGone):
		fmt.Fprint(w, "event: error\ndata: {\"error\":{\"code\":\"unauthenticated\",\"message\":\"the token or session of this stream was revoked or expired\"}}\n\n")
	}
	w.Flush()
	return nil
}

type evaluateRequest struct {
	Expression  string          `json:"expression"`
	Environment string          `json:"environment"`
	Input       json.RawMessage `json:"input"`
}

// evaluate is the editor's live preview of one expression (redacted).
func (s *Server) evaluate(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Editor); err != nil {
		return err
	}
	var req evaluateRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Environment == "" {
		req.Environment = "development"
	}
	input, err := jsonInput(req.Input)
	if err != nil {
		return err
	}
	v, err := s.deps.Flows.Evaluate(c.Request().Context(), project, req.Environment, req.Expression, input, principal(c).Name)
	if err != nil {
		var ee *engine.Error
		if errors.As(err, &ee) {
			return c.JSON(http.StatusBadRequest, map[string]any{"error": map[string]any{
				"code": "evaluation_failed", "message": s.maskMessage(c, previewMessage(ee)), "line": ee.Line, "column": ee.Column,
				"request_id": c.Response().Header().Get(echo.HeaderXRequestID)}})
		}
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"value": v})
}

type eventRequest struct {
	Topic       string          `json:"topic"`
	Environment string          `json:"environment"`
	Payload     json.RawMessage `json:"payload"`
}

func (s *Server) publishEvent(c echo.Context) error {
	project := c.Param("project")
	if err := s.authorize(c, project, Editor); err != nil {
		return err
	}
	var req eventRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	payload, err := jsonInput(req.Payload)
	if err != nil {
		return err
	}
	runs, err := s.deps.Flows.Publish(c.Request().Context(), project, req.Topic, req.Environment, payload, principal(c).Name)
	if err != nil {
		return err
	}
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	return c.JSON(http.StatusAccepted, map[string]any{"runs": ids})
}

// webhook is POST /hooks/{project}/{flow}: no token, but a signature when
// the trigger names a signing secret.
func (s *Server) webhook(c echo.Context) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return echo.ErrStatusRequestEntityTooLarge
	}
	r, err := s.deps.Flows.Webhook(c.Request().Context(), c.Param("project"), c.Param("flow"), c.Request().Header, body)
	if err != nil {
		return err
	}
	if r.Run == nil {
		// Slack's URL verification: the challenge back, nothing queued
		// (through the project's masker, as every string the API answers).
		return c.JSON(http.StatusOK, map[string]string{"challenge": s.maskMessage(c, r.Challenge)})
	}
	return c.JSON(http.StatusAccepted, map[string]string{"id": r.Run.ID, "status": r.Run.Status})
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// previewMessage is an evaluation error as the editor's preview shows it:
// the position and the message, without the internal names the engine
// gives the previewed expression (`js block "preview" field "expression"`).
func previewMessage(e *engine.Error) string {
	if e.Line > 0 {
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Message)
	}
	return e.Message
}
