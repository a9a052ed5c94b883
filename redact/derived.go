package redact

import (
	"encoding/base64"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// This file finds derived values: text a script computed from a secret's
// value with the common string operations (a slice, the value upper-cased
// or reversed, btoa('user:' + value), encodeURIComponent of a slice...),
// which the Redactor, knowing only the value and its encodings, does not
// recognise.
//
// It does not track operations inside the script. It looks at the text
// that leaves the script (a log line, a result, an error) for long enough
// pieces of precomputed forms of each source value: the value, upper- and
// lower-cased, reversed (by code points), and these reversed forms cased;
// each of them as it is, JSON-escaped (JSON.stringify), escaped by
// encodeURIComponent and by escape(), and base64-encoded (btoa) at each of
// the three byte alignments, also with '+', '/' and '=' percent-escaped. A
// slice, trim, padding, concatenation or template of any of these holds a
// piece of one of them; split + join with '', Array.from + join and
// String.fromCharCode of the value's code points give the value itself;
// replace and replaceAll keep the pieces between the replacements. The
// piece found (the derived text itself, as it appears) is what the caller
// registers as a mask, under the source's name.
//
// The search indexes every MinLength-byte window of every form (every
// stride-th window for a long value: see derivedStride) in a hash table
// behind a bitset filter, reads the text's windows one byte apart, and
// extends each hit to the longest common piece of text and form. A whole
// form is always reported. A part of a form is reported when it is not
// weak itself (see Weak: at least MinLength bytes and 32 bits by its own
// character frequencies, about 10 characters of a random token), so that
// "sk_live_" or "password" of a value that holds them does not mask the
// word wherever a run shows it; for a weak source only a whole form
// counts.
//
// What is not found: arithmetic on character codes (a shifted alphabet, a
// checksum), a hash or a ciphertext of a value (they are not the value),
// pieces shorter than MinLength (what split and join leave between
// separators inserted every few characters), and encodings of a
// transformation that are not listed (base32 of the upper-cased value).

// Derived is a piece of a text computed from a source value: Text is the
// piece as it appears in the text, Name the name its source was added
// with.
type Derived struct {
	Name string
	Text string
}

// derivedGrams bounds the windows indexed per form of a long value: a
// value of more than derivedGrams bytes has every stride-th window of its
// forms indexed, and the pieces of it found are at least
// MinLength+stride-1 bytes long.
const derivedGrams = 256

// Deriver finds derived values of its source values in texts. The zero
// value is not usable; call [NewDeriver]. A nil *Deriver finds nothing.
//
// All methods are safe for concurrent use; Find never waits for Add (it
// reads an immutable index, replaced atomically).
type Deriver struct {
	mu   sync.Mutex // serializes Add
	srcs []derivedSource
	seen map[string]bool

	idx atomic.Pointer[derivedIndex]
}

type derivedSource struct {
	name, value string
}

// NewDeriver returns a Deriver with no sources.
func NewDeriver() *Deriver { return &Deriver{seen: map[string]bool{}} }

// Add makes value a source under name: Find reports the pieces of its
// forms. Values shorter than MinLength, and values already added, are
// ignored. Add rebuilds the index of every source (tens of microseconds
// for a token; a run reads a few secrets).
func (d *Deriver) Add(name, value string) {
	if d == nil || len(value) < MinLength {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen[value] {
		return
	}
	d.seen[value] = true
	d.srcs = append(d.srcs, derivedSource{name, value})
	d.idx.Store(buildDerived(d.srcs))
}

// Len returns the number of sources.
func (d *Deriver) Len() int {
	if d == nil {
		return 0
	}
	if ix := d.idx.Load(); ix != nil {
		return ix.n
	}
	return 0
}

// Find returns the derived pieces in s, each once, in the order found.
// Without sources it returns at once.
func (d *Deriver) Find(s string) []Derived {
	if d == nil {
		return nil
	}
	ix := d.idx.Load()
	if ix == nil || len(s) < MinLength {
		return nil
	}
	return ix.find(s, nil)
}

// derivedForm is one precomputed form of a source.
type derivedForm struct {
	s      string
	name   int32
	whole  bool // only the whole form counts (a weak source)
	stride int
}

type derivedLoc struct {
	form, off int32
}

// derivedIndex is an immutable index of the windows of every form.
type derivedIndex struct {
	n      int
	names  []string
	forms  []derivedForm
	table  map[uint64][]derivedLoc
	bits   []uint64
	bshift uint
}

func buildDerived(srcs []derivedSource) *derivedIndex {
	ix := &derivedIndex{n: len(srcs), table: map[uint64][]derivedLoc{}}
	for i, src := range srcs {
		ix.names = append(ix.names, src.name)
		whole := Weak(src.value)
		stride := max(1, (len(src.value)+derivedGrams-1)/derivedGrams)
		for _, f := range derivedForms(src.value) {
			ix.forms = append(ix.forms, derivedForm{s: f, name: int32(i), whole: whole, stride: stride})
		}
	}
	grams := 0
	for _, f := range ix.forms {
		grams += (len(f.s)-MinLength)/f.stride + 1
	}
	// 16 to 32 bits per window: a window of ordinary text passes the
	// filter with a chance of about 1 in 16 or less.
	log := 10
	for 1<<log < 16*grams {
		log++
	}
	ix.bits = make([]uint64, 1<<(log-6))
	ix.bshift = uint(64 - log)
	for fi, f := range ix.forms {
		last := len(f.s) - MinLength
		for off := 0; off <= last; off += f.stride {
			ix.put(gramOf(f.s, off), derivedLoc{int32(fi), int32(off)})
		}
		if last%f.stride != 0 { // the last window, so that a whole form is found
			ix.put(gramOf(f.s, last), derivedLoc{int32(fi), int32(last)})
		}
	}
	return ix
}

func (ix *derivedIndex) put(g uint64, l derivedLoc) {
	h := (g * hashMul) >> ix.bshift
	ix.bits[h>>6] |= 1 << (h & 63)
	ix.table[g] = append(ix.table[g], l)
}

// gramOf packs the MinLength bytes of s at off into a uint64.
func gramOf(s string, off int) uint64 {
	var g uint64
	for i := MinLength - 1; i >= 0; i-- {
		g = g<<8 | uint64(s[off+i])
	}
	return g
}

// find appends to out the pieces of s that are long pieces of some form.
func (ix *derivedIndex) find(s string, out []Derived) []Derived {
	var seen map[string]bool
	covered := 0 // end of the last piece found: windows inside it are skipped
	const top = 64 - 8*MinLength
	g := uint64(0)
	for i := 0; i < len(s); i++ {
		g = g>>8 | uint64(s[i])<<(8*(MinLength-1))
		start := i - MinLength + 1
		if start < 0 || i < covered {
			continue
		}
		h := ((g << top >> top) * hashMul) >> ix.bshift
		if ix.bits[h>>6]&(1<<(h&63)) == 0 {
			continue
		}
		for _, l := range ix.table[g<<top>>top] {
			f := &ix.forms[l.form]
			a, c := start, int(l.off)
			for a > 0 && c > 0 && s[a-1] == f.s[c-1] {
				a, c = a-1, c-1
			}
			b, e := i+1, int(l.off)+MinLength
			for b < len(s) && e < len(f.s) && s[b] == f.s[e] {
				b, e = b+1, e+1
			}
			if whole := c == 0 && e == len(f.s); !whole && (f.whole || b-a < MinLength+f.stride-1 || Weak(s[a:b])) {
				continue
			}
			covered = max(covered, b)
			p := s[a:b]
			if seen[p] {
				continue
			}
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[p] = true
			out = append(out, Derived{Name: ix.names[f.name], Text: strings.Clone(p)})
		}
	}
	return out
}

// derivedForms returns the forms of v that derived pieces are looked for
// in, without duplicates.
func derivedForms(v string) []string {
	rev := reverseRunes(v)
	bases := []string{v, strings.ToUpper(v), strings.ToLower(v), rev, strings.ToUpper(rev), strings.ToLower(rev)}
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if len(f) >= MinLength && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, b := range bases {
		if seen[b] {
			continue
		}
		add(b)
		add(string(appendJSONEscape(nil, b, 0)))
		add(string(appendURLEscape(nil, b, &urlComponent, false, true)))
		add(jsEscape(b))
		raw := latin1(b)
		for k := 0; k < 3; k++ {
			var f formSet
			f.appendBase64Core(base64.RawStdEncoding, raw, k)
			add(string(f.arena))
			add(string(appendURLEscape(nil, f.arena, &urlQuery, true, true)))
		}
	}
	return out
}

// reverseRunes returns v with its code points in reverse order, as
// Array.from(v).reverse().join(”) gives it (split(”).reverse() is the
// same for characters of the Basic Multilingual Plane).
func reverseRunes(v string) string {
	b := make([]byte, 0, len(v))
	for i := len(v); i > 0; {
		_, n := utf8.DecodeLastRuneInString(v[:i])
		b = append(b, v[i-n:i]...)
		i -= n
	}
	return string(b)
}

// latin1 returns the bytes btoa encodes for v: each code point as one byte
// when all are below 256 (btoa refuses others; v's UTF-8 bytes then).
func latin1(v string) string {
	b := make([]byte, 0, len(v))
	for _, r := range v {
		if r >= 256 {
			return v
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// jsEscape is JavaScript's escape(): letters, digits and @*_+-./ as they
// are, other code units below 256 as %XX, the rest as %uXXXX.
func jsEscape(v string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for _, r := range v {
		switch {
		case r < 128 && (urlQuery[r] && r != '~' || strings.ContainsRune("@*+/", r)):
			b.WriteRune(r)
		case r < 256:
			b.WriteByte('%')
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&15])
		default:
			var units []rune
			if r >= 0x10000 {
				r -= 0x10000
				units = []rune{0xD800 + r>>10, 0xDC00 + r&0x3ff}
			} else {
				units = []rune{r}
			}
			for _, u := range units {
				b.WriteString("%u")
				for sh := 12; sh >= 0; sh -= 4 {
					b.WriteByte(hexDigits[u>>sh&15])
				}
			}
		}
	}
	return b.String()
}

// Covers reports whether the registered values mask all of s: s is one of
// their forms, or forms of them side by side. A caller that found a
// derived piece registers it only when it is not covered already (the
// value itself, JSON.stringify of it).
func (r *Redactor) Covers(s string) bool {
	snap := r.load()
	if snap == nil || s == "" {
		return false
	}
	sp := snap.find(bytesOf(s), -1, 0, nil)
	return len(sp) == 1 && sp[0].start == 0 && sp[0].end == len(s)
}
