package redact

import (
	"maps"
	"slices"
)

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
	// The snapshot is shared, but not the room after its masks: a clone
	// that adds a name appends to a copy, so clones of one Redactor (a
	// run each) never write into the same backing array.
	s := *r.snap.Load()
	s.masks = slices.Clip(s.masks)
	c.snap.Store(&s)
	return c
}
