package redact

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
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
// stride-th window for a long value: see derivedGrams) in a hash table
// behind a bitset filter, reads the text's windows a few bytes apart (as
// far as the shortest piece it reports allows), and extends each hit to
// the longest common piece of text and form. A whole
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
// forms indexed, and the parts of it found are at least
// MinLength+stride-1 bytes long.
const derivedGrams = 256

// Deriver finds derived values of its source values in texts. The zero
// value is not usable; call [NewDeriver] or [DeriverCache.New]. A nil
// *Deriver finds nothing.
//
// All methods are safe for concurrent use; Find never waits for Add (it
// reads an immutable index, replaced atomically).
type Deriver struct {
	cache *DeriverCache // nil: not shared

	mu   sync.Mutex // serializes Add
	srcs []derivedSource
	seen map[string]bool
	key  [sha256.Size]byte // chained hash of srcs, the cache key

	idx atomic.Pointer[derivedIndex]
}

type derivedSource struct {
	name, value string
}

// NewDeriver returns a Deriver with no sources.
func NewDeriver() *Deriver { return &Deriver{seen: map[string]bool{}} }

// Add makes value a source under name: Find reports the pieces of its
// forms. Values shorter than MinLength, and values already added, are
// ignored. Add rebuilds the index of every source (about 60 µs for a
// token), unless the Deriver's cache has the index of the same sources
// added in the same order.
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
	if d.cache == nil {
		d.idx.Store(buildDerived(d.srcs))
		return
	}
	h := sha256.New()
	h.Write(d.key[:])
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(value))
	h.Sum(d.key[:0])
	d.idx.Store(d.cache.get(d.key, d.srcs))
}

