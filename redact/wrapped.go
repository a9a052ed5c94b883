package redact

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
// unchanged). An occurrence cut within its head (its first step+q-1 bytes,
// at most 23, see build) is not found: no sample need fall on a whole
// q-gram of it, and wrappedMatch refuses a break there even after a lucky
// sample, so that the Writer (whose samples fall elsewhere) and String
// agree. A pass that looked for wrapped lines everywhere cost 20 to 40% of
// the scan's throughput (measured; see docs/performance.md).

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
