package jsvm

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dop251/goja"
)

// secretsObject is the lazy, read-only `secrets` of one run.
func (st *state) secretsObject() goja.Value {
	return st.rt.NewDynamicObject(&secretsView{st: st})
}

type secretsView struct {
	st        *state
	get, mask goja.Value
}

// notSecret are property names that the language itself or common
// libraries probe (await, JSON.stringify, string conversion); reading them
// must not look up a secret.
var notSecret = map[string]bool{
	"then": true, "toJSON": true, "toString": true, "valueOf": true,
	"constructor": true, "hasOwnProperty": true, "isPrototypeOf": true,
	"propertyIsEnumerable": true, "toLocaleString": true, "__proto__": true,
	"inspect": true, "asymmetricMatch": true, "$$typeof": true, "nodeType": true,
}

func (v *secretsView) Get(key string) goja.Value {
	switch key {
	case "get":
		if v.get == nil {
			v.get = v.st.rt.ToValue(v.st.secretsGet)
		}
		return v.get
	case "mask":
		if v.mask == nil {
			v.mask = v.st.rt.ToValue(v.st.secretsMask)
		}
		return v.mask
	}
	if notSecret[key] {
		return nil
	}
	val, err := v.st.resolve(key, Scope{})
	if err != nil {
		v.st.throw(err)
	}
	return v.st.rt.ToValue(val)
}

func (v *secretsView) Set(string, goja.Value) bool { return false }
func (v *secretsView) Delete(string) bool          { return false }

func (v *secretsView) Has(key string) bool {
	if key == "get" || key == "mask" {
		return true
	}
	names, err := v.st.secretNames()
	if err != nil {
		v.st.throw(err)
	}
	return slices.Contains(names, key)
}

// Keys lists names, never values, and resolves nothing.
func (v *secretsView) Keys() []string {
	names, err := v.st.secretNames()
	if err != nil {
		v.st.throw(err)
	}
	return slices.Clone(names)
}

func (st *state) secretNames() ([]string, error) {
	if !st.hasNames {
		if st.host == nil {
			st.hasNames = true
			return nil, nil
		}
		names, err := st.host.Names()
		if err != nil {
			return nil, err
		}
		st.names, st.hasNames = names, true
	}
	return st.names, nil
}

// resolve reads a secret once per run and scope; the host reports each
// read before the script gets the value.
func (st *state) resolve(name string, scope Scope) (string, error) {
	k := secretKey{name, scope}
	if v, ok := st.resolved[k]; ok {
		return v, nil
	}
	if st.host == nil {
		return "", &Error{Code: CodeSecret, Message: fmt.Sprintf("secret %q is not defined: no secrets are available here", name)}
	}
	v, err := st.host.Resolve(name, scope)
	if err != nil {
		return "", err
	}
	if st.resolved == nil {
		st.resolved = make(map[secretKey]string)
	}
	st.resolved[k] = v
	return v, nil
}

// secretsGet is secrets.get(name, {project, environment}): a Promise.
func (st *state) secretsGet(call goja.FunctionCall) goja.Value {
	p, resolve, reject := st.rt.NewPromise()
	name, ok := call.Argument(0).Export().(string)
	if !ok {
		_ = reject(st.rt.NewTypeError("secrets.get: the name must be a string"))
		return st.rt.ToValue(p)
	}
	var scope Scope
	if o, ok := call.Argument(1).(*goja.Object); ok {
		scope.Project = optString(o.Get("project"))
		scope.Environment = optString(o.Get("environment"))
	}
	v, err := st.resolve(name, scope)
	if err != nil {
		_ = reject(st.errorObject(err))
	} else {
		_ = resolve(v)
	}
	return st.rt.ToValue(p)
}

func optString(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return ""
	}
	return v.String()
}

// secretsMask is secrets.mask(value): it registers value for redaction and
// returns it.
func (st *state) secretsMask(call goja.FunctionCall) goja.Value {
	arg := call.Argument(0)
	s, ok := arg.Export().(string)
	if !ok {
		panic(st.rt.NewTypeError("secrets.mask: the value must be a string"))
	}
	if st.host != nil && s != "" {
		st.host.Mask(s)
	}
	return arg
}

// console returns a console whose records go to the host.
func (st *state) console() goja.Value {
	c := st.rt.NewObject()
	for _, level := range [...]string{"log", "info", "warn", "error", "debug"} {
		_ = c.Set(level, func(call goja.FunctionCall) goja.Value {
			st.log(level, call.Arguments)
			return goja.Undefined()
		})
	}
	return c
}

