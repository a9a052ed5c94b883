// Package redact keeps every known secret value out of everything a person
// or a log can see.
//
// A [Redactor] holds the secret values known to a run (the secrets
// resolvable in its scope and the values registered at run time) and masks
// every occurrence of each of them, and of its common encodings, in one pass
// over a text, whatever the number of values. It is applied at the
// boundaries where data leaves the engine, through these surfaces:
//
//   - [Redactor.String] and [Redactor.Bytes] for text;
//   - [Redactor.Value] for JSON-like values (block inputs and outputs);
//   - [Redactor.Error] for errors;
//   - [Redactor.Header] for HTTP headers (credential headers by name);
//   - [Redactor.NewWriter] for streams (run logs), catching values split
//     across writes;
//   - [NewHandler] for log/slog.
//
// [Redactor.StringFound], [Redactor.ValueFound] and [Writer.Found] also
// report the names of the values they masked (a [Found]), from the same
// scan.
//
// # What is masked
//
// For each value of [MinLength] bytes or more: the value itself; its URL
// escapings (query, path segment, encodeURIComponent and encodeURI, with
// upper- and lower-case hex); its JSON string escapings (minimal, HTML-safe,
// ASCII-only with lower- or upper-case \uXXXX, escaped '/', every control
// byte and DEL as \u00XX), some of them escaped twice or three times (a
// JSON document inside a JSON string); Go's %q and %+q quoting; its
// quoting by doubled quotes (YAML, CSV) or by the shell's closing and
// reopening of single quotes; its HTML/XML
// entity escapings; its hex encoding (lower and upper case); its base64
// encodings (standard and URL-safe, padded and unpadded) and the part of a
// longer base64 stream that encodes it at each of the three byte alignments,
// so that base64("user:" + password) is caught, also where a tool printed
// the base64 or hex in lines of 60 columns or more and a line break cuts
// it after the form's head (base64(1), MIME, PEM, xxd -p: see
// wrapped.go); for a multi-line value, the
// value with LF and CRLF line ends and each of its lines (see
// docs/redaction.md for the lines that are left out). A value registered
// with surrounding quotes is also registered without them, and a value
// that is a JSON object or array has each string leaf of MinLength bytes or
// more registered as well, under its name.
//
// A value shorter than MinLength is masked only where it stands as a whole
// token, together with its escaped forms; see [Weak].
//
// # The mask
//
// A masked range is replaced by "[REDACTED:NAME]", NAME being the name the
// value was added with, or by "[REDACTED]" when the value has no name or
// when overlapping or adjacent matches of values with different names merge
// into one range; a range that crosses the line breaks of a wrapped base64
// or hex dump gets one mask per line, and its line breaks stay. The mask
// never depends on the value's length or content.
//
// The mask is for display only: redact never changes the data a run works
// on; every surface returns a copy.
package redact

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// MinLength is the length in bytes from which a value is masked wherever it
// occurs. Shorter values are masked only as whole tokens (see [Weak]).
const MinLength = 6

// minExtra is the least number of values kept in the small, incrementally
// rebuilt matcher before they are merged into the main one. The bound is
// max(minExtra, sqrt(2n)) for n values in the main matcher, which balances
// the cost of rebuilding the small matcher on every Add against that of
// rebuilding the main one every so many Adds.
const minExtra = 64

// smallSet is the number of values up to which every change rebuilds the
// main matcher.
const smallSet = 128

func extraBound(n int) int {
	return max(minExtra, int(math.Sqrt(float64(2*n))))
}

// Redactor masks registered secret values. The zero value is not usable;
// call [New]. A nil *Redactor is valid and masks nothing.
//
// All methods are safe for concurrent use. Readers never wait for writers:
// they use an immutable snapshot, replaced atomically. Adding values is
// cheap: with up to 128 values every change rebuilds the one matcher (tens
// to hundreds of microseconds); beyond, a value added with [Redactor.Add]
// goes into a small side matcher rebuilt on its own, and the main one is
// rebuilt only after 64 additions or more (the square root of twice its
// size).
type Redactor struct {
	mu sync.Mutex // mu serializes Add and AddAll; readers use snap.
	// Guarded by mu:
	vals   []value
	seen   map[string]struct{}
	names  []string
	nameIx map[string]int32
	nMain  int // vals[:nMain] are in snap.main
	n      int // values added (vals also holds the leaves of structured ones)

	snap atomic.Pointer[snapshot]
}

// snapshot is an immutable view of the Redactor's values.
type snapshot struct {
	main, extra *matcher
	masks       []string // mask text by name index
	names       []string // value names by index
	n           int      // number of values
	hold        int      // bytes a Writer holds back
	anyBytes    [4]uint64
}

