package redact

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// The matcher is a sampled q-gram filter (q = 8 when every pattern is at
// least 12 bytes long, q = 4 otherwise).
//
// Let m be the length of the shortest pattern and step = m - q + 1. Any
// occurrence of a pattern in the text contains a text position p that is a
// multiple of step with p - start < step, and the q bytes at p lie inside
// the occurrence. So it is enough to:
//
//   - register, for every pattern, the q-grams at offsets 0..step-1 in a
//     bitset (a blocked Bloom filter: three bits in one 64-bit word), and
//     the offset of each in offs (a table of 8-bit masks of offsets mod 8,
//     indexed by another hash of the q-gram);
//   - register every pattern in a hash table keyed by its first plen bytes
//     (plen = min(m, 16));
//   - scan the text reading one q-gram every step bytes and test its three
//     bits; on a hit at p, read the offsets o that q-gram has in some
//     pattern, look up only those candidate starts p-o by the hash of
//     their plen bytes and compare the few patterns found with the text.
//
// Each candidate start is looked up at most once (from the one sample
// position after it), so each occurrence is found exactly once. Keying the
// verification on the whole prefix rather than on the q-gram keeps it cheap
// when many values share a q-gram (10,000 tokens that all begin with
// "sk_live_"), and stores one entry per pattern rather than step.
// The work per byte is 1/step of a load, two multiplies, a table load and
// a bit test, whatever the number of patterns; the bitset grows with the
// number of patterns up to 2 MiB, and the step is capped so that it keeps
// at least 8 bits per registered q-gram. Chance hits cost one load in offs
// (most q-grams that pass the bitset have no offset there), and hits are
// verified in small batches so that their cache misses overlap.
//
// A matcher is immutable once built; the Redactor swaps matchers atomically.

const hashMul = 0x9E3779B97F4A7C15

// pattern is one form of one value, stored in the matcher's arena.
type pattern struct {
	off, n int32
	name   int32 // index into Redactor names
	// ext is 1 + the index of a longer pattern that starts with this one
	// (the unpadded and padded base64 of a value after its aligned form),
	// or 0. After a match, the match is extended over ext while the text
	// continues with it.
	ext    int32
	noScan bool // only reached through ext; not in the filter
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
	q       int    // q-gram length, 4 to 8
	qmask   uint64 // the low q bytes
	step    int
	minLen  int
	maxLen  int // longest pattern
	maxWeak int // longest weak pattern
	// startBytes[j] has bit c set when some pattern has byte c at position
	// j (j < 16): a quick test of whether a short suffix of a stream can
	// be the start of a pattern.
	startBytes [16][4]uint64
	// anyBytes has bit c set when some pattern or weak pattern has byte c
	// anywhere: a suffix of a stream with another byte starts no pattern.
	anyBytes [4]uint64

	bits   []uint64
	bshift uint     // word index = hash >> bshift
	plen   int      // verification key: the first plen bytes of a pattern
	pheads []int32  // bucket -> 1 + first pattern index, 0 for none
	pnext  []int32  // pattern index -> 1 + next pattern in its bucket
	pshift uint     // bucket = prefix hash >> pshift
	pbits  []uint64 // filter on prefix hashes, 16 bits per pattern: spares most bucket loads
	pbsh   uint     // bit index = prefix hash >> pbsh
	// offs maps a q-gram (by a second hash) to the offsets 0..step-1 at
	// which some pattern has it, mod 8 (bit o&7): after a bitset hit at p
	// only the starts p-o for those offsets are looked up, and most chance
	// hits stop here. Folding the offsets into 8 bits halves the table,
	// which is filled by random access when the matcher is built.
	offs   []uint8
	oshift uint

	weak []weakPattern
}

// value is a registered secret value and the index of its name.
type value struct {
	s    string
	name int32
}