func (st *state) log(level string, args []goja.Value) {
	if st.host == nil || st.logBytes >= st.lim.MaxLogBytes {
		return
	}
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(st.format(a))
		if b.Len() > maxLogRecord {
			break
		}
	}
	msg := b.String()
	if len(msg) > maxLogRecord {
		msg = msg[:maxLogRecord] + "… (truncated)"
	}
	st.logBytes += len(msg)
	if st.logBytes >= st.lim.MaxLogBytes {
		msg = "console output limit reached; further records are dropped"
		level = "warn"
	}
	st.host.Log(level, msg)
}

// format renders one console argument: strings as they are, other values
// as JSON when they are JSON values.
func (st *state) format(v goja.Value) string {
	if s, ok := v.(goja.String); ok {
		return s.String()
	}
	if goja.IsUndefined(v) {
		return "undefined"
	}
	if o, ok := v.(*goja.Object); ok {
		switch o.ClassName() {
		case "Error":
			return valueString(o.Get("stack"))
		case "Function":
			return "[Function]"
		}
	}
	e := exporter{max: maxLogRecord, seen: map[*goja.Object]bool{}, ordered: true} // keys in the script's order
	x, err := e.value(v, "")
	if err != nil {
		return safeString(v)
	}
	if s, ok := x.(string); ok {
		return s
	}
	b, err := json.Marshal(x)
	if err != nil {
		return safeString(v)
	}
	return string(b)
}

// base64Globals defines btoa and atob as browsers do: btoa encodes a
// string of Latin-1 characters (code units up to 0xFF) as base64, atob
// decodes base64 into such a string. Both are linear in their input.
func (st *state) base64Globals() {
	rt := st.rt
	_ = rt.Set("btoa", func(call goja.FunctionCall) goja.Value {
		s := call.Argument(0).String()
		b := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xFF {
				panic(rt.NewTypeError("btoa: the string contains a character outside Latin-1 (encode it first, e.g. with encodeURIComponent)"))
			}
			b = append(b, byte(r))
		}
		return rt.ToValue(base64.StdEncoding.EncodeToString(b))
	})
	_ = rt.Set("atob", func(call goja.FunctionCall) goja.Value {
		s := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' {
				return -1
			}
			return r
		}, call.Argument(0).String())
		s = strings.TrimRight(s, "=")
		b, err := base64.RawStdEncoding.DecodeString(s)
		if err != nil {
			panic(rt.NewTypeError("atob: the string is not valid base64"))
		}
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return rt.ToValue(string(r))
	})
}

// failureGlobals defines `error` and `failed_block` for a block of an
// on_error handler. They are properties of the global object, not
// parameters of the wrapper like input or steps, so that a code block
// that declares its own `const error` (legal before on_error existed)
// still compiles: its declaration shadows the global. They are read-only.
func (st *state) failureGlobals(f *Failure) {
	g := st.rt.GlobalObject()
	_ = g.DefineDataProperty("error", st.rt.ToValue(f.Error), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
	_ = g.DefineDataProperty("failed_block", st.rt.ToValue(f.FailedBlock), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
}

// eachGlobals defines `item` and `index` for an iteration of a block with
// `each`: read-only properties of the global object, like failureGlobals,
// so that a code block's own `const item` still compiles and shadows them.
func (st *state) eachGlobals(e *Each) {
	g := st.rt.GlobalObject()
	_ = g.DefineDataProperty("item", st.global(e.Item), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
	_ = g.DefineDataProperty("index", st.rt.ToValue(e.Index), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
}

// mathSign replaces goja's Math.sign, which returns its argument unchanged
// when that is not a number (Math.sign('a') is 'a', Math.sign(null) is
// null), with the standard one: the sign of ToNumber(x) (1, -1, 0, -0 or
// NaN). Only a runtime whose script's source contains "sign" gets it, as
// for btoa and atob.
func (st *state) mathSign() {
	rt := st.rt
	sign := rt.ToValue(func(call goja.FunctionCall) goja.Value {
		f := call.Argument(0).ToFloat()
		switch {
		case f > 0:
			return rt.ToValue(1)
		case f < 0:
			return rt.ToValue(-1)
		}
		return rt.ToValue(f) // 0, -0, NaN
	}).(*goja.Object)
	_ = sign.DefineDataProperty("name", rt.ToValue("sign"), goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	_ = rt.Get("Math").ToObject(rt).DefineDataProperty("sign", sign, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}
