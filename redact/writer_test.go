package redact

import (
	"bytes"
	"errors"
	"io"
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
		want := r.String(text)
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
}

// TestWriterHoldsBackOnlyPrefixes checks that what has been written out
// never ends with a byte that could start a value, and that the tail held
// back is bounded.
func TestWriterHoldsBack(t *testing.T) {
	r := newR(t, "K", "abcdefghij")
	var b bytes.Buffer
	w := r.NewWriter(&b)
	w.Write([]byte(strings.Repeat("x", 100) + "abcde"))
	if strings.Contains(b.String(), "a") {
		t.Fatalf("emitted a possible value start: %q", b.String())
	}
	if hold := r.snap.Load().hold; b.Len() < 105-hold {
		t.Fatalf("held back too much: %d", b.Len())
	}
	w.Write([]byte("fghij tail"))
	w.Close()
	if b.String() != strings.Repeat("x", 100)+"[REDACTED:K] tail" {
		t.Fatal(b.String())
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("write after close")
	}
}

func TestWriterChain(t *testing.T) {
	r := newR(t, "K", "abcdefgh")
	var b bytes.Buffer
	w := r.NewWriter(&b)
	for i := 0; i < 20000; i++ {
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
