package redact

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestWriterEverySplit writes a text in two pieces at every byte position,
// then byte by byte, and checks that the output equals String of the whole.
func TestWriterEverySplit(t *testing.T) {
	r := newR(t, "K", canary, "P", "a", "KEY", pemKey)
	texts := []string{
		"start " + canary + " middle " + jsonString(canary, true) + " end",
		canary,
		canary + canary,
		"a " + canary + " a",
		"the key is\n" + pemKey + "\nand a b c",
		"no secrets here at all, nothing",
		"Basic " + b64std("user:"+canary),
	}
	for _, text := range texts {
		assertWriterAgrees(t, r, text, r.String(text))
	}
}

// assertWriterAgrees writes text through r's Writer split in two at every
// offset, and byte by byte, and fails unless every output is want.
func assertWriterAgrees(t *testing.T, r *Redactor, text, want string) {
	t.Helper()
	for i := 0; i <= len(text); i++ {
		var b bytes.Buffer
		w := r.NewWriter(&b)
		if n, err := w.Write([]byte(text[:i])); err != nil || n != i {
			t.Fatal(n, err)
		}
		if _, err := w.Write([]byte(text[i:])); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Fatalf("split at %d of %q:\n got %q\nwant %q", i, text, b.String(), want)
		}
	}
	var b bytes.Buffer
	w := r.NewWriter(&b)
	for i := 0; i < len(text); i++ {
		w.Write([]byte{text[i]})
	}
	w.Close()
	if b.String() != want {
		t.Fatalf("byte by byte:\n got %q\nwant %q", b.String(), want)
	}
}

// TestWriterHoldsBack checks that the Writer holds back exactly the tail
// that could start a value, and writes a line that cannot at once.
func TestWriterHoldsBack(t *testing.T) {
	r := newR(t, "K", "abcdefghij", "PIN", "4711")
	var b bytes.Buffer
	w := r.NewWriter(&b)
	w.Write([]byte(strings.Repeat("x", 100) + "abcde"))
	if b.String() != strings.Repeat("x", 100) {
		t.Fatalf("emitted %q", b.String())
	}
	w.Write([]byte("fghij tail"))
	if got := b.String(); got != strings.Repeat("x", 100)+"[REDACTED:K] tail" {
		t.Fatalf("emitted %q", got)
	}
	w.Write([]byte(" pin 47"))
	if got := b.String(); !strings.HasSuffix(got, "tail pin ") {
		t.Fatalf("emitted %q", got)
	}
	w.Write([]byte("11\n"))
	if got := b.String(); !strings.HasSuffix(got, "tail pin [REDACTED:PIN]\n") {
		t.Fatalf("a finished line was held back: %q", got)
	}
	w.Write([]byte("done abcdefghij"))
	if got := b.String(); !strings.HasSuffix(got, "\ndone ") {
		t.Fatalf("a match that could still grow was emitted: %q", got)
	}
	w.Close()
	if got := b.String(); !strings.HasSuffix(got, "\ndone [REDACTED:K]") {
		t.Fatal(got)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("write after close")
	}
}

// TestWriterLines checks that log lines are written as they come.
func TestWriterLines(t *testing.T) {
	r := newR(t, "K", canary, "KEY", pemKey)
	var b bytes.Buffer
	w := r.NewWriter(&b)
	for i := 0; i < 100; i++ {
		line := fmt.Sprintf("line %d token=%s ok\n", i, canary)
		w.Write([]byte(line))
		if want := r.String(line); !strings.HasSuffix(b.String(), want) {
			t.Fatalf("line %d not written at once: %q", i, b.String())
		}
	}
}

