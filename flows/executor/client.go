package executor

import (
	"errors"
	"net/http"
)

// client returns the run's HTTP client: the egress client of the
// composition root, calling effect before every request.
func (w *Worker) client(x *execution) *http.Client {
	var c *http.Client
	if w.cfg.NewHTTPClient == nil {
		c = &http.Client{Transport: noNetwork{}}
	} else {
		c = w.cfg.NewHTTPClient(x.guard.pins, x.red.Matches, func(secret, host string) {
			x.emit(PendingEvent{Type: "egress_refused", Data: map[string]any{"secret": secret, "host": host}})
			if w.cfg.OnPinRefused != nil {
				// The host may hold the value (a DNS label): masked.
				w.cfg.OnPinRefused(x.run, secret, x.red.String(host))
			}
		})
	}
	cc := *c
	next := cc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cc.Transport = effectTransport{next: next, x: x}
	return &cc
}

// effectTransport calls the running block's effect hook before each
// request leaves.
type effectTransport struct {
	next http.RoundTripper
	x    *execution
}

func (t effectTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a, _ := req.Context().Value(attemptKey{}).(*attemptState)
	if err := t.x.effectOf(req.Context(), a); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return t.next.RoundTrip(req)
}

// attemptKey is the context key of the attempt a block's requests belong
// to (blocks, and the iterations of a block with each, run at once).
type attemptKey struct{}

type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("this server gives blocks no network access")
}
