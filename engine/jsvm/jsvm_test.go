package jsvm

import (
	"context"
	"testing"

	"github.com/dop251/goja"
)

type nopHost struct{}

func (nopHost) Resolve(name string, _ Scope) (string, error) { return "v", nil }
func (nopHost) Names() ([]string, error)                     { return nil, nil }
func (nopHost) Mask(string)                                  {}
func (nopHost) Log(string, string)                           {}

func BenchmarkGojaNew(b *testing.B) {
	for b.Loop() {
		_ = goja.New()
	}
}

func benchRun(b *testing.B, kind Kind, src string) {
	s, err := Compile(kind, src)
	if err != nil {
		b.Fatal(err)
	}
	g := Globals{Input: map[string]any{"text": "hello"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(context.Background(), g, nopHost{}, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunField(b *testing.B) { benchRun(b, Field, "`Bearer ${secrets.X}`") }
func BenchmarkRunCode(b *testing.B)  { benchRun(b, Code, "return input.text") }