func TestWriterChain(t *testing.T) {
	r := newR(t, "K", "abcdefgh")
	var b bytes.Buffer
	w := r.NewWriter(&b)
	n := 20000
	if testing.Short() {
		n = 2000 // the writer is quadratic in a chain of matches
	}
	for i := 0; i < n; i++ {
		w.Write([]byte("abcdefgh"))
	}
	w.Close()
	if strings.Contains(b.String(), "abcdefgh") || strings.Contains(strings.ReplaceAll(b.String(), "[REDACTED:K]", ""), "a") {
		t.Fatalf("leak in chained matches (%d bytes)", b.Len())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterError(t *testing.T) {
	w := New().NewWriter(failWriter{})
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("want error")
	}
	if err := w.Close(); err == nil {
		t.Fatal("want sticky error")
	}
	var _ io.WriteCloser = w
}

// TestHoldBackExact checks the sampled search for the longest tail that can
// start a form against the definition: it holds back at least every proper
// prefix of a form (or of a weak value) at the end of the text, and no more
// than trying couldStart at every length did.
func TestHoldBackExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for round := 0; round < 40; round++ {
		r := New()
		vals := map[string]string{}
		for i := 0; i < 1+rng.IntN(300); i++ {
			v := benchSecret(rng)
			if rng.IntN(4) == 0 {
				v = v[:min(len(v), 4+rng.IntN(20))]
			}
			vals[fmt.Sprintf("V%d", i)] = v
		}
		r.AddAll(vals)
		if rng.IntN(2) == 0 {
			r.Add("LATE", benchSecret(rng)) // a side matcher when there are many values
		}
		snap := r.load()
		var forms []string
		for _, m := range [...]*matcher{snap.main, snap.extra} {
			if m == nil {
				continue
			}
			for _, p := range m.pats {
				forms = append(forms, string(m.arena[p.off:p.off+p.n]))
			}
			for _, w := range m.weak {
				forms = append(forms, w.s)
			}
		}
		for k := 0; k < 200; k++ {
			text := benchLogLine(rng, nil)
			f := forms[rng.IntN(len(forms))]
			if rng.IntN(4) != 0 {
				text = append(text, f[:rng.IntN(len(f)+1)]...)
			}
			exact := 0
			for _, f := range forms {
				for n := min(len(f)-1, len(text), snap.hold); n > exact; n-- {
					if string(text[len(text)-n:]) == f[:n] {
						exact = n
						break
					}
				}
			}
			old := 0
			for n := min(len(text), snap.hold); n > 0 && old == 0; n-- {
				u := text[len(text)-n:]
				for _, m := range [...]*matcher{snap.main, snap.extra} {
					if m != nil && m.couldStart(u) {
						old = n
					}
				}
			}
			if got := snap.holdBack(text); got < exact || got > old {
				t.Fatalf("holdBack(%q) = %d, want %d..%d", text, got, exact, old)
			}
		}
	}
}

// TestCase52_WriterLineAtATime (issue 16 item 15): console and exec output
// reach the Writer one line per Write. Each line is written through at
// once, masked as String masks it, and a line that ends in a byte no form
// has ('\n' unless a value has one) is written without searching for a
// tail to hold back: the search (up to the longest form, a few hundred
// bytes, sampled through the filter) cost more than masking the line. The
// throughput is BenchmarkRedact/values=N/writer-lines.
func TestCase52_WriterLineAtATime(t *testing.T) {
	searches := 0
	testHookHoldSearch = func() { searches++ }
	defer func() { testHookHoldSearch = nil }()

	c := getBenchCase(100)
	lines := bytes.SplitAfter(c.text[:256<<10], []byte("\n"))
	for _, withKey := range []bool{false, true} {
		r := New()
		r.AddAll(c.vals)
		if withKey {
			r.Add("KEY", pemKey) // a value with '\n': lines need the search
		}
		var b bytes.Buffer
		w := r.NewWriter(&b)
		searches = 0
		for i, l := range lines[:len(lines)-1] {
			n := b.Len()
			if _, err := w.Write(l); err != nil {
				t.Fatal(err)
			}
			if got, want := b.String()[n:], r.String(string(l)); got != want {
				t.Fatalf("line %d: wrote %q, want %q", i, got, want)
			}
		}
		w.Close()
		switch {
		case !withKey && searches != 0:
			t.Errorf("%d hold-back searches for %d lines ending in '\\n'", searches, len(lines)-1)
		case withKey && searches == 0:
			t.Errorf("no hold-back search although a value has '\\n'")
		}
	}
}

// TestAnyBytesCoverForms checks that the bytes the hold-back search is
// skipped for (a suffix ending in a byte outside anyBytes) are in no form:
// anyBytes is computed from the values and the escapings' alphabet, not
// read from the forms.
func TestAnyBytesCoverForms(t *testing.T) {
	vals := map[string]string{"C": canary, "K": pemKey, "Q": `"it's-7Qx2\x01\x7f"`, "D": `{"pw":"s3cr3t-P4ss<w0rd>"}`, "U": "key-🔑-\u2028-\xff-7Qx2"}
	for i, v := range getBenchCase(100).vals {
		vals[i] = v
	}
	r := New()
	r.AddAll(vals)
	m := r.load().main
	for _, c := range m.arena {
		if m.anyBytes[c>>6]&(1<<(c&63)) == 0 {
			t.Fatalf("byte %q is in a form but not in anyBytes", c)
		}
	}
}
