package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// wrap cuts s into lines of width columns, each line after indent, joined
// by eol, as base64(1), MIME, PEM, openssl and xxd -p print them.
func wrap(s string, width int, eol, indent string) string {
	var b strings.Builder
	for len(s) > 0 {
		n := min(width, len(s))
		b.WriteString(indent + s[:n] + eol)
		s = s[n:]
	}
	return b.String()
}

type wrapFormat struct {
	name   string
	encode func([]byte) string
	width  int
	eol    string
	indent string
	before string // armor or label before the first line
	after  string
}

var wrapFormats = []wrapFormat{
	{name: "base64 (coreutils, 76)", encode: base64.StdEncoding.EncodeToString, width: 76, eol: "\n"},
	{name: "MIME (76, CRLF)", encode: base64.StdEncoding.EncodeToString, width: 76, eol: "\r\n"},
	{name: "PEM (64)", encode: base64.StdEncoding.EncodeToString, width: 64, eol: "\n", before: "-----BEGIN DATA-----\n", after: "-----END DATA-----\n"},
	{name: "openssl base64 (64)", encode: base64.StdEncoding.EncodeToString, width: 64, eol: "\n"},
	{name: "xxd -p (60)", encode: hex.EncodeToString, width: 60, eol: "\n"},
	{name: "YAML block scalar (76, indented)", encode: base64.StdEncoding.EncodeToString, width: 76, eol: "\n", indent: "    ", before: "data: |\n"},
	{name: "base64url (76)", encode: base64.URLEncoding.EncodeToString, width: 76, eol: "\n"},
}

// wrapLeaks returns a piece of enc of 6 bytes or more that survives in out
// once its line breaks and indentation are taken out, or "".
func wrapLeaks(out, enc string) string {
	joined := strings.NewReplacer("\r", "", "\n", "", " ", "").Replace(out)
	for i := 0; i+6 <= len(enc); i++ {
		if strings.Contains(joined, enc[i:i+6]) {
			return enc[i : i+6]
		}
	}
	return ""
}

// TestCase46_WrappedEncodings (issue 16 item 9): base64 and hex printed in
// lines of 60 to 76 columns, of the value alone and of a longer blob that
// holds it at every offset (so that its encoding straddles a line break
// at every position). Every line piece of the value's encoding is masked,
// each piece on its own line, and the lines are kept, whether the line
// break leaves the form's head (its first step+q-1 bytes, by which the scan
// finds it) whole or cuts it (found by findHeadCuts); both kinds are
// counted, so that the test would notice if the blob stopped producing
// head cuts. At every offset, the Writer fed one line per Write gives the
// same output as String.
func TestCase46_WrappedEncodings(t *testing.T) {
	vals := map[string]string{
		"K": "wR4p-Zq8xN2vT7bLk9MfY3sHc6JdQ1gE0aU5iOoP", // 40 bytes
		"S": "short-7Qx2-9Zk4!",                         // 16 bytes: 22 base64 characters
	}
	r := New()
	r.AddAll(vals)
	m := r.load().main
	head := m.step + m.q - 1
	filler := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 8))
	whole, cut := 0, 0
	for _, f := range wrapFormats {
		for name, v := range vals {
			for off := 0; off <= 100; off++ {
				blob := append(append(append([]byte{}, filler[:off]...), v...), filler[off:off+30]...)
				enc := f.encode(blob)
				in := "output:\n" + f.before + wrap(enc, f.width, f.eol, f.indent) + f.after + "done\n"
				out := r.String(in)
				core, from := valueCore(f, blob, off, len(v))
				w := f.width
				// The first line break after the form's start, in the
				// encoding's own coordinates.
				if brk := (from/w + 1) * w; brk < from+len(core) && brk-from < head {
					cut++
				} else {
					whole++
				}
				if leak := wrapLeaks(out, core); leak != "" {
					t.Fatalf("%s, %s at offset %d: %q of its encoding survived:\nin:\n%s\nout:\n%s", f.name, name, off, leak, in, out)
				}
				if strings.Count(out, "\n") != strings.Count(in, "\n") {
					t.Fatalf("%s: lines not kept:\nin:\n%s\nout:\n%s", f.name, in, out)
				}
				if !strings.Contains(out, "[REDACTED:"+name+"]") {
					t.Fatalf("%s: no mask:\n%s", f.name, out)
				}
				if got := r.Matches(in); len(got) != 1 || got[0] != name {
					t.Fatalf("%s: Matches = %q", f.name, got)
				}
				checkWriterLines(t, r, in, out, f.name, name, off)
			}
		}
	}
	if cut == 0 || whole == 0 {
		t.Fatalf("placements: %d with the head whole, %d cut within it; want both kinds", whole, cut)
	}
	t.Logf("head %d bytes: %d placements with the head on one line, %d cut within the head, all masked", head, whole, cut)
}

