package server

import (
	"sync/atomic"

	"github.com/labstack/echo/v4"
)

// ctxLeave is the echo context key of a request's leave (occupy).
const ctxLeave = "hushflow.leave"

// occupy counts the request in flight for the Governor (Deps.Cores), from
// its start until it ends or starts to wait (waiting).
func (s *Server) occupy(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		g := s.deps.Cores
		g.Enter()
		var left atomic.Bool
		leave := func() {
			if left.CompareAndSwap(false, true) {
				g.Leave()
			}
		}
		c.Set(ctxLeave, leave)
		defer leave()
		return next(c)
	}
}

// waiting says that the request now waits (an event stream, a run's
// ?wait=): it no longer counts as in flight, so that a client waiting
// for a run does not keep the server on all its processors.
func (s *Server) waiting(c echo.Context) {
	if leave, ok := c.Get(ctxLeave).(func()); ok {
		leave()
	}
}
