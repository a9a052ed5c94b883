package jsvm

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/dop251/goja"

	"github.com/hushflow/hushflow/engine/ordered"
)

// The run's globals in process: a script sees the caller's Go values
// through inputObject and inputArray, which convert what the script reads
// when it reads it (the values are shared with the caller and with other
// evaluations, and are often larger than what a field reads). They are
// copies on write: the first write of a script to an object or array (an
// assignment, delete, push, sort...) gives that object its own copy of its
// properties inside the run, so that the caller's values never change and
// the next evaluation sees them as they were, as it would in the sandbox,
// where every evaluation builds its globals from JSON.
//
// Keys are in JavaScript's order (array indices first, ascending, then the
// rest): an *ordered.Object's own order, which is that of the JSON text it
// was decoded from; the keys of a plain Go map, which has no order, are
// sorted, as encoding/json writes them for the sandbox.

// maxGrow bounds how far past its end a script may write into an array of
// the globals (arr[1e9] = 1 would otherwise allocate a billion slots).
const maxGrow = 1 << 20

// value converts a Go value of the globals into a JavaScript value.
func (st *state) value(v any) goja.Value {
	switch x := v.(type) {
	case nil:
		return goja.Null()
	case string, bool, float64, int64, int, int32, float32, uint32:
		return st.rt.ToValue(x)
	case map[string]any:
		return st.rt.NewDynamicObject(&inputObject{st: st, src: x})
	case *ordered.Object:
		return st.rt.NewDynamicObject(&inputObject{st: st, src: x.Values(), keys: x.Keys()})
	case []any:
		return st.rt.NewDynamicArray(&inputArray{st: st, src: x})
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return st.rt.NewDynamicObject(&inputObject{st: st, src: m})
	}
	// Anything else reaches the script as its JSON, as in the sandbox.
	b, err := json.Marshal(v)
	if err != nil {
		panic(st.rt.NewTypeError(fmt.Sprintf("a global of type %T is not JSON: %v", v, err)))
	}
	return st.jsonValue(string(b))
}

// inputObject is an object of the globals (see value).
type inputObject struct {
	st  *state
	src map[string]any // the caller's values: never written
	// keys is the order of the keys: the *ordered.Object's (shared), or
	// computed when first asked for a plain map; after a write, the
	// object's own. idx counts the array indices at its front, after a
	// write.
	keys []string
	idx  int
	// read holds the values converted so far; after a write (own), vals
	// holds every property of the object.
	read cache[string]
	vals map[string]goja.Value
	own  bool
}

func (o *inputObject) Get(k string) goja.Value {
	if o.own {
		return o.vals[k]
	}
	if v, ok := o.read.get(k); ok {
		return v
	}
	x, ok := o.src[k]
	if !ok {
		return nil
	}
	v := o.st.value(x)
	o.read.put(k, v)
	return v
}

func (o *inputObject) Has(k string) bool {
	if o.own {
		_, ok := o.vals[k]
		return ok
	}
	_, ok := o.src[k]
	return ok
}

func (o *inputObject) Set(k string, v goja.Value) bool {
	o.write()
	if _, ok := o.vals[k]; !ok {
		o.keys, o.idx = ordered.InsertKey(o.keys, o.idx, k)
	}
	o.vals[k] = v
	return true
}

func (o *inputObject) Delete(k string) bool {
	o.write()
	if _, ok := o.vals[k]; ok {
		delete(o.vals, k)
		i := slices.Index(o.keys, k)
		o.keys = slices.Delete(o.keys, i, i+1)
		if i < o.idx {
			o.idx--
		}
	}
	return true
}

func (o *inputObject) Keys() []string {
	if o.own {
		return slices.Clone(o.keys) // a later write must not change an iteration
	}
	if o.keys == nil && len(o.src) > 0 {
		keys := make([]string, 0, len(o.src))
		for k := range o.src {
			keys = append(keys, k)
		}
		ordered.SortKeys(keys)
		o.keys = keys
	}
	return o.keys
}

// write gives the object its own copy of its properties.
func (o *inputObject) write() {
	if o.own {
		return
	}
	keys := slices.Clone(o.Keys())
	vals := make(map[string]goja.Value, len(keys))
	for _, k := range keys {
		vals[k] = o.Get(k)
	}
	o.idx = 0
	for o.idx < len(keys) {
		if _, ok := ordered.ArrayIndex(keys[o.idx]); !ok {
			break
		}
		o.idx++
	}
	o.keys, o.vals, o.own, o.read = keys, vals, true, cache[string]{}
}

// inputArray is an array of the globals (see value).
type inputArray struct {
	st  *state
	src []any // the caller's values: never written
	// read holds the items converted so far; after a write (own), vals
	// holds every item of the array (nil: a hole).
	read cache[int]
	vals []goja.Value
	own  bool
}

func (a *inputArray) Len() int {
	if a.own {
		return len(a.vals)
	}
	return len(a.src)
}

func (a *inputArray) Get(i int) goja.Value {
	if i < 0 || i >= a.Len() {
		return nil
	}
	if a.own {
		return a.vals[i]
	}
	if v, ok := a.read.get(i); ok {
		return v
	}
	v := a.st.value(a.src[i])
	a.read.put(i, v)
	return v
}

func (a *inputArray) Set(i int, v goja.Value) bool {
	if i < 0 || i > a.Len()+maxGrow {
		return false
	}
	a.write()
	if i >= len(a.vals) {
		a.vals = append(a.vals, make([]goja.Value, i+1-len(a.vals))...)
	}
	a.vals[i] = v
	return true
}

func (a *inputArray) SetLen(n int) bool {
	if n < 0 || n > a.Len()+maxGrow {
		return false
	}
	a.write()
	if n < len(a.vals) {
		clear(a.vals[n:])
		a.vals = a.vals[:n]
	} else {
		a.vals = append(a.vals, make([]goja.Value, n-len(a.vals))...)
	}
	return true
}

// write gives the array its own copy of its items.
func (a *inputArray) write() {
	if a.own {
		return
	}
	vals := make([]goja.Value, len(a.src))
	for i := range vals {
		vals[i] = a.Get(i)
	}
	a.vals, a.own, a.read = vals, true, cache[int]{}
}

// cache keeps the values a script read from an object or array, so that
// it reads the same JavaScript value each time (input.a === input.a). A
// script reads few properties of each object: the first ones are kept in
// the struct, searched in order, the rest in a map.
type cache[K comparable] struct {
	few  [4]cached[K]
	n    int
	many map[K]goja.Value
}

type cached[K comparable] struct {
	k K
	v goja.Value
}

func (c *cache[K]) get(k K) (goja.Value, bool) {
	for i := range c.n {
		if c.few[i].k == k {
			return c.few[i].v, true
		}
	}
	v, ok := c.many[k]
	return v, ok
}

func (c *cache[K]) put(k K, v goja.Value) {
	if c.n < len(c.few) {
		c.few[c.n] = cached[K]{k, v}
		c.n++
		return
	}
	if c.many == nil {
		c.many = make(map[K]goja.Value)
	}
	c.many[k] = v
}