// checkWriterLines writes in one line per Write, as exec output arrives,
// and checks that the Writer's output is String's.
func checkWriterLines(t *testing.T, r *Redactor, in, want, format, name string, off int) {
	t.Helper()
	var b bytes.Buffer
	w := r.NewWriter(&b)
	for _, l := range strings.SplitAfter(in, "\n") {
		w.Write([]byte(l))
	}
	w.Close()
	if b.String() != want {
		t.Fatalf("%s, %s at offset %d: Writer line by line:\n%s\nString:\n%s", format, name, off, b.String(), want)
	}
}

// valueCore returns the characters of enc(blob) that depend only on the
// value at blob[off:off+n], and where they start in enc.
func valueCore(f wrapFormat, blob []byte, off, n int) (string, int) {
	enc := f.encode(blob)
	if len(enc) == 2*len(blob) { // hex
		return enc[2*off : 2*(off+n)], 2 * off
	}
	from := (8*off + 5) / 6 // first character with no bit before the value
	to := 8 * (off + n) / 6 // characters fully determined up to the value's end
	return enc[from:to], from
}

// TestWrappedNoFalseJoin checks that wrapped lines without a value, and
// lines that are not wrapped encodings, come out unchanged, and that an
// ordinary line break between a value's pieces in prose is not joined.
func TestWrappedNoFalseJoin(t *testing.T) {
	r := newR(t, "K", "wR4p-Zq8xN2vT7bLk9MfY3sHc6JdQ1gE0aU5iOoP")
	for _, in := range []string{
		wrap(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("unrelated bytes ", 40))), 76, "\n", ""),
		"short line wR4p-Zq8xN2vT7bLk9\nMfY3sHc6JdQ1gE0aU5iOoP rest\n", // pieces of the value, in prose
		strings.Repeat("x", 80) + "\n" + strings.Repeat("y", 80) + "\n",
	} {
		if out := r.String(in); out != in {
			t.Errorf("changed:\n%q\n%q", in, out)
		}
	}
	_ = fmt.Sprint
}

// TestWrappedWriterHold writes wrapped dumps that hold a value across a line
// break (after the form's head, and within it) in two pieces at every byte
// position, and byte by byte: the Writer
// holds back the end of a full line until the next one shows whether the
// region goes on, so its output equals String's.
func TestWrappedWriterHold(t *testing.T) {
	v := "wR4p-Zq8xN2vT7bLk9MfY3sHc6JdQ1gE0aU5iOoP"
	long := strings.Repeat("Y", 150) // longer than a line: crosses two breaks
	r := newR(t, "K", v, "L", long, "P", "4711")
	filler := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 4)
	var texts []string
	for _, f := range wrapFormats {
		texts = append(texts,
			"x\n"+f.before+wrap(f.encode([]byte(filler[:40]+v+filler[:20])), f.width, f.eol, f.indent)+f.after+"pin 4711\n",
			wrap(f.encode([]byte(filler[:7]+long+filler[:9])), f.width, f.eol, f.indent))
		// The value's encoding cut by the first line break within its
		// head (the first 16 characters), 2 and 11 characters in.
		for _, in := range []int{2, 11} {
			off := (f.width - in) / 2
			if len(f.encode([]byte("x"))) == 4 {
				off = (f.width - in) * 3 / 4
			}
			texts = append(texts, wrap(f.encode([]byte(filler[:off]+v+filler[:20])), f.width, f.eol, f.indent)+"end\n")
		}
	}
	for _, text := range texts {
		want := r.String(text)
		if want == text {
			t.Fatalf("nothing masked in %q", text)
		}
		assertWriterAgrees(t, r, text, want)
	}
}

// TestEachRunEndSamples checks the sampling that findHeadCuts relies on:
// on random texts of runs of the alphabets (around wrapMin long), text,
// spaces, quotes and line breaks, every line break that ends a line of
// wrapMin base64 or hex characters or more (every position skipWrapBreak
// accepts) is among the run ends eachRunEnd reports, whatever the run
// before the text.
func TestEachRunEndSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 46))
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_"
	pieces := []string{" ", "\n", "\r\n", "\"", ": ", ".", "  ", "\t", "word "}
	breaks := 0
	for i := 0; i < 3000; i++ {
		var b []byte
		for len(b) < 200+rng.IntN(300) {
			if rng.IntN(2) == 0 {
				for n := 40 + rng.IntN(45); n > 0; n-- {
					b = append(b, enc[rng.IntN(len(enc))])
				}
			}
			b = append(b, pieces[rng.IntN(len(pieces))]...)
		}
		runBefore := [...]int{0, 0, 5, wrapMin}[rng.IntN(4)]
		seen := map[int]bool{}
		eachRunEnd(b, runBefore, func(e int) { seen[e] = true })
		for q := 0; q < len(b); q++ {
			if b[q] != '\n' && b[q] != '\r' {
				continue
			}
			if _, ok := skipWrapBreak(b, q, runBefore); !ok {
				continue
			}
			breaks++
			if !seen[q] {
				t.Fatalf("text %d (run before %d): the wrap break at %d was not reported:\n%q", i, runBefore, q, b)
			}
		}
	}
	if breaks < 1000 {
		t.Fatalf("only %d wrap breaks in the texts", breaks)
	}
	t.Logf("%d wrap breaks, all reported", breaks)
}
