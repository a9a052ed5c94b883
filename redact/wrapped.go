package redact

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Line-wrapped encodings. Tools print base64 and hex in lines of a fixed
// width: base64(1) and MIME at 76 columns, PEM and `openssl base64` at 64,
// `xxd -p` at 60. A value's encoding, or the part of a longer blob's
// encoding that holds it, then straddles a line break wherever the value
// does not start on a line of its own, and no form of it appears whole.
//
// The scan finds a form by its first bytes (the q-grams of its head and the
// hash of its first plen bytes, see matcher.go), so a form whose head is on
// one line is a candidate as usual; when the comparison with the text then
// fails at a line break that ends a full line of base64 or hex characters
// (wrapMin of them or more), wrappedMatch compares the rest of the form with
// the text after the line break and the indentation that follows it, line
// after line. Such an occurrence becomes a span that covers its pieces and
// the breaks between them; when masked, each piece gets its own mask and the
// line breaks (and the indentation after them) stay, so the output keeps its
// lines. This costs nothing where there is no candidate (the scan is
// unchanged).
//
// An occurrence cut within its head (its first step+q-1 bytes, at most 23,
// see build) need not be a candidate: no sample need fall on a whole q-gram
// of it. Those are found from the other side (findHeadCuts): a second pass
// looks for the line breaks that end a full line of base64 or hex
// characters (sampling 31 bytes in every 30, which text refuses at once)
// and at each one tries every start within a head's length before it,
// with the bytes after the break joined on, against the patterns' filters
// and prefix hashes. In ordinary text it costs 6 to 10% of the scan's
// throughput; in a base64 dump, where every line is tried, about 3.5 times
// the scan's time (measured, see docs/performance.md).
// The wrapped candidates of the scan are refused a break within the head,
// so that each occurrence is found once, by one of the two ways, and the
// Writer (whose samples fall elsewhere) and String agree.

// wrapMin is the length from which a run of base64 or hex characters that
// ends a line is taken for a line of a wrapped dump (60 to 76 columns), not
// a word or a token that a line break follows.
const wrapMin = 60

// encByte reports the bytes of the base64 (standard and URL-safe, with
// padding) and hex alphabets.
var encByte = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=") {
		t[c] = true
	}
	return t
}()

// wrappedMatch compares the form pat with t from start, where the text may
// cut it, after its first head bytes, with line breaks (LF or CRLF, then
// spaces or tabs) that each end a line of wrapMin base64 or hex characters
// or more (counting runBefore, the run that ends just before t). It returns
// the end of the occurrence in t and whether pat occurs so, cut by at least
// one line break.
func wrappedMatch(t []byte, start int, pat []byte, head, runBefore int) (int, bool) {
	i, j, breaks := 0, start, 0
	for i < len(pat) {
		if j < len(t) && t[j] == pat[i] {
			i, j = i+1, j+1
			continue
		}
		if i < head || j >= len(t) {
			return 0, false
		}
		e, ok := skipWrapBreak(t, j, runBefore)
		if !ok {
			return 0, false
		}
		j = e
		breaks++
	}
	return j, breaks > 0
}

// skipWrapBreak reports whether t has, at j, a line break (LF or CRLF) that
// ends a line of wrapMin base64 or hex characters or more, and returns the
// position after it and the spaces or tabs that follow.
func skipWrapBreak(t []byte, j, runBefore int) (int, bool) {
	b := j
	if t[b] == '\r' && b+1 < len(t) {
		b++
	}
	if t[b] != '\n' {
		return 0, false
	}
	if _, n := runBack(t, j, wrapMin, runBefore); n < wrapMin {
		return 0, false
	}
	b++
	for b < len(t) && (t[b] == ' ' || t[b] == '\t') {
		b++
	}
	return b, true
}

// runBack returns the start a of the run of the alphabets that ends at
// end, looking back at most limit bytes, and the run's length n (limit when
// it goes on further back; counting runBefore when it reaches the start of
// t).
func runBack(t []byte, end, limit, runBefore int) (a, n int) {
	a = end
	for a > 0 && encByte[t[a-1]] && end-a < limit {
		a--
	}
	n = end - a
	if a == 0 {
		n += runBefore
	} else if encByte[t[a-1]] {
		n = limit
	}
	return a, n
}

// wrapHold returns the start of the tail of t that a Writer must hold back
// because it may still be joined with what is not yet written. When t ends
// in an open wrapped
// region (a full line of the alphabets, a line break, possibly the start of
// the next line), the last s.hold bytes of the region's joined text and
// everything after them. Otherwise len(t).
func (s *snapshot) wrapHold(t []byte, runBefore int) int {
	limit := max(s.hold, wrapMin)
	a, _ := runBack(t, len(t), limit, runBefore)
	acc := len(t) - a // joined bytes of the region after the cut, so far
	if acc >= s.hold {
		// An occurrence that crosses the last line break is complete;
		// one that a line break not yet written may cut starts with
		// the start of a form, which holdBack keeps.
		return len(t)
	}
	b := a
	for b > 0 && (t[b-1] == ' ' || t[b-1] == '\t') {
		b--
	}
	var q int // the start of the line break before the open line
	switch {
	case b > 0 && t[b-1] == '\n':
		q = b - 1
		if q > 0 && t[q-1] == '\r' {
			q--
		}
	case acc == 0 && len(t) > 0 && t[len(t)-1] == '\r':
		q = len(t) - 1 // a CRLF cut in two
	default:
		// Inside a line (a run that a line break may still cut ends
		// with the start of a form, which holdBack keeps), or not in a
		// region.
		return len(t)
	}
	cut := len(t)
	if acc > 0 {
		cut = a
	}
	for {
		// The run before the line break at q joins the region if it is a
		// full line.
		a, n := runBack(t, q, limit, runBefore)
		if n < wrapMin {
			return cut
		}
		if acc+q-a >= s.hold {
			return min(cut, q-(s.hold-acc))
		}
		cut, acc = a, acc+q-a
		// Is [a, q) a whole line after indentation (one more line back)?
		b := a
		for b > 0 && (t[b-1] == ' ' || t[b-1] == '\t') {
			b--
		}
		if b == 0 || t[b-1] != '\n' {
			return cut
		}
		q = b - 1
		if q > 0 && t[q-1] == '\r' {
			q--
		}
	}
}

