package redact

import "maps"

// Clone returns a Redactor with the values of r, which then grows on its
// own: values added to the clone do not reach r, and the reverse. It
// shares r's built matchers, so a clone costs a copy of the value list,
// not a rebuild — a server keeps one Redactor per set of secrets and
// clones it for every run, which then adds its run-time masks.
func (r *Redactor) Clone() *Redactor {
	if r == nil {
		return New()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &Redactor{
		vals:   append([]value(nil), r.vals...),
		seen:   maps.Clone(r.seen),
		names:  append([]string(nil), r.names...),
		nameIx: maps.Clone(r.nameIx),
		nMain:  r.nMain,
	}
	c.snap.Store(r.snap.Load())
	return c
}