// build compiles a matcher for vals. It never returns nil.
func build(vals []value) *matcher {
	size := 0
	for _, v := range vals {
		size += len(v.s)
	}
	// About 20 bytes of forms per byte of value and 16 forms per value.
	f := formSet{min: MinLength, arena: make([]byte, 0, 20*size), pats: make([]pattern, 0, 16*len(vals))}
	m := &matcher{}
	for _, v := range vals {
		if len(v.s) < MinLength {
			for _, w := range weakForms(v.s) {
				m.weak = append(m.weak, weakPattern{s: w, name: v.name})
				m.maxWeak = max(m.maxWeak, len(w))
				for i := 0; i < len(w); i++ {
					m.anyBytes[w[i]>>6] |= 1 << (w[i] & 63)
				}
			}
			continue
		}
		f.begin(v.name)
		f.addValue(v.s)
	}
	m.arena, m.pats = f.arena, f.pats
	if len(m.pats) > 0 {
		// A form's bytes are its value's, the letters and digits and the
		// punctuation of the escapings (CR and LF for a multi-line
		// value's line ends): a superset, found without reading the
		// arena (about 20 times the values' size).
		for i := range m.anyBytes {
			m.anyBytes[i] |= formBytes[i]
		}
		for _, v := range vals {
			if len(v.s) >= MinLength {
				for i := 0; i < len(v.s); i++ {
					m.anyBytes[v.s[i]>>6] |= 1 << (v.s[i] & 63)
				}
				if strings.ContainsAny(v.s, "\r\n") {
					m.anyBytes[0] |= 1<<'\r' | 1<<'\n'
				}
			}
		}
	}
	if len(m.pats) == 0 {
		return m
	}
	m.minLen = math.MaxInt
	scanned := 0
	for _, p := range m.pats {
		m.maxLen = max(m.maxLen, int(p.n))
		for j, c := range m.arena[p.off : p.off+min(p.n, 16)] {
			m.startBytes[j][c>>6] |= 1 << (c & 63)
		}
		if !p.noScan {
			m.minLen = min(m.minLen, int(p.n))
			scanned++
		}
	}
	if scanned == 0 {
		return m
	}
	// The step: as large as the shortest pattern allows, but capped so that
	// the number of registered q-grams (patterns * step) keeps the bitset
	// small enough to stay in cache.
	// q = 8 makes chance q-gram matches in ordinary text rare; shorter
	// patterns need q = 4 (q = 4 with long patterns measured 2x slower:
	// too many true q-gram hits to verify).
	m.q = 4
	if m.minLen >= 12 {
		m.q = 8
	}
	m.qmask = ^uint64(0) >> (64 - 8*m.q)
	m.step = m.minLen - m.q + 1
	// The bitset is capped at 2 MiB (measured at 10,000 values: 4 MiB and
	// more made the scan slower, not faster, although fewer chance hits
	// reached verify); the step is capped so that it keeps at least 8 bits
	// per registered q-gram. (It used to be capped at 6 above 100,000
	// patterns to keep the bitset small; with chance hits made cheap by
	// offs, the full step of 9 for 16-byte values measured 25% faster.)
	const maxBitsLog = 18 // words: 2 MiB
	m.step = min(m.step, 16, max(2, (64<<maxBitsLog)/8/scanned))

	n := scanned * m.step
	// Bitset: 16 to 32 bits per registered q-gram (three of them set) up
	// to 2 MiB, at least 64 KiB; a text q-gram that no pattern has passes
	// with probability about (3/bits per q-gram)^3 (a little more: the
	// three bits share one word).
	wordsLog := min(max(13, bitLen(n/4-1)), maxBitsLog)
	m.bits = make([]uint64, 1<<wordsLog)
	m.bshift = uint(64 - wordsLog)
	m.plen = min(m.minLen, 16)
	headsLog := max(6, bitLen(scanned-1)) // at most one pattern per bucket on average
	m.pheads = make([]int32, 1<<headsLog)
	m.pshift = uint(64 - headsLog)
	m.pnext = make([]int32, len(m.pats))
	offsLog := max(8, bitLen(n/2-1))
	m.offs = make([]uint8, 1<<offsLog)
	m.oshift = uint(64 - offsLog)
	pbLog := max(9, bitLen(16*scanned-1))
	m.pbits = make([]uint64, 1<<(pbLog-6))
	m.pbsh = uint(64 - pbLog)
	// The q-grams of a pattern are those of its first step+q-1 bytes; the
	// forms of one value often share them (the value and its escapings up
	// to the first character escaped), and their registration is random
	// access into tables larger than the cache: skip a pattern whose head
	// equals that of a recent one (recent: by a hash of the head).
	head := m.step + m.q - 1
	var recent [256]int32 // 1 + index of a pattern by the hash of its head
	for i, p := range m.pats {
		if p.noScan {
			continue
		}
		b := m.arena[p.off : p.off+p.n]
		dup := false
		if head >= 8 {
			hh := (binary.LittleEndian.Uint64(b)*hashMul ^ binary.LittleEndian.Uint64(b[head-8:])) * maskMul >> 56
			if r := recent[hh]; r != 0 {
				pr := &m.pats[r-1]
				dup = string(m.arena[pr.off:pr.off+int32(head)]) == string(b[:head])
			}
			if !dup {
				recent[hh] = int32(i + 1)
			}
		}
		for o := 0; o < m.step && !dup; o++ {
			g := m.gram(b[o:])
			h := g * hashMul
			m.bits[h>>m.bshift] |= bitMasks[g*maskMul>>maskShift]
			m.offs[offsHash(h)>>m.oshift] |= 1 << (o & 7)
		}
		ph := m.prefixHash(b)
		m.pbits[ph>>m.pbsh>>6] |= 1 << (ph >> m.pbsh & 63)
		hi := ph >> m.pshift
		m.pnext[i] = m.pheads[hi]
		m.pheads[hi] = int32(i + 1)
	}
	return m
}

