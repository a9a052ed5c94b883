package app

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/google/uuid"
	"github.com/hushflow/hushflow/flows"
)

// traceTransport adds a W3C traceparent header to the requests of a run's
// blocks (HUSHFLOW_TRACEPARENT=on): the trace id is the run id's 16 bytes,
// so a receiving service's traces group by run; the span id is random per
// request. A traceparent the block set itself is kept. The header carries
// no secret: only the run id.
type traceTransport struct{ next http.RoundTripper }

func (t traceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Traceparent") == "" {
		if tp := traceparent(flows.RunID(req.Context())); tp != "" {
			req = req.Clone(req.Context()) // a RoundTripper must not modify the request
			req.Header.Set("Traceparent", tp)
		}
	}
	return t.next.RoundTrip(req)
}

// traceparent returns the header for a request of run runID ("" when runID
// is not a UUID).
func traceparent(runID string) string {
	id, err := uuid.Parse(runID)
	if err != nil {
		return ""
	}
	var span [8]byte
	_, _ = rand.Read(span[:])
	return "00-" + hex.EncodeToString(id[:]) + "-" + hex.EncodeToString(span[:]) + "-01"
}
