package jsvm

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"

	"github.com/dop251/goja"

	"github.com/hushflow/hushflow/engine/ordered"
)

// maxDepth bounds the nesting of a result.
const maxDepth = 256

func (st *state) export(v goja.Value) (any, error) {
	e := exporter{max: st.lim.MaxOutput, seen: map[*goja.Object]bool{}, ordered: st.lim.Ordered}
	return e.value(v, "")
}

// exporter converts a JavaScript value into a plain JSON value. Nothing of
// goja survives: objects are copied into map[string]any and []any.
type exporter struct {
	max   int
	size  int
	depth int
	seen  map[*goja.Object]bool
	// ordered makes objects *ordered.Object (Limits.Ordered).
	ordered bool
}

func outputError(path, format string, args ...any) *Error {
	where := "the result"
	if path != "" {
		where = "result" + path
		if len(where) > 120 {
			where = where[:60] + "…" + where[len(where)-60:]
		}
	}
	return &Error{Code: CodeOutput, Message: where + " " + fmt.Sprintf(format, args...)}
}

func (e *exporter) grow(path string, n int) error {
	e.size += n
	if e.size > e.max {
		return outputError(path, "is larger than the output limit of %d bytes", e.max)
	}
	return nil
}

func (e *exporter) value(v goja.Value, path string) (any, error) {
	if v == nil || goja.IsUndefined(v) {
		return nil, outputError(path, "is undefined, which is not a JSON value")
	}
	if goja.IsNull(v) {
		return nil, e.grow(path, 4)
	}
	switch x := v.(type) {
	case *goja.Object:
		return e.object(x, path)
	case *goja.Symbol:
		return nil, outputError(path, "is a Symbol, which is not a JSON value")
	}
	return e.prim(v.Export(), path)
}

func (e *exporter) prim(v any, path string) (any, error) {
	switch x := v.(type) {
	case bool:
		return x, e.grow(path, 5)
	case int64:
		return x, e.grow(path, 8)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, outputError(path, "is %v, which is not a JSON value", x)
		}
		return x, e.grow(path, 8)
	case string:
		return x, e.grow(path, len(x)+2)
	case *big.Int:
		return nil, outputError(path, "is a BigInt, which is not a JSON value; convert it with String() or Number()")
	default:
		return nil, outputError(path, "has type %T, which is not a JSON value", x)
	}
}

// exoticName names an object that is not plain data by its export type.
func exoticName(t reflect.Type) string {
	if t == nil {
		return "object"
	}
	switch t.String() {
	case "[][2]interface {}":
		return "Map"
	case "[]interface {}":
		return "Set"
	case "*goja.Promise":
		return "Promise (missing await?)"
	case "goja.Proxy":
		return "Proxy"
	case "goja.ArrayBuffer":
		return "ArrayBuffer"
	}
	if t.Kind() == reflect.Slice {
		return "typed array"
	}
	return "Go value"
}

func (e *exporter) object(o *goja.Object, path string) (any, error) {
	class := o.ClassName()
	switch class {
	case "Function":
		return nil, outputError(path, "is a function, which is not a JSON value")
	case "Date":
		if f, ok := goja.AssertFunction(o.Get("toISOString")); ok {
			s, err := f(o)
			if err != nil {
				return nil, outputError(path, "is an invalid Date")
			}
			return s.String(), e.grow(path, len(s.String())+2)
		}
	case "Array":
	case "Object":
		if _, ok := o.Export().(*inputObject); ok {
			break
		}
		if t := o.ExportType(); t == nil || t.Kind() != reflect.Map {
			return nil, outputError(path, "is a %s, which is not a JSON value", exoticName(t))
		}
	case "String", "Number", "Boolean":
		if f, ok := goja.AssertFunction(o.Get("valueOf")); ok {
			if v, err := f(o); err == nil {
				return e.value(v, path)
			}
		}
		return nil, outputError(path, "is a %s object that does not convert", class)
	default:
		return nil, outputError(path, "is a %s, which is not a JSON value", class)
	}
	if e.seen[o] {
		return nil, outputError(path, "contains a cycle")
	}
	if e.depth >= maxDepth {
		return nil, outputError(path, "is nested deeper than %d levels", maxDepth)
	}
	e.seen[o] = true
	e.depth++
	defer func() {
		delete(e.seen, o)
		e.depth--
	}()
	if class == "Array" {
		n := o.Get("length").ToInteger()
		if err := e.grow(path, int(min(n, int64(e.max)))+2); err != nil {
			return nil, err
		}
		out := make([]any, 0, n)
		for i := int64(0); i < n; i++ {
			p := path + "[" + strconv.FormatInt(i, 10) + "]"
			x, err := e.value(o.Get(strconv.FormatInt(i, 10)), p)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	}
	keys := o.Keys()
	out := make(map[string]any, len(keys))
	if err := e.grow(path, 2); err != nil {
		return nil, err
	}
	for _, k := range keys {
		p := path + "." + k
		x, err := e.value(o.Get(k), p)
		if err != nil {
			return nil, err
		}
		if err := e.grow(p, len(k)+4); err != nil {
			return nil, err
		}
		out[k] = x
	}
	if e.ordered {
		// goja lists the keys in JavaScript's order, each once.
		return ordered.New(keys, out), nil
	}
	return out, nil
}