// findHeadCuts appends the occurrences that a wrapped dump's line break
// cuts within the form's head (see above). It looks for the line breaks
// that end a run of wrapMin base64 or hex characters or more without
// looking at every line. It samples every sampleStride bytes: the first
// sample at or after the start of such a run sees sampleLen bytes of it
// (wrapMin = sampleStride-1 + sampleLen), and text almost always has a
// space, a quote or a line break (a byte below '+', the lowest of the
// alphabets) within sampleLen bytes, found four 8-byte words at a time.
// Only from a sample without one does it look for the next line break.
func (s *snapshot) findHeadCuts(t []byte, runBefore int, out []span) []span {
	eachRunEnd(t, runBefore, func(q int) {
		b, ok := skipWrapBreak(t, q, runBefore)
		if !ok {
			return
		}
		for _, m := range [...]*matcher{s.main, s.extra} {
			if m != nil && m.step > 0 {
				out = m.headCuts(t, q, b, runBefore, out)
			}
		}
	})
	return out
}

// eachRunEnd calls f with the position q of every line break (LF, or the
// CR of a CRLF) that ends a run of the alphabets of wrapMin bytes or more
// in t (counting runBefore for a run at its start), and with some other
// line breaks.
func eachRunEnd(t []byte, runBefore int, f func(q int)) {
	const sampleStride, sampleLen = 30, 31 // sampleStride-1 + sampleLen = wrapMin
	p := 0
	if runBefore > 0 {
		// A run that began before t may end at the first line break.
		if q := lineBreak(t, 0); q >= 0 {
			f(q)
			p = q + sampleStride
		}
	}
	for p+sampleLen <= len(t) {
		const highs, below = 0x8080808080808080, '+' * 0x0101010101010101
		w := t[p : p+sampleLen]
		x0, x1 := binary.LittleEndian.Uint64(w), binary.LittleEndian.Uint64(w[8:])
		x2, x3 := binary.LittleEndian.Uint64(w[16:]), binary.LittleEndian.Uint64(w[sampleLen-8:])
		if ((x0-below)&^x0|(x1-below)&^x1|(x2-below)&^x2|(x3-below)&^x3)&highs != 0 {
			// A run of wrapMin that contains no byte of w starts after p.
			p += sampleStride
			continue
		}
		// A run that holds w and ends a line ends at the next line break
		// (one that ends before it ends no line); a later one starts
		// after that line break, and is sampled at q+sampleStride or at a
		// later sample.
		q := lineBreak(t, p)
		if q < 0 {
			return
		}
		f(q)
		p = q + sampleStride
	}
}

// lineBreak returns the position of the first line break in t at or after
// p (the CR of a CRLF), or -1.
func lineBreak(t []byte, p int) int {
	i := bytes.IndexByte(t[p:], '\n')
	if i < 0 {
		return -1
	}
	q := p + i
	if q > p && t[q-1] == '\r' {
		q--
	}
	return q
}

// headCuts appends the occurrences of m's patterns that start within its
// head's length before the line break at q and go on at b.
func (m *matcher) headCuts(t []byte, q, b, runBefore int, out []span) []span {
	head := m.step + m.q - 1
	// joined holds up to head-1 bytes before the break and plen bytes after
	// it: every start tried has its plen bytes in it.
	var joined [64]byte
	before := min(head-1, q)
	n := copy(joined[:], t[q-before:q])
	n += copy(joined[n:n+m.plen], t[b:])
	// The prefix hashes first, then their filter bits: the loads of the
	// filter (often a cache miss) are independent of each other.
	var phs [64]uint64
	from := max(1, before-(n-m.plen)) // the starts with plen bytes in joined
	for k := from; k <= before; k++ {
		phs[k] = m.prefixHash(joined[before-k : n])
	}
	var hit uint64 // bit k: start q-k passes the filter
	for k := from; k <= before; k++ {
		ph := phs[k]
		hit |= (m.pbits[ph>>m.pbsh>>6] >> (ph >> m.pbsh & 63) & 1) << k
	}
	for ; hit != 0; hit &= hit - 1 {
		k := bits.TrailingZeros64(hit)
		// Every pattern has its first q-gram in the scan's filter, whose
		// three bits refuse most starts that passed the prefix's one.
		g := m.gram(joined[before-k : n])
		if mk := bitMasks[g*maskMul>>maskShift]; m.bits[g*hashMul>>(m.bshift&63)]&mk != mk {
			continue
		}
		ph := phs[k]
		start := q - k
		for x := m.pheads[ph>>m.pshift]; x != 0; {
			pi := x - 1
			pt := &m.pats[pi]
			x = m.pnext[pi]
			if int(pt.n) <= k {
				continue // whole before the break: the scan's
			}
			if e, ok := wrappedMatch(t, start, m.arena[pt.off:pt.off+pt.n], 0, runBefore); ok {
				out = append(out, span{start: start, end: e, name: pt.name, wrap: true})
			}
		}
	}
	return out
}