// Len returns the number of sources.
func (d *Deriver) Len() int {
	if d == nil {
		return 0
	}
	if ix := d.idx.Load(); ix != nil {
		return len(ix.names)
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

// DeriverCache shares the indexes of Derivers whose sources were added in
// the same order (the runs of one flow read the same secrets), so that a
// run pays a hash per source instead of a build. It holds at most its
// size of indexes, dropping the oldest first. It is safe for concurrent
// use.
type DeriverCache struct {
	mu    sync.Mutex // guards m and order
	size  int
	m     map[[sha256.Size]byte]*derivedIndex
	order [][sha256.Size]byte // insertion order, for eviction
}

// NewDeriverCache returns a cache of at most size indexes.
func NewDeriverCache(size int) *DeriverCache {
	return &DeriverCache{size: max(1, size), m: map[[sha256.Size]byte]*derivedIndex{}}
}

// New returns a Deriver with no sources that shares c's indexes.
func (c *DeriverCache) New() *Deriver {
	d := NewDeriver()
	d.cache = c
	return d
}

func (c *DeriverCache) get(key [sha256.Size]byte, srcs []derivedSource) *derivedIndex {
	c.mu.Lock()
	ix, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return ix
	}
	ix = buildDerived(srcs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[key]; ok {
		return prev
	}
	if len(c.order) >= c.size {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[key] = ix
	c.order = append(c.order, key)
	return ix
}

// derivedForm is one precomputed form of a source, in the index's arena.
type derivedForm struct {
	off, n int32
	name   int32
	whole  bool // only the whole form counts (a weak source)
	stride int32
}

// derivedSlot is one window of a form in the index's hash table; form is
// 1 + the form's index, 0 for an empty slot.
type derivedSlot struct {
	gram      uint64
	form, off int32
}

// derivedIndex is an immutable index of the windows of every form: a
// filter of two bits per window in one 64-bit word, and an open-addressing
// hash table of the windows.
type derivedIndex struct {
	names []string
	// boiler holds, by source, the upper-cased lines of a multi-line
	// value that are not masks of their own (PEM armor and headers, see
	// boilerplate): a part inside one is ordinary text, like the line.
	boiler [][]string
	arena  string
	forms  []derivedForm
	bits   []uint64
	bshift uint
	slots  []derivedSlot
	smask  uint64
	// step is how far apart find reads windows: minLen-MinLength+1,
	// minLen being the shortest piece it reports (a whole form, or
	// minPart), or 1 when a long value's windows are strided.
	step int
}

func buildDerived(srcs []derivedSource) *derivedIndex {
	ix := &derivedIndex{}
	var arena []byte
	for i, src := range srcs {
		ix.names = append(ix.names, src.name)
		ix.boiler = append(ix.boiler, boilerLines(src.value))
		whole := Weak(src.value)
		stride := int32(max(1, (len(src.value)+derivedGrams-1)/derivedGrams))
		first := len(ix.forms)
		arena = appendDerivedForms(arena, src.value, func(arena []byte, off, n int) bool {
			for _, f := range ix.forms[first:] {
				if int(f.n) == n && string(arena[f.off:f.off+f.n]) == string(arena[off:off+n]) {
					return false
				}
			}
			ix.forms = append(ix.forms, derivedForm{off: int32(off), n: int32(n), name: int32(i), whole: whole, stride: stride})
			return true
		})
	}
	ix.arena = string(arena)
	minLen := minPart
	for _, f := range ix.forms {
		minLen = min(minLen, int(f.n))
		if f.stride > 1 {
			minLen = MinLength
		}
	}
	ix.step = minLen - MinLength + 1
	grams := 0
	for _, f := range ix.forms {
		grams += int((f.n-MinLength)/f.stride) + 2
	}
	// The filter: 32 to 64 bits per window (two of them set), so that a
	// window of ordinary text passes with a chance of about 1 in 250.
	log := 12
	for 1<<log < 32*grams {
		log++
	}
	ix.bits = make([]uint64, 1<<(log-6))
	ix.bshift = uint(64 - (log - 6))
	tlog := 4
	for 1<<tlog < 2*grams {
		tlog++
	}
	ix.slots = make([]derivedSlot, 1<<tlog)
	ix.smask = 1<<tlog - 1
	for fi, f := range ix.forms {
		last := int(f.n) - MinLength
		for off := 0; off <= last; off += int(f.stride) {
			ix.put(fi, off)
		}
		if last%int(f.stride) != 0 { // the last window, so that a whole form is found
			ix.put(fi, last)
		}
	}
	return ix
}

func (ix *derivedIndex) put(fi, off int) {
	f := ix.forms[fi]
	g := gramOf(ix.arena, int(f.off)+off)
	h := g * hashMul
	ix.bits[h>>ix.bshift] |= 1<<(h&63) | 1<<(h>>6&63)
	for k := h >> 12 & ix.smask; ; k = (k + 1) & ix.smask {
		if ix.slots[k].form == 0 {
			ix.slots[k] = derivedSlot{gram: g, form: int32(fi) + 1, off: int32(off)}
			return
		}
	}
}

// gramOf packs the MinLength bytes of s at off into a uint64.
func gramOf(s string, off int) uint64 {
	var g uint64
	for i := MinLength - 1; i >= 0; i-- {
		g = g<<8 | uint64(s[off+i])
	}
	return g
}

// minPart is the length of the shortest text that is not weak (see
// Weak: nine distinct bytes carry 28.5 bits, ten 33.2), so the shortest
// part of a form that find reports.
const minPart = 10

// find appends to out the pieces of s that are long pieces of some form.
// Every piece it reports is at least ix.minLen bytes long, so reading the
// window at every ix.step-th position finds each.
func (ix *derivedIndex) find(s string, out []Derived) []Derived {
	var seen map[string]bool
	covered := 0         // end of the last piece found: windows inside it are skipped
	lastA, lastB := 0, 0 // the last piece reported
	const mask = 1<<(8*MinLength) - 1
	for start := 0; start+MinLength <= len(s); start += ix.step {
		if start+MinLength <= covered {
			continue
		}
		var g uint64
		if start+8 <= len(s) {
			g = binary.LittleEndian.Uint64(bytesOf(s[start:])) & mask
		} else {
			g = gramOf(s, start)
		}
		h := g * hashMul
		if w := ix.bits[h>>ix.bshift]; w&(1<<(h&63)) == 0 || w&(1<<(h>>6&63)) == 0 {
			continue
		}
		// The longest piece this window is part of: a shorter one of
		// another form (the value's JSON escaping, which holds the value's
		// beginning) would be a mask of its own for nothing.
		bestA, bestB, bestName := 0, 0, int32(-1)
		for k := h >> 12 & ix.smask; ix.slots[k].form != 0; k = (k + 1) & ix.smask {
			sl := ix.slots[k]
			if sl.gram != g {
				continue
			}
			f := &ix.forms[sl.form-1]
			fs := ix.arena[f.off : f.off+f.n]
			a, c := start, int(sl.off)
			for a > 0 && c > 0 && s[a-1] == fs[c-1] {
				a, c = a-1, c-1
			}
			b, e := start+MinLength, int(sl.off)+MinLength
			for b < len(s) && e < len(fs) && s[b] == fs[e] {
				b, e = b+1, e+1
			}
			if whole := c == 0 && e == len(fs); !whole && (f.whole || b-a < MinLength+int(f.stride)-1 || Weak(s[a:b]) || ix.inBoiler(f.name, s[a:b])) {
				continue
			}
			if b-a > bestB-bestA {
				bestA, bestB, bestName = a, b, f.name
			}
		}
		if bestName < 0 || bestA >= lastA && bestB <= lastB {
			continue // none, or inside the last piece reported
		}
		covered = max(covered, bestB)
		lastA, lastB = bestA, bestB
		p := s[bestA:bestB]
		if seen[p] {
			continue
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		seen[p] = true
		out = append(out, Derived{Name: ix.names[bestName], Text: strings.Clone(p)})
	}
	return out
}

// boilerLines returns the upper-cased boilerplate lines of a multi-line
// value (those addValue does not register on their own).
func boilerLines(v string) []string {
	if !strings.ContainsAny(v, "\r\n") {
		return nil
	}
	lf := strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", "\n"), "\r", "\n")
	armored := strings.Contains(lf, "-----")
	var out []string
	for _, line := range strings.Split(lf, "\n") {
		if line = strings.TrimSpace(line); line != "" && boilerplate(line, armored) {
			out = append(out, strings.ToUpper(line))
		}
	}
	return out
}

// inBoiler reports whether the part p of a form of source src lies inside
// one of its boilerplate lines (as it is, cased or reversed).
func (ix *derivedIndex) inBoiler(src int32, p string) bool {
	lines := ix.boiler[src]
	if len(lines) == 0 {
		return false
	}
	t := strings.TrimSpace(p)
	if strings.HasPrefix(t, "-----") || strings.HasSuffix(t, "-----") {
		return true
	}
	up, rev := strings.ToUpper(t), strings.ToUpper(reverseRunes(t))
	for _, l := range lines {
		if strings.Contains(l, up) || strings.Contains(l, rev) {
			return true
		}
	}
	return false
}

// appendDerivedForms appends to arena the forms of v that derived pieces
// are looked for in, calling keep(arena, off, n) for each
// (arena[off:off+n]); a form keep refuses (a duplicate) is dropped again.
func appendDerivedForms(arena []byte, v string, keep func(arena []byte, off, n int) bool) []byte {
	rev := reverseRunes(v)
	var f formSet
	bases := []string{v, strings.ToUpper(v), strings.ToLower(v), rev, strings.ToUpper(rev), strings.ToLower(rev)}
	if strings.Contains(v, "+") {
		// The value as a query string or a form reads it: '+' is a space
		// (a service that echoes the key it was sent, cut).
		bases = append(bases, strings.ReplaceAll(v, "+", " "))
	}
	for bi, b := range bases {
		for k := 0; k < 10; k++ {
			s := len(arena)
			switch k {
			case 0:
				arena = append(arena, b...)
			case 1:
				arena = appendJSONEscape(arena, b, 0)
			case 2:
				arena = appendURLEscape(arena, b, &urlComponent, false, true)
			case 3:
				arena = appendJSEscape(arena, b)
			case 4, 5, 6:
				f.arena = f.arena[:0]
				f.appendBase64Core(base64.RawStdEncoding, latin1(b), k-4)
				arena = append(arena, f.arena...)
			case 7, 8, 9:
				f.arena = f.arena[:0]
				f.appendBase64Core(base64.RawStdEncoding, latin1(b), k-7)
				arena = appendURLEscape(arena, f.arena, &urlQuery, true, true)
			}
			if n := len(arena) - s; n < MinLength || !keep(arena, s, n) {
				if k == 0 && n >= MinLength && bi > 0 {
					arena = arena[:s]
					break // a base equal to an earlier one has the same forms
				}
				arena = arena[:s]
			}
		}
	}
	// The value escaped character by character, as code writes it to get
	// it past a check (every byte percent-escaped, every character a
	// JavaScript \u escape or an XML character reference): a receiver
	// decodes each back to the value.
	for k := 0; k < 5; k++ {
		s := len(arena)
		for _, c := range []byte(v) {
			switch k {
			case 0:
				arena = append(arena, '%', hexUpper[c>>4], hexUpper[c&15])
			case 1:
				arena = append(arena, '%', hexLower[c>>4], hexLower[c&15])
			case 2:
				arena = append(arena, '\\', 'u', '0', '0', hexLower[c>>4], hexLower[c&15])
			case 3:
				arena = append(arena, '&', '#')
				arena = strconv.AppendInt(arena, int64(c), 10)
				arena = append(arena, ';')
			case 4:
				arena = append(arena, '&', '#', 'x', hexLower[c>>4], hexLower[c&15], ';')
			}
		}
		if n := len(arena) - s; n < MinLength || !keep(arena, s, n) {
			arena = arena[:s]
		}
	}
	return arena
}

const hexUpper, hexLower = "0123456789ABCDEF", "0123456789abcdef"

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

// appendJSEscape appends JavaScript's escape() of v: letters, digits and
// @*_+-./ as they are, other code units below 256 as %XX, the rest as
// %uXXXX.
func appendJSEscape(dst []byte, v string) []byte {
	const hexDigits = "0123456789ABCDEF"
	for _, r := range v {
		switch {
		case r < 128 && (urlQuery[r] && r != '~' || strings.ContainsRune("@*+/", r)):
			dst = append(dst, byte(r))
		case r < 256:
			dst = append(dst, '%', hexDigits[r>>4], hexDigits[r&15])
		default:
			units := []rune{r}
			if r >= 0x10000 {
				r -= 0x10000
				units = []rune{0xD800 + r>>10, 0xDC00 + r&0x3ff}
			}
			for _, u := range units {
				dst = append(dst, '%', 'u', hexDigits[u>>12&15], hexDigits[u>>8&15], hexDigits[u>>4&15], hexDigits[u&15])
			}
		}
	}
	return dst
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
