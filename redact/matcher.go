package redact

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// The matcher is a sampled q-gram filter (q = 4).
//
// Let m be the length of the shortest pattern and step = m - q + 1. Any
// occurrence of a pattern in the text contains a text position p that is a
// multiple of step with p - start < step, and the q bytes at p lie inside
// the occurrence. So it is enough to:
//
//   - register, for every pattern, the q-grams at offsets 0..step-1 in a
//     bitset (for the scan) and in a chained hash table (for verification);
//   - scan the text reading one q-gram every step bytes, test one bit, and
//     on a hit compare the few patterns registered under that q-gram with
//     the text at p - offset.
//
// Each occurrence is found exactly once (from its first sample position).
// The work per byte is 1/step of a load, a multiply and a bit test, whatever
// the number of patterns; the bitset grows with the number of patterns and
// the step is capped so that it stays in cache.
//
// A matcher is immutable once built; the Redactor swaps matchers atomically.

const (
	q       = 4
	hashMul = 0x9E3779B97F4A7C15
)

// pattern is one form of one value, stored in the matcher's arena.
type pattern struct {
	off, n int32
	name   int32 // index into Redactor names
}

// entry is one registered q-gram: pattern pat has gram at offset off.
type entry struct {
	gram uint32
	off  int32
	pat  int32
	next int32 // next entry in the same hash bucket; 0 ends the chain
}

// weakPattern is a form of a value shorter than MinLength, matched only as a
// whole token.
type weakPattern struct {
	s    string
	name int32
}

type matcher struct {
	arena   []byte
	pats    []pattern
	step    int
	minLen  int
	maxLen  int // longest pattern
	maxWeak int // longest weak pattern

	bits   []uint64
	bshift uint // bit index = hash >> bshift
	heads  []int32
	hshift uint // bucket = hash >> hshift
	ents   []entry

	weak []weakPattern
}

// value is a registered secret value and the index of its name.
type value struct {
	s    string
	name int32
}

// build compiles a matcher for vals. It never returns nil.
func build(vals []value) *matcher {
	f := formSet{min: MinLength}
	m := &matcher{}
	for _, v := range vals {
		if len(v.s) < MinLength {
			for _, w := range weakForms(v.s) {
				m.weak = append(m.weak, weakPattern{s: w, name: v.name})
				m.maxWeak = max(m.maxWeak, len(w))
			}
			continue
		}
		f.begin(v.name)
		f.addValue(v.s)
	}
	m.arena, m.pats = f.arena, f.pats
	if len(m.pats) == 0 {
		return m
	}
	m.minLen = int(m.pats[0].n)
	for _, p := range m.pats {
		m.minLen = min(m.minLen, int(p.n))
		m.maxLen = max(m.maxLen, int(p.n))
	}
	// The step: as large as the shortest pattern allows, but capped so that
	// the number of registered q-grams (patterns * step) keeps the bitset
	// small enough to stay in cache.
	m.step = m.minLen - q + 1
	maxStep := 16
	switch {
	case len(m.pats) > 100_000:
		maxStep = 6
	case len(m.pats) > 20_000:
		maxStep = 10
	}
	m.step = min(m.step, maxStep)

	n := len(m.pats) * m.step
	bitsLog := max(12, bitLen(n*16-1))
	headsLog := max(8, bitLen(n-1))
	m.bits = make([]uint64, 1<<(bitsLog-6))
	m.bshift = uint(64 - bitsLog)
	m.heads = make([]int32, 1<<headsLog)
	m.hshift = uint(64 - headsLog)
	m.ents = make([]entry, 1, n+1)
	for i, p := range m.pats {
		b := m.arena[p.off : p.off+p.n]
		for o := 0; o < m.step; o++ {
			g := binary.LittleEndian.Uint32(b[o:])
			h := uint64(g) * hashMul
			bi := h >> m.bshift
			m.bits[bi>>6] |= 1 << (bi & 63)
			hi := h >> m.hshift
			m.ents = append(m.ents, entry{gram: g, off: int32(o), pat: int32(i), next: m.heads[hi]})
			m.heads[hi] = int32(len(m.ents) - 1)
		}
	}
	return m
}