// formBytes has the bytes that escapings and encodings put in a form
// besides the value's own: letters, digits and +/=-_%\&#;'".
var formBytes = func() (b [4]uint64) {
	for c := 0; c < 256; c++ {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(`+/=-_%\&#;'"`, byte(c)) >= 0 {
			b[c>>6] |= 1 << (c & 63)
		}
	}
	return b
}()

// bitMasks holds the masks of three bits that a q-gram g sets and tests
// in its bitset word: bitMasks[g*maskMul>>maskShift]. A table lookup
// rather than three shifts by computed amounts.
var bitMasks = func() (t [1 << (64 - maskShift)]uint64) {
	x := uint64(1)
	for i := range t {
		for bits.OnesCount64(t[i]) < 3 {
			x = x*6364136223846793005 + 1442695040888963407
			t[i] |= 1 << (x >> 58)
		}
	}
	return t
}()

const (
	maskMul   = 0xD6E8FEB86659FD93
	maskShift = 54 // 1,024 masks
)

// gram returns the q-gram at the start of b (len(b) >= q).
func (m *matcher) gram(b []byte) uint64 {
	if len(b) >= 8 {
		return binary.LittleEndian.Uint64(b) & m.qmask
	}
	var buf [8]byte
	copy(buf[:], b[:m.q])
	return binary.LittleEndian.Uint64(buf[:])
}

// offsHash rehashes a q-gram hash for the offs table, independently of the
// bits that index the bitset.
func offsHash(h uint64) uint64 {
	return (h ^ h>>29) * 0xBF58476D1CE4E5B9
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
	wrap       bool // the occurrence crosses line breaks (see wrapped.go)
}

// find appends to out every occurrence of every pattern in t. prev is the
// byte before t (for whole-token matching of weak values), or -1;
// runBefore is the length of the run of base64 or hex characters that ends
// just before t (see wrapped.go), or 0.
func (m *matcher) find(t []byte, prev, runBefore int, out []span) []span {
	if m.step > 0 && len(t) >= m.minLen {
		n := len(out)
		out = m.scan(t, out)
		out = m.resolveWrapped(t, out, n, runBefore)
	}
	for _, w := range m.weak {
		out = findWeak(t, prev, w, out)
	}
	return out
}

