package redact

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output of testdata/golden files")

const goldenSep = "\n----------\n"

// goldenSecrets are the values registered for every golden file.
var goldenSecrets = map[string]string{
	"API_TOKEN":   "tok_9f8e7d6c5b4a3921",
	"DB_PASSWORD": `p&ss<w>rd"%\x`,
	"PIN":         "4711",
	"TLS_KEY":     pemKey,
}

// TestGolden masks each testdata/golden/*.txt input (the part before the
// "----------" line) and compares it with the expected output after it.
// Run with -update to rewrite the expected outputs.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatal("no golden files", err)
	}
	r := New()
	r.AddAll(goldenSecrets)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			in, want, _ := strings.Cut(string(b), goldenSep)
			got := r.String(in)
			if *update {
				if err := os.WriteFile(file, []byte(in+goldenSep+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s: got\n%s\nwant\n%s", file, got, want)
			}
			for _, v := range goldenSecrets {
				if len(v) >= MinLength && strings.Contains(got, v) {
					t.Errorf("%s: value survived", file)
				}
			}
		})
	}
}