func bitLen(n int) int {
	l := 0
	for n > 0 {
		l++
		n >>= 1
	}
	return l
}

// span is a masked range [start, end) of the text; name is the index of the
// value's name, or -1 after merging ranges of different names.
type span struct {
	start, end int
	name       int32
}

// find appends to out every occurrence of every pattern in t. prev is the
// byte before t (for whole-token matching of weak values), or -1.
func (m *matcher) find(t []byte, prev int, out []span) []span {
	if m.step > 0 && len(t) >= m.minLen {
		out = m.scan(t, out)
	}
	for _, w := range m.weak {
		out = findWeak(t, prev, w, out)
	}
	return out
}

func (m *matcher) scan(t []byte, out []span) []span {
	bits, bshift, step := m.bits, m.bshift, m.step
	end := len(t) - q
	p := 0
	// Unrolled by two: independent loads let the CPU overlap cache misses.
	for ; p+step <= end; p += 2 * step {
		g0 := binary.LittleEndian.Uint32(t[p:])
		g1 := binary.LittleEndian.Uint32(t[p+step:])
		h0 := uint64(g0) * hashMul
		h1 := uint64(g1) * hashMul
		b0 := h0 >> bshift
		b1 := h1 >> bshift
		hit0 := bits[b0>>6] & (1 << (b0 & 63))
		hit1 := bits[b1>>6] & (1 << (b1 & 63))
		if hit0|hit1 != 0 {
			if hit0 != 0 {
				out = m.verify(t, p, g0, h0, out)
			}
			if hit1 != 0 {
				out = m.verify(t, p+step, g1, h1, out)
			}
		}
	}
	for ; p <= end; p += step {
		g := binary.LittleEndian.Uint32(t[p:])
		h := uint64(g) * hashMul
		b := h >> bshift
		if bits[b>>6]&(1<<(b&63)) != 0 {
			out = m.verify(t, p, g, h, out)
		}
	}
	return out
}

func (m *matcher) verify(t []byte, p int, g uint32, h uint64, out []span) []span {
	for e := m.heads[h>>m.hshift]; e != 0; {
		en := &m.ents[e]
		e = en.next
		if en.gram != g {
			continue
		}
		pt := m.pats[en.pat]
		start := p - int(en.off)
		end := start + int(pt.n)
		if start < 0 || end > len(t) {
			continue
		}
		if string(t[start:end]) == string(m.arena[pt.off:pt.off+pt.n]) {
			out = append(out, span{start, end, pt.name})
		}
	}
	return out
}

// isWord reports whether c is part of a word for whole-token matching:
// ASCII letters and digits, '_' and every byte of a multi-byte UTF-8 rune.
func isWord(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c >= 0x80
}

// findWeak appends the whole-token occurrences of w in t: an occurrence
// counts unless it continues a word on either side (a word character next
// to a word character at the edge of the value).
func findWeak(t []byte, prev int, w weakPattern, out []span) []span {
	first, last := isWord(w.s[0]), isWord(w.s[len(w.s)-1])
	for i := 0; i+len(w.s) <= len(t); {
		j := bytes.Index(t[i:], []byte(w.s))
		if j < 0 {
			break
		}
		start := i + j
		end := start + len(w.s)
		i = start + 1
		if first {
			if start > 0 && isWord(t[start-1]) || start == 0 && prev >= 0 && isWord(byte(prev)) {
				continue
			}
		}
		if last && end < len(t) && isWord(t[end]) {
			continue
		}
		out = append(out, span{start, end, w.name})
	}
	return out
}

// merge sorts spans and merges overlapping and adjacent ones in place.
func merge(sp []span) []span {
	if len(sp) < 2 {
		return sp
	}
	if !slices.IsSortedFunc(sp, cmpSpan) {
		slices.SortFunc(sp, cmpSpan)
	}
	w := 0
	for _, s := range sp[1:] {
		c := &sp[w]
		if s.start <= c.end {
			if s.end > c.end {
				c.end = s.end
			}
			if s.name != c.name {
				c.name = -1
			}
			continue
		}
		w++
		sp[w] = s
	}
	return sp[:w+1]
}

func cmpSpan(a, b span) int {
	if a.start != b.start {
		return a.start - b.start
	}
	return a.end - b.end
}