// scan is the hot loop: every step bytes one 8-byte load (masked to q
// bytes), two multiplies (one chooses the bitset word, the other the mask
// of three bits to test in it, from a table: no variable shifts, which
// amd64 code without BMI2 serializes on CX), one load of the word. It is
// unrolled by two so that the CPU overlaps the independent bitset loads.
// Hits are collected and verified in batches (verify), so that the
// dependent loads of one verification overlap with those of others
// instead of stalling the scan one hit at a time.
func (m *matcher) scan(t []byte, out []span) []span {
	bits, bshift, step, qmask := m.bits, m.bshift&63, m.step, m.qmask
	var hits [hitBatch]int
	nh := 0
	p := 0
	for ; p+step+8 <= len(t); p += 2 * step {
		w := t[p : p+step+8] // one bounds check for both loads
		g0 := binary.LittleEndian.Uint64(w) & qmask
		g1 := binary.LittleEndian.Uint64(w[step:]) & qmask
		m0, m1 := bitMasks[g0*maskMul>>maskShift], bitMasks[g1*maskMul>>maskShift]
		x0 := bits[g0*hashMul>>bshift]&m0 ^ m0
		x1 := bits[g1*hashMul>>bshift]&m1 ^ m1
		if x0 == 0 || x1 == 0 {
			if nh > len(hits)-2 {
				out = m.verify(t, hits[:nh], out)
				nh = 0
			}
			if x0 == 0 {
				hits[nh] = p
				nh++
			}
			if x1 == 0 {
				hits[nh] = p + step
				nh++
			}
		}
	}
	for ; p+m.q <= len(t); p += step {
		g := m.gram(t[p:])
		if mk := bitMasks[g*maskMul>>maskShift]; bits[g*hashMul>>bshift]&mk == mk {
			if nh == len(hits) {
				out = m.verify(t, hits[:nh], out)
				nh = 0
			}
			hits[nh] = p
			nh++
		}
	}
	return m.verify(t, hits[:nh], out)
}

// hitBatch is the number of bitset hits verified together: small enough
// that the text around them is still in the L1 or L2 cache.
const hitBatch = 8

// verify looks up the candidate starts after bitset hits at the positions
// ps, in stages over the whole batch so that the loads of one stage are
// independent: the offsets each hit's q-gram has in some pattern (offs),
// then the prefix filter (pbits) for each candidate start p-o, then the
// patterns with that prefix hash, compared exactly.
func (m *matcher) verify(t []byte, ps []int, out []span) []span {
	if len(ps) == 0 {
		return out // before the arrays below are cleared: a short text has no hit
	}
	var oms [hitBatch]uint8
	ps = ps[:min(len(ps), hitBatch)]
	for i, p := range ps {
		oms[i] = m.offs[offsHash(m.gram(t[p:])*hashMul)>>m.oshift]
	}
	var starts [hitBatch * 16]int
	var phs [hitBatch * 16]uint64
	nc := 0
	for i, p := range ps {
		for om := oms[i]; om != 0; om &= om - 1 {
			for o := bits.TrailingZeros8(om); o < m.step; o += 8 {
				start := p - o
				if start < 0 || start+m.plen > len(t) {
					continue
				}
				ph := m.prefixHash(t[start:])
				if m.pbits[ph>>m.pbsh>>6]&(1<<(ph>>m.pbsh&63)) == 0 {
					continue
				}
				starts[nc], phs[nc] = start, ph
				nc++
			}
		}
	}
	for c, start := range starts[:nc] {
		for x := m.pheads[phs[c]>>m.pshift]; x != 0; {
			pi := x - 1
			pt := &m.pats[pi]
			x = m.pnext[pi]
			end := start + int(pt.n)
			if end > len(t) || string(t[start:end]) != string(m.arena[pt.off:pt.off+pt.n]) {
				// A line break of a wrapped base64 or hex dump may cut
				// the form after its head: noted for resolveWrapped
				// (which the scan's registers are spared).
				out = append(out, span{start: start, end: int(pi), name: wrapCandidate})
				continue
			}
			for e := pt.ext; e != 0; {
				ep := &m.pats[e-1]
				if start+int(ep.n) > len(t) || string(t[start:start+int(ep.n)]) != string(m.arena[ep.off:ep.off+ep.n]) {
					break
				}
				end, e = start+int(ep.n), ep.ext
			}
			out = append(out, span{start: start, end: end, name: pt.name})
		}
	}
	return out
}

// wrapCandidate marks, in the spans verify appends, a candidate start whose
// comparison with a pattern failed (end holds the pattern's index).
const wrapCandidate = -2

// resolveWrapped replaces the candidates verify noted in out[from:] by the
// occurrences that a wrapped dump's line breaks cut after the form's head
// (see wrapped.go), and drops the others.
func (m *matcher) resolveWrapped(t []byte, out []span, from, runBefore int) []span {
	w := from
	for _, x := range out[from:] {
		if x.name == wrapCandidate {
			pt := &m.pats[x.end]
			e, ok := wrappedMatch(t, x.start, m.arena[pt.off:pt.off+pt.n], m.step+m.q-1, runBefore)
			if !ok {
				continue
			}
			x = span{start: x.start, end: e, name: pt.name, wrap: true}
		}
		out[w] = x
		w++
	}
	return out[:w]
}

