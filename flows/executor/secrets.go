package executor

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/plan"
	"github.com/hushflow/hushflow/internal/suggest"
	"github.com/hushflow/hushflow/redact"
)

// runResolver resolves secrets for one block of a run.
type runResolver struct {
	x     *execution
	block string
	// cur is the block's attempt in progress (nil outside one: the each
	// expression, an evaluation).
	cur *attemptState
}

func (rr *runResolver) scope(scope engine.Scope) (string, string, error) {
	r := rr.x.run
	if scope.Project != "" && scope.Project != r.Project {
		return "", "", fmt.Errorf("secrets of project %q are not visible to runs of project %q: %w", scope.Project, r.Project, engine.ErrUnknownSecret)
	}
	env := r.Environment
	if scope.Environment != "" {
		env = scope.Environment
	}
	return r.Project, env, nil
}

func (rr *runResolver) Resolve(ctx context.Context, name string, scope engine.Scope) (string, error) {
	p, e, err := rr.scope(scope)
	if err != nil {
		return "", err
	}
	if rr.x.secrets == nil {
		return "", fmt.Errorf("secret %q is not defined for project %s, environment %s: %w", name, p, e, engine.ErrUnknownSecret)
	}
	v, err := rr.x.secrets.Resolve(ctx, rr.block, name, engine.Scope{Project: p, Environment: e})
	if err != nil {
		rr.x.noteInfraOf(rr.cur, err)
		if errors.Is(err, engine.ErrUnknownSecret) && e == rr.x.run.Environment {
			// The nearest name this run can read, for a typo; never
			// text derived from the name asked for.
			if names, nerr := rr.Names(ctx); nerr == nil {
				if near := suggest.Nearest(name, names); near != "" {
					err = &suggestedError{err: err, near: near}
				}
			}
		}
		return "", err
	}
	// Known to the redactor and the pins before the script has it.
	rr.x.guard.learn(name, e, v.Value, v.AllowedHosts)
	return v.Value, nil
}

func (rr *runResolver) Names(ctx context.Context) ([]string, error) {
	if rr.x.w.cfg.Secrets == nil {
		return nil, nil
	}
	ns, err := rr.x.w.cfg.Secrets.Names(ctx, rr.x.run.Project, rr.x.run.Environment)
	sort.Strings(ns)
	return ns, err
}

// displayConfig is a block's evaluated configuration as events show it:
// fields the block type marks Secret and credential headers (by name, in
// any object of the configuration) are replaced by a mask whatever their
// value, since a credential built at run time from non-secret parts is not
// a registered value; the mask names the secret the value holds when it
// holds one (mask, the run's redactor's MaskOf). The run's redactor then
// masks known values in the rest.
func displayConfig(pb *plan.PlannedBlock, cfg map[string]any, mask func(string) string) map[string]any {
	out := make(map[string]any, len(cfg))
	for k, v := range cfg {
		if f, ok := pb.Info.Spec.Field(k); ok && f.Secret && v != nil {
			out[k] = maskWhole(v, mask)
			continue
		}
		out[k] = maskCredentialKeys(v, mask, 0)
	}
	return out
}

// maskWhole is the mask of a whole value (a string, or any other value
// as its JSON).
func maskWhole(v any, mask func(string) string) string {
	s, ok := v.(string)
	if !ok {
		b, _ := json.Marshal(v)
		s = string(b)
	}
	return mask(s)
}

func maskCredentialKeys(v any, mask func(string) string, depth int) any {
	if depth > 32 {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			if redact.CredentialHeader(k) && e != nil {
				m[k] = maskWhole(e, mask)
			} else {
				m[k] = maskCredentialKeys(e, mask, depth+1)
			}
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = maskCredentialKeys(e, mask, depth+1)
		}
		return a
	}
	return v
}

// redactorCache keeps a Redactor per set of secret values (by their
// hash), so that runs of the same scope do not each build the matcher
// (with every encoding of every value) again. It is an LRU of
// maxCachedRedactors: the sets of values least recently used go first.
type redactorCache struct {
	lru *lru.Cache[string, *redact.Redactor]
}

// maxCachedRedactors bounds the shared redactors kept (one per distinct
// set of secret values seen by runs).
const maxCachedRedactors = 256

// maxCachedDerivers bounds the shared indexes of the values runs read
// (one per distinct sequence of values read; about 45 KB for a token).
const maxCachedDerivers = 64

func newRedactorCache() *redactorCache {
	c, _ := lru.New[string, *redact.Redactor](maxCachedRedactors)
	return &redactorCache{lru: c}
}

// redactorFor returns a run's own Redactor holding the values of vis
// (current and earlier versions, each under its secret's name, in name
// order): a clone of the shared one of that set of values.
func (w *Worker) redactorFor(vis []model.VisibleSecret) *redact.Redactor {
	sorted := slices.Clone(vis)
	slices.SortFunc(sorted, func(a, b model.VisibleSecret) int { return strings.Compare(a.Name, b.Name) })
	var names, values []string
	for _, v := range sorted {
		names, values = append(names, v.Name), append(values, v.Value)
	}
	for _, v := range sorted { // earlier versions after every current value
		for _, p := range v.Previous {
			names, values = append(names, v.Name), append(values, p)
		}
	}
	h := sha256.New()
	for i := range names {
		h.Write([]byte(names[i]))
		h.Write([]byte{0})
		h.Write([]byte(values[i]))
		h.Write([]byte{0})
	}
	key := string(h.Sum(nil))
	if base, ok := w.redactors.lru.Get(key); ok {
		return base.Clone()
	}
	base := redact.New()
	base.AddPairs(names, values)
	w.redactors.lru.Add(key, base)
	return base.Clone()
}

// suggestedError is an unknown secret's error with the nearest name the
// run can read.
type suggestedError struct {
	err  error
	near string
}

func (e *suggestedError) Error() string { return fmt.Sprintf("%v; did you mean %q?", e.err, e.near) }
func (e *suggestedError) Unwrap() error { return e.err }
