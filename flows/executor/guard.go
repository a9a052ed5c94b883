package executor

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/redact"
)

// guard follows a run's secret values: the name each is masked under in
// the run's redactor and the hosts it may be sent to. It starts with the
// secrets visible in the run's scope and learns the values the run reads
// elsewhere (secrets.get of another environment) or registers
// (secrets.mask) before the script has them, so that a pin follows the
// value whichever way the run read it, not its name: the egress check
// matches a request's values and looks up their pins by the name they are
// masked under.
//
// The guard also follows what scripts derive from the secret values the
// run read (see derive): those values are the sources of a
// redact.Deriver, and a derived piece found where a value leaves a
// script is learnt like a secrets.mask value, under the name of its
// source, so that it is masked, pinned and kept in checkpoints alike.
type guard struct {
	red *redact.Redactor
	drv *redact.Deriver // the values the run read, by their names in red

	mu     sync.Mutex
	label  map[string]string // value -> its name in red
	used   map[string]bool   // names in use in red
	origin map[string]origin // name in red -> the secret it masks
	learnt []model.RunMask   // values learnt after start, for checkpoints
	// allowed is the current pins (name -> hosts), replaced, never
	// modified, on a change; read by every request of the run.
	allowed atomic.Pointer[map[string][]string]
}

// start sets up the guard of a run whose redactor red holds the visible
// secrets vis as redactorFor registers them (current values by name in
// sorted order, then earlier versions: the first name of a value is the
// one it is masked under). An earlier version is pinned like the current
// one. The derived values of what the run reads are found with a Deriver
// of dc (nil: one of its own).
func (g *guard) start(red *redact.Redactor, vis []model.VisibleSecret, dc *redact.DeriverCache) {
	g.red = red
	g.drv = redact.NewDeriver()
	if dc != nil {
		g.drv = dc.New()
	}
	g.label, g.used, g.origin = map[string]string{}, map[string]bool{}, map[string]origin{}
	sorted := slices.Clone(vis)
	slices.SortFunc(sorted, func(a, b model.VisibleSecret) int { return strings.Compare(a.Name, b.Name) })
	pins := map[string][]string{}
	pin := func(value string, hosts []string) {
		if l, ok := g.label[value]; ok && len(hosts) > 0 {
			pins[l] = narrow(pins[l], hosts)
		}
	}
	for _, v := range sorted {
		if _, ok := g.label[v.Value]; !ok && v.Value != "" {
			g.label[v.Value] = v.Name
			g.used[v.Name] = true
			g.origin[v.Name] = origin{secret: v.Name}
		}
		pin(v.Value, v.AllowedHosts)
	}
	for _, v := range sorted {
		for _, p := range v.Previous {
			if _, ok := g.label[p]; !ok && p != "" {
				g.label[p] = v.Name
			}
			pin(p, v.AllowedHosts)
		}
	}
	g.allowed.Store(&pins)
}