// prefixHash hashes the first plen bytes of b (len(b) >= plen).
func (m *matcher) prefixHash(b []byte) uint64 {
	var a, c uint64
	if m.plen >= 8 && len(b) >= 8 {
		a = binary.LittleEndian.Uint64(b)
		c = binary.LittleEndian.Uint64(b[m.plen-8:])
	} else {
		var buf [8]byte
		copy(buf[:], b[:m.plen])
		a = binary.LittleEndian.Uint64(buf[:])
	}
	return (a*hashMul ^ bits.RotateLeft64(c, 29)) * 0xD6E8FEB86659FD93
}

// couldStart reports whether s, the end of a stream so far, can be the start
// of an occurrence not yet complete: a proper prefix of a pattern (or of a
// weak pattern). It may answer true wrongly (the Writer then holds back a
// little more), never false wrongly.
func (m *matcher) couldStart(s []byte) bool {
	for _, w := range m.weak {
		if len(w.s) > len(s) && w.s[:len(s)] == string(s) {
			return true
		}
	}
	if len(m.pats) == 0 || len(s) >= m.maxLen {
		return false
	}
	if len(s) < m.plen || m.step == 0 {
		for j, c := range s[:min(len(s), 16)] {
			if m.startBytes[j][c>>6]&(1<<(c&63)) == 0 {
				return false
			}
		}
		return true
	}
	ph := m.prefixHash(s)
	if m.pbits[ph>>m.pbsh>>6]&(1<<(ph>>m.pbsh&63)) == 0 {
		return false
	}
	for x := m.pheads[ph>>m.pshift]; x != 0; x = m.pnext[x-1] {
		for e := x; e != 0; e = m.pats[e-1].ext { // the pattern and its extensions
			pt := &m.pats[e-1]
			if int(pt.n) > len(s) && string(m.arena[pt.off:pt.off+int32(len(s))]) == string(s) {
				return true
			}
		}
	}
	return false
}

// longestStart returns the largest n <= limit such that couldStart(t[len(t)-n:]),
// or 0. It gives the same answer as trying every n from limit down, but
// for the suffixes of head = step+q-1 bytes or more (the long ones, which
// cost a prefix lookup each) it first samples them like scan does: such a
// suffix can start a pattern only if the q-gram at the sample position
// in its first step bytes passes the bitset and has its offset in offs.
func (m *matcher) longestStart(t []byte, limit int) int {
	limit = min(limit, len(t))
	best := 0
	for _, w := range m.weak {
		for n := min(limit, len(w.s)-1); n > best; n-- {
			if w.s[:n] == string(t[len(t)-n:]) {
				best = n
				break
			}
		}
	}
	if len(m.pats) == 0 {
		return best
	}
	limit = min(limit, m.maxLen-1) // couldStart is false from maxLen on
	short := limit                 // suffixes checked one by one: n <= short
	if m.step > 0 {
		head := m.step + m.q - 1
		short = min(limit, head-1)
		// Starts lo..hi (suffixes of head to limit bytes), smallest first:
		// the first that can start a pattern gives the longest suffix.
		lo, hi := len(t)-limit, len(t)-head
		for p := lo; p < hi+m.step && lo <= hi; p += m.step {
			// Every start in p-step+1..p (within lo..hi) has its sample
			// at p, and p+q <= len(t).
			g := m.gram(t[p:])
			if mk := bitMasks[g*maskMul>>maskShift]; m.bits[g*hashMul>>m.bshift]&mk != mk {
				continue
			}
			om := m.offs[offsHash(g*hashMul)>>m.oshift]
			for o := m.step - 1; o >= 0; o-- { // smallest start first
				if om&(1<<(o&7)) == 0 {
					continue
				}
				if s := p - o; s >= lo && s <= hi && m.couldStart(t[s:]) {
					return max(best, len(t)-s)
				}
			}
		}
	}
	for n := short; n > best; n-- {
		if m.couldStart(t[len(t)-n:]) {
			return n
		}
	}
	return best
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
		j := bytes.Index(t[i:], bytesOf(w.s))
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
		out = append(out, span{start: start, end: end, name: w.name})
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
			c.wrap = c.wrap || s.wrap
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