// New returns an empty Redactor.
func New() *Redactor {
	r := &Redactor{seen: map[string]struct{}{}, nameIx: map[string]int32{}}
	r.snap.Store(&snapshot{})
	return r
}

// Add registers value under name, together with all its forms (see the
// package documentation). Empty values and values already registered are
// ignored. The name appears in the mask; it may be "" (mask "[REDACTED]").
func (r *Redactor) Add(name, value string) {
	if r == nil || value == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.addLocked(name, value) {
		r.publishLocked()
	}
}

// AddAll registers every value of m under its key, like [Redactor.Add], at
// the cost of one rebuild.
func (r *Redactor) AddAll(m map[string]string) {
	if r == nil || len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic names when two keys share a value
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, k := range keys {
		if r.addLocked(k, m[k]) {
			changed = true
		}
	}
	if changed {
		// A batch goes straight into the main matcher.
		r.nMain = -1
		r.publishLocked()
	}
}

// AddPairs registers values[i] under names[i], like [Redactor.AddAll] (one
// rebuild) but with several values to a name (a secret's versions). The
// first name of a value is the one it is masked under.
func (r *Redactor) AddPairs(names, values []string) {
	if r == nil || len(values) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for i, v := range values {
		if r.addLocked(names[i], v) {
			changed = true
		}
	}
	if changed {
		r.nMain = -1
		r.publishLocked()
	}
}

// addLocked records one value. r.mu must be held.
func (r *Redactor) addLocked(name, v string) bool {
	if v == "" {
		return false
	}
	if _, ok := r.seen[v]; ok {
		return false
	}
	r.seen[v] = struct{}{}
	ix, ok := r.nameIx[name]
	if !ok {
		ix = int32(len(r.names))
		r.names = append(r.names, name)
		r.nameIx[name] = ix
	}
	r.vals = append(r.vals, value{s: v, name: ix})
	r.n++
	r.addLeavesLocked(ix, v)
	return true
}

// addLeavesLocked registers, under the name index ix, each string leaf of
// MinLength bytes or more of v when v is a JSON object or array (a
// structured secret: a script reads JSON.parse(secrets.DB).password and
// prints it alone). Leaves that are JSON documents themselves are walked
// in turn. r.mu must be held.
func (r *Redactor) addLeavesLocked(ix int32, v string) {
	jsonLeaves(v, func(leaf string) {
		if _, ok := r.seen[leaf]; ok {
			return
		}
		r.seen[leaf] = struct{}{}
		r.vals = append(r.vals, value{s: leaf, name: ix})
		r.addLeavesLocked(ix, leaf)
	})
}

// jsonLeaves calls fn for each string leaf of MinLength bytes or more of v
// when v is a JSON object or array.
func jsonLeaves(v string, fn func(string)) {
	t := strings.TrimSpace(v)
	if t == "" || t[0] != '{' && t[0] != '[' {
		return
	}
	var doc any
	if json.Unmarshal([]byte(t), &doc) != nil {
		return
	}
	var walk func(x any, depth int)
	walk = func(x any, depth int) {
		if depth > maxDepth {
			return
		}
		switch x := x.(type) {
		case string:
			if len(x) >= MinLength {
				fn(x)
			}
		case map[string]any:
			for _, e := range x {
				walk(e, depth+1)
			}
		case []any:
			for _, e := range x {
				walk(e, depth+1)
			}
		}
	}
	walk(doc, 0)
}

// publishLocked rebuilds what changed and stores a new snapshot. r.mu must be
// held.
func (r *Redactor) publishLocked() {
	old := r.snap.Load()
	s := &snapshot{main: old.main, n: r.n}
	// A small set is rebuilt whole (well under a millisecond), so that a
	// run's secrets plus its run-time masks stay one matcher and one scan;
	// a large one gets a small side matcher, scanned as well.
	if r.nMain < 0 || len(r.vals) <= smallSet || len(r.vals)-r.nMain > extraBound(r.nMain) {
		s.main = build(r.vals)
		r.nMain = len(r.vals)
	} else {
		s.extra = build(r.vals[r.nMain:])
	}
	// masks and names only grow: snapshots share their backing arrays and
	// each reads its own prefix.
	s.masks = old.masks
	for i := len(s.masks); i < len(r.names); i++ {
		s.masks = append(s.masks, maskFor(r.names[i]))
	}
	s.names = r.names
	for _, m := range [...]*matcher{s.main, s.extra} {
		if m != nil {
			// A long form needs all but its last byte held back; a weak
			// one also needs the byte after it (the token boundary).
			s.hold = max(s.hold, m.maxLen-1, m.maxWeak)
			for i := range s.anyBytes {
				s.anyBytes[i] |= m.anyBytes[i]
			}
		}
	}
	r.snap.Store(s)
}

