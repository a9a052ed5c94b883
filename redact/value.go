package redact

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

// Value returns a deep copy of the JSON-like value v with every string and
// every map key masked. It handles map[string]any, []any, string, numbers,
// bool and nil directly; other maps and slices are walked by reflection
// (maps become map[string]any, slices []any, []byte is masked as bytes);
// structs and other types go through a JSON round trip; a value that cannot
// be encoded becomes its masked fmt representation. v itself is never
// modified.
//
// When masking makes two keys of one map equal (two different secrets with
// the same name used as keys), the later ones get a "#2", "#3"... suffix so
// that no entry is lost.
func (r *Redactor) Value(v any) any {
	return r.value(v, 0, nil)
}

// ValueFound is Value that also adds to f the names of the values it
// masked, in strings and in map keys (see [Found]).
func (r *Redactor) ValueFound(v any, f *Found) any {
	return r.value(v, 0, f)
}

const maxDepth = 10_000

func (r *Redactor) value(v any, depth int, f *Found) any {
	if depth > maxDepth {
		return "[REDACTED: too deep]"
	}
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr, float32, float64:
		return v
	case string:
		return r.str(x, f)
	case json.Number:
		return json.Number(r.str(string(x), f))
	case []byte:
		if x == nil {
			return x
		}
		return r.bytes(x, f)
	case map[string]any:
		if x == nil {
			return x
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			putKey(out, r.str(k, f), r.value(e, depth+1, f))
		}
		return out
	case []any:
		if x == nil {
			return x
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.value(e, depth+1, f)
		}
		return out
	case error:
		return r.str(x.Error(), f)
	case json.Marshaler, fmt.Stringer:
		return r.viaJSON(v, depth, f)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return r.value(rv.Elem().Interface(), depth+1, f)
	case reflect.String:
		return r.str(rv.String(), f)
	case reflect.Map:
		if rv.IsNil() {
			return nil
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			putKey(out, r.str(keyString(it.Key()), f), r.value(it.Value().Interface(), depth+1, f))
		}
		return out
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = r.value(rv.Index(i).Interface(), depth+1, f)
		}
		return out
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return v
	}
	return r.viaJSON(v, depth, f)
}

// viaJSON walks v through a JSON round trip; a value JSON cannot encode is
// stringified and masked (losing structure beats leaking).
func (r *Redactor) viaJSON(v any, depth int, f *Found) any {
	b, err := json.Marshal(v)
	if err != nil {
		return r.str(fmt.Sprint(v), f)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return r.str(string(b), f)
	}
	return r.value(out, depth+1, f)
}

func keyString(k reflect.Value) string {
	switch k.Kind() {
	case reflect.String:
		return k.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10)
	}
	return fmt.Sprint(k.Interface())
}

func putKey(m map[string]any, k string, v any) {
	if _, ok := m[k]; !ok {
		m[k] = v
		return
	}
	for i := 2; ; i++ {
		kk := k + "#" + strconv.Itoa(i)
		if _, ok := m[kk]; !ok {
			m[kk] = v
			return
		}
	}
}

// Error returns an error whose Error() is err.Error() masked (with the
// values known when Error() is called). Unwrap returns err, so errors.Is and
// errors.As still see the chain; code that prints an unwrapped error must
// mask it again. Error(nil) is nil.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*redactedError); ok && e.r == r {
		return err
	}
	return &redactedError{err: err, r: r}
}

type redactedError struct {
	err error
	r   *Redactor
}

func (e *redactedError) Error() string { return e.r.String(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }
