package redact

import (
	"context"
	"fmt"
	"log/slog"
)

// NewHandler returns a slog.Handler that masks the message, the attribute
// keys and values (after resolving LogValuers, inside groups too) of every
// record with r, then passes a new record to next.
//
// Attributes and groups added with WithAttrs and WithGroup are not passed to
// next, which could pre-format them before a later secret is known: they
// are recorded and masked again in every Handle. Errors become their masked
// Error() strings; values that are neither strings nor scalars are walked
// like [Redactor.Value] (structs through JSON), and what cannot be walked is
// formatted and masked. If masking fails (a LogValue or String method
// panics), the record is dropped and Handle returns an error.
func NewHandler(next slog.Handler, r *Redactor) slog.Handler {
	return &handler{next: next, r: r}
}

type handler struct {
	next slog.Handler
	r    *Redactor
	ops  []op // WithAttrs and WithGroup calls, in order
}

type op struct {
	group string      // WithGroup(group), when attrs is nil
	attrs []slog.Attr // WithAttrs(attrs)
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *handler) with(o op) *handler {
	ops := make([]op, len(h.ops), len(h.ops)+1)
	copy(ops, h.ops)
	return &handler{next: h.next, r: h.r, ops: append(ops, o)}
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	return h.with(op{attrs: append([]slog.Attr(nil), as...)})
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(op{group: name})
}

func (h *handler) Handle(ctx context.Context, rec slog.Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("redact: record dropped: masking failed: %v", h.r.String(fmt.Sprint(p)))
		}
	}()
	attrs := make([]slog.Attr, 0, rec.NumAttrs())
	rec.Attrs(func(a slog.Attr) bool {
		if a, ok := h.attr(a, 0); ok {
			attrs = append(attrs, a)
		}
		return true
	})
	for i := len(h.ops) - 1; i >= 0; i-- {
		o := h.ops[i]
		if o.attrs == nil {
			if len(attrs) > 0 {
				attrs = []slog.Attr{{Key: h.r.String(o.group), Value: slog.GroupValue(attrs...)}}
			}
			continue
		}
		pre := make([]slog.Attr, 0, len(o.attrs)+len(attrs))
		for _, a := range o.attrs {
			if a, ok := h.attr(a, 0); ok {
				pre = append(pre, a)
			}
		}
		attrs = append(pre, attrs...)
	}
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	out.AddAttrs(attrs...)
	return h.next.Handle(ctx, out)
}

// attr masks a; ok is false for attributes a handler must ignore (empty
// key and value, empty groups).
func (h *handler) attr(a slog.Attr, depth int) (slog.Attr, bool) {
	v := a.Value.Resolve()
	if a.Key == "" && v.Any() == nil {
		return a, false
	}
	key := h.r.String(a.Key)
	switch v.Kind() {
	case slog.KindString:
		return slog.String(key, h.r.String(v.String())), true
	case slog.KindGroup:
		if depth > maxDepth {
			return slog.String(key, "[REDACTED: too deep]"), true
		}
		var as []slog.Attr
		for _, g := range v.Group() {
			if g, ok := h.attr(g, depth+1); ok {
				as = append(as, g)
			}
		}
		if len(as) == 0 {
			return a, false
		}
		return slog.Attr{Key: key, Value: slog.GroupValue(as...)}, true
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(key, h.r.String(x.Error())), true
		case fmt.Stringer:
			return slog.String(key, h.r.String(x.String())), true
		}
		return slog.Any(key, h.r.Value(v.Any())), true
	default: // numbers, bool, time, duration
		return slog.Attr{Key: key, Value: v}, true
	}
}