func maskFor(name string) string {
	if name == "" {
		return "[REDACTED]"
	}
	return "[REDACTED:" + name + "]"
}

func (s *snapshot) mask(name int32) string {
	if name < 0 {
		return "[REDACTED]"
	}
	return s.masks[name]
}

// Len returns the number of distinct values registered (not counting their
// derived forms).
func (r *Redactor) Len() int {
	if r == nil {
		return 0
	}
	return r.snap.Load().n
}

// load returns the current snapshot, or nil when there is nothing to mask.
func (r *Redactor) load() *snapshot {
	if r == nil {
		return nil
	}
	s := r.snap.Load()
	if s.n == 0 {
		return nil
	}
	return s
}

// find returns the merged masked ranges of t. prev is the byte before t
// or -1, runBefore the length of the run of base64 or hex characters that
// ends just before t (see wrapped.go), or 0.
func (s *snapshot) find(t []byte, prev, runBefore int, out []span) []span {
	return merge(s.findAll(t, prev, runBefore, out))
}

// findAll appends the occurrences in t of every form, not merged.
func (s *snapshot) findAll(t []byte, prev, runBefore int, out []span) []span {
	if s.main != nil {
		out = s.main.find(t, prev, runBefore, out)
	}
	if s.extra != nil {
		out = s.extra.find(t, prev, runBefore, out)
	}
	if s.main != nil || s.extra != nil {
		out = s.findHeadCuts(t, runBefore, out)
	}
	return out
}

// testHookHoldSearch, when set by a test, is called each time holdBack
// searches for a suffix that can start a form.
var testHookHoldSearch func()

// holdBack returns the length of the longest suffix of t that can be the
// start of an occurrence not yet complete (at most s.hold).
func (s *snapshot) holdBack(t []byte) int {
	// Such a suffix holds only bytes that some form has: a log line that
	// ends in '\n' (when no value has one) needs no search. The bytes are
	// looked at from the end, up to 16 of them: ordinary text is made of
	// bytes that forms have too.
	limit := s.hold
	for k := 0; k < min(len(t), 16); k++ {
		c := t[len(t)-1-k]
		if s.anyBytes[c>>6]&(1<<(c&63)) == 0 {
			limit = min(limit, k)
			break
		}
	}
	n := 0
	if limit == 0 {
		return 0
	}
	if testHookHoldSearch != nil {
		testHookHoldSearch()
	}
	for _, m := range [...]*matcher{s.main, s.extra} {
		if m != nil {
			n = max(n, m.longestStart(t, limit))
		}
	}
	return n
}

// appendMasked appends t with the ranges sp replaced by masks.
func (s *snapshot) appendMasked(dst, t []byte, sp []span) []byte {
	last := 0
	for _, x := range sp {
		dst = append(dst, t[last:x.start]...)
		dst = s.appendMask(dst, t, x)
		last = x.end
	}
	return append(dst, t[last:]...)
}

// appendMask appends the mask of the range x of t: one mask, or for an
// occurrence that crosses line breaks one mask per line piece, with the
// line breaks and the indentation after them kept.
func (s *snapshot) appendMask(dst, t []byte, x span) []byte {
	mask := s.mask(x.name)
	if !x.wrap {
		return append(dst, mask...)
	}
	seg := t[x.start:x.end]
	for {
		i := bytes.IndexByte(seg, '\n')
		if i < 0 {
			if len(seg) > 0 {
				dst = append(dst, mask...)
			}
			return dst
		}
		j := i
		if j > 0 && seg[j-1] == '\r' {
			j--
		}
		if j > 0 {
			dst = append(dst, mask...)
		}
		k := i + 1
		for k < len(seg) && (seg[k] == ' ' || seg[k] == '\t') {
			k++
		}
		dst = append(dst, seg[j:k]...)
		seg = seg[k:]
	}
}

func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s)) // read-only view
}

// String returns s with every registered value masked. When nothing
// matches, it returns s itself without allocating.
func (r *Redactor) String(s string) string {
	return r.str(s, nil)
}

// StringFound is String that also adds to f the names of the values it
// masked (see [Found]).
func (r *Redactor) StringFound(s string, f *Found) string {
	return r.str(s, f)
}