// learn makes value known before a script or block has it: masked (under
// name, or under name@environment when name already masks another value)
// and, when hosts are given, pinned to them as well as to any pins the
// value already has. The value becomes a source of derived values.
func (g *guard) learn(name, environment, value string, hosts []string) {
	if value == "" {
		return
	}
	if len(hosts) == 0 {
		hosts = nil // not pinned
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	l, known := g.label[value]
	if !known {
		l = name
		for i := 1; l != "" && g.used[l]; i++ {
			l = name + "@" + environment
			if i > 1 {
				l += "#" + strconv.Itoa(i)
			}
		}
	}
	g.addLocked(l, value, hosts, origin{secret: name, environment: environment})
	g.sourceLocked(l, value)
}

// sourceLocked makes value, masked under l, a source of derived values
// and records it for checkpoints. g.mu must be held.
func (g *guard) sourceLocked(l, value string) {
	i := slices.IndexFunc(g.learnt, func(m model.RunMask) bool { return m.Value == value })
	if i >= 0 && g.learnt[i].Source {
		return
	}
	if i < 0 {
		g.learnt = append(g.learnt, model.RunMask{Name: l, Value: value})
		i = len(g.learnt) - 1
	}
	g.learnt[i].Source = true
	g.drv.Add(l, value)
}

// derive learns the pieces of s that a script derived from the values the
// run read (a slice, the value upper-cased, btoa('user:' + value)...; see
// redact.Deriver), each under the name of its source, unless the redactor
// masks them already. It is called with every text that leaves a script
// (a log line, an error) before that text is shown anywhere; it costs one
// atomic load while the run has read no secret.
func (g *guard) derive(s string) {
	if g.drv.Len() == 0 {
		return
	}
	for _, p := range g.drv.Find(s) {
		if g.red.Covers(p.Text) {
			continue // the value itself, or one of its encodings
		}
		g.mu.Lock()
		g.addLocked(p.Name, p.Text, nil, origin{})
		g.mu.Unlock()
	}
}

// deriveValue is derive of every string (and map key) of a script's
// result, a JSON-like value.
func (g *guard) deriveValue(v any) {
	if g.drv.Len() == 0 {
		return
	}
	g.walk(v, 0)
}

func (g *guard) walk(v any, depth int) {
	if depth > maxDeriveDepth {
		return
	}
	switch x := v.(type) {
	case string:
		g.derive(x)
	case map[string]any:
		for k, e := range x {
			g.derive(k)
			g.walk(e, depth+1)
		}
	case []any:
		for _, e := range x {
			g.walk(e, depth+1)
		}
	case map[string]string:
		for k, e := range x {
			g.derive(k)
			g.derive(e)
		}
	case []string:
		for _, e := range x {
			g.derive(e)
		}
	case *engine.Object:
		for _, k := range x.Keys() {
			g.derive(k)
			e, _ := x.Get(k)
			g.walk(e, depth+1)
		}
	}
}

// maxDeriveDepth bounds the walk of a result (results are bounded by the
// engine's output limit; this bounds the recursion).
const maxDeriveDepth = 10_000

// restore learns the values of an earlier claim of the run again, under
// the names they were masked under.
func (g *guard) restore(ms []model.RunMask) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range ms {
		l, known := g.label[m.Value]
		if !known {
			l = m.Name
		}
		g.addLocked(l, m.Value, m.AllowedHosts, origin{secret: m.Secret, environment: m.Environment})
		if m.Source {
			g.sourceLocked(l, m.Value)
		}
	}
}

// addLocked masks value under l (when new), the value of the secret o
// (none when o.secret is ""), and adds hosts to its pins.
func (g *guard) addLocked(l, value string, hosts []string, o origin) {
	i := slices.IndexFunc(g.learnt, func(m model.RunMask) bool { return m.Value == value })
	if _, known := g.label[value]; !known {
		g.label[value] = l
		g.used[l] = true
		if _, ok := g.origin[l]; !ok && o.secret != "" {
			g.origin[l] = o
		}
		g.red.Add(l, value)
		g.learnt = append(g.learnt, model.RunMask{Name: l, Value: value, Secret: o.secret, Environment: o.environment})
		i = len(g.learnt) - 1
	}
	if hosts == nil {
		return
	}
	cur := *g.allowed.Load()
	have, pinned := cur[l]
	if pinned && len(narrow(have, hosts)) == len(have) {
		return // no change
	}
	next := make(map[string][]string, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[l] = narrow(have, hosts)
	g.allowed.Store(&next)
	if i >= 0 {
		g.learnt[i].AllowedHosts = next[l]
	}
}

// origin is the secret a name of the run's redactor masks: its name and
// the environment it was read from ("" for the run's).
type origin struct {
	secret, environment string
}

// originOf returns the secret that the values masked under name l are
// of; false for a value that is no stored secret (secrets.mask).
func (g *guard) originOf(l string) (origin, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	o, ok := g.origin[l]
	return o, ok
}

// masks returns the values learnt after start.
func (g *guard) masks() []model.RunMask {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.learnt)
}

// pins returns the current pins; the map must not be modified.
func (g *guard) pins() map[string][]string {
	if p := g.allowed.Load(); p != nil {
		return *p
	}
	return nil
}

// narrow returns the hosts a value pinned to both have and add may go to:
// add when have is nil (the value was not pinned), else the patterns of
// have that add names too (an empty result: nowhere).
func narrow(have, add []string) []string {
	if have == nil {
		return slices.Clone(add)
	}
	var out []string
	for _, h := range have {
		if slices.Contains(add, h) {
			out = append(out, h)
		}
	}
	if out == nil {
		out = []string{} // pinned to no host at all
	}
	return out
}
