// Package blockstest is the contract suite every block type passes:
// blockstest.Run(t, mypkg.Info()) in the block's tests.
package blockstest

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/blocks"
)

var idRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// credentialWords mark field names that must be flagged Secret.
var credentialWords = []string{"token", "secret", "password", "api_key", "apikey", "private_key", "credential"}

var fieldTypes = map[blocks.FieldType]bool{
	blocks.String: true, blocks.Number: true, blocks.Bool: true, blocks.Object: true,
	blocks.Array: true, blocks.Any: true, blocks.Duration: true,
}

// Run checks info against the Block contract:
//   - the ID follows the naming rules and New returns a fresh, non-nil
//     pointer each time;
//   - the Spec lists exactly the JSON keys of the configuration struct,
//     each with a known type and a doc, without duplicates;
//   - fields whose names suggest credentials are flagged Secret;
//   - strict decoding refuses unknown fields and accepts an empty object.
func Run(t *testing.T, info blocks.Info) {
	t.Helper()
	t.Run("id", func(t *testing.T) {
		if !idRE.MatchString(string(info.ID)) {
			t.Errorf("ID %q: use a short lowercase name", info.ID)
		}
		if info.Spec.Summary == "" {
			t.Error("Spec.Summary is empty")
		}
	})
	t.Run("new", func(t *testing.T) {
		a, b := info.New(), info.New()
		if a == nil || b == nil {
			t.Fatal("New returned nil")
		}
		va := reflect.ValueOf(a)
		if va.Kind() != reflect.Pointer || va.Elem().Kind() != reflect.Struct {
			t.Fatalf("New returns %T; return a pointer to a config struct", a)
		}
		if va.Pointer() == reflect.ValueOf(b).Pointer() {
			t.Error("New returned the same value twice")
		}
		if !va.Elem().IsZero() {
			t.Error("New returned a non-zero value; defaults belong in Provision or Run")
		}
	})
	t.Run("spec matches json tags", func(t *testing.T) {
		tags := jsonKeys(reflect.TypeOf(info.New()).Elem())
		seen := map[string]bool{}
		for _, f := range info.Spec.Fields {
			if seen[f.Name] {
				t.Errorf("field %q listed twice", f.Name)
			}
			seen[f.Name] = true
			if !tags[f.Name] {
				t.Errorf("spec field %q has no json tag in %T", f.Name, info.New())
			}
			if !fieldTypes[f.Type] {
				t.Errorf("field %q: unknown type %q", f.Name, f.Type)
			}
			if strings.TrimSpace(f.Doc) == "" {
				t.Errorf("field %q has no doc", f.Name)
			}
		}
		for k := range tags {
			if !seen[k] {
				t.Errorf("json key %q of %T is not in the spec", k, info.New())
			}
		}
	})
	t.Run("secret fields flagged", func(t *testing.T) {
		for _, f := range info.Spec.Fields {
			n := strings.ToLower(f.Name)
			for _, w := range credentialWords {
				if strings.Contains(n, w) && !f.Secret && !f.SecretNames {
					t.Errorf("field %q looks like a credential and is not marked Secret", f.Name)
				}
			}
		}
	})
	t.Run("strict decoding", func(t *testing.T) {
		if err := blocks.StrictUnmarshal([]byte(`{"no_such_field_x": 1}`), info.New()); err == nil {
			t.Error("an unknown field was accepted")
		}
		if err := blocks.StrictUnmarshal([]byte(`{}`), info.New()); err != nil {
			t.Errorf("empty config: %v", err)
		}
	})
}

func jsonKeys(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k := range jsonKeys(f.Type) {
				out[k] = true
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = true
	}
	return out
}