func (r *Redactor) str(s string, f *Found) string {
	snap := r.load()
	if snap == nil || s == "" {
		return s
	}
	t := bytesOf(s)
	sp := snap.findAll(t, -1, 0, nil)
	if len(sp) == 0 {
		return s
	}
	if f != nil {
		f.note(snap.names, sp)
	}
	sp = merge(sp)
	out := snap.appendMasked(make([]byte, 0, len(s)+16*len(sp)), t, sp)
	return unsafe.String(unsafe.SliceData(out), len(out))
}

// Bytes returns a new slice holding b with every registered value masked. It
// never modifies b. A nil b gives nil.
func (r *Redactor) Bytes(b []byte) []byte {
	return r.bytes(b, nil)
}

func (r *Redactor) bytes(b []byte, f *Found) []byte {
	if b == nil {
		return nil
	}
	snap := r.load()
	if snap == nil {
		return append([]byte{}, b...)
	}
	sp := snap.findAll(b, -1, 0, nil)
	if f != nil && len(sp) > 0 {
		f.note(snap.names, sp)
	}
	sp = merge(sp)
	return snap.appendMasked(make([]byte, 0, len(b)+16*len(sp)), b, sp)
}

// Append appends b with every registered value masked to dst and returns
// the extended slice, like Bytes but reusing dst's storage. b is not
// modified; dst and b must not overlap.
func (r *Redactor) Append(dst, b []byte) []byte {
	snap := r.load()
	if snap == nil {
		return append(dst, b...)
	}
	sp := snap.find(b, -1, 0, nil)
	return snap.appendMasked(dst, b, sp)
}

// Matches returns the names of the values found in s, in any of their forms,
// sorted and without duplicates. A value added without a name is reported
// as "". The egress check uses it to see which secrets a request carries.
func (r *Redactor) Matches(s string) []string {
	snap := r.load()
	if snap == nil {
		return nil
	}
	sp := snap.findAll(bytesOf(s), -1, 0, nil)
	if len(sp) == 0 {
		return nil
	}
	names := snap.names
	seen := map[int32]bool{}
	var out []string
	for _, x := range sp {
		if !seen[x.name] {
			seen[x.name] = true
			out = append(out, names[x.name])
		}
	}
	sort.Strings(out)
	return out
}

// Found collects the names of the values a masking pass found (the
// names in the masks it wrote, before overlapping masks of different
// names merge into "[REDACTED]"), so that a caller learns which secrets a
// text held from the scan that masks it, without a second one: the
// executor's exposure alerts. Names are kept once each; a value added
// without a name is reported as "". The zero value is empty and ready to
// use. A Found is not safe for concurrent use ([Writer.Found] is).
type Found struct {
	names []string
}

// note adds the names of the spans sp (not merged).
func (f *Found) note(names []string, sp []span) {
	for _, x := range sp {
		if x.name >= 0 && !slices.Contains(f.names, names[x.name]) {
			f.names = append(f.names, names[x.name])
		}
	}
}

// Names returns the names found, sorted.
func (f *Found) Names() []string {
	if f == nil || len(f.names) == 0 {
		return nil
	}
	out := slices.Clone(f.names)
	sort.Strings(out)
	return out
}

// Len returns the number of names found.
func (f *Found) Len() int {
	if f == nil {
		return 0
	}
	return len(f.names)
}

// MaskOf returns the mask for s as a whole, for a sink that hides a whole
// field whatever its value (a credential header, a secret field): the mask
// names the secret when s holds the values of exactly one named secret,
// as the masks of its occurrences would ("[REDACTED:API_TOKEN]"), and is
// "[REDACTED]" otherwise (no known value, several, or an unnamed one), so
// that a view shows one form of mask wherever it shows a secret.
func (r *Redactor) MaskOf(s string) string {
	names := r.Matches(s)
	if len(names) != 1 {
		return maskFor("")
	}
	return maskFor(names[0])
}

// Weak reports whether value is weakly protected: shorter than [MinLength]
// (masked only as a whole token) or of low entropy (fewer than 32 bits by
// its own character frequencies, like "password" or "12345678"), so that
// masking cannot hide it well. Secrets for which Weak is true are flagged
// when created and in the UI.
func Weak(value string) bool {
	if len(value) < MinLength {
		return true
	}
	var freq [256]int
	for i := 0; i < len(value); i++ {
		freq[value[i]]++
	}
	n := float64(len(value))
	bits := 0.0
	for _, c := range freq {
		if c > 0 {
			p := float64(c) / n
			bits -= float64(c) * math.Log2(p)
		}
	}
	return bits < 32
}
