package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file derives, from one secret value, every form of it that the
// Redactor masks. The forms are appended to an arena (one []byte shared by
// all patterns of a matcher) so that building a matcher for thousands of
// values does not allocate once per form.

// formSet collects the forms of one value into the arena, dropping
// duplicates (many encodings of a plain alphanumeric value are the value
// itself). Forms of one value mostly differ in length, so the duplicate
// check compares lengths first and needs no hashing.
type formSet struct {
	arena []byte
	pats  []pattern
	name  int32
	first int    // index in pats of the first form of the current value
	lens  uint64 // bit n%64 set for the length n of each of pats[first:]
	min   int    // forms shorter than min are dropped
	tmp   []byte // scratch for base64 alignments
	b64   []byte // scratch: the padded standard base64 form
	// scratch holds a form being escaped again.
	scratch []byte
}

// begin starts the forms of a new value.
func (f *formSet) begin(name int32) {
	f.name = name
	f.first, f.lens = len(f.pats), 0
}

// commit keeps arena[start:] as a form unless it is too short or a duplicate
// of a form already kept for the current value. It returns the index of the
// new pattern, or -1.
func (f *formSet) commit(start int) int {
	b := f.arena[start:]
	if len(b) < f.min {
		f.arena = f.arena[:start]
		return -1
	}
	if f.lens&(1<<(len(b)&63)) != 0 {
		for _, p := range f.pats[f.first:] {
			if int(p.n) == len(b) && string(f.arena[p.off:p.off+p.n]) == string(b) {
				f.arena = f.arena[:start]
				return -1
			}
		}
	}
	f.lens |= 1 << (len(b) & 63)
	f.pats = append(f.pats, pattern{off: int32(start), n: int32(len(b)), name: f.name})
	return len(f.pats) - 1
}

// commitExt keeps arena[start:], which extends pattern parent (parent is a
// proper prefix of it or equal to it), as an extension of parent that is not
// scanned for. Without a parent it is an ordinary form. It returns the
// index of the last pattern of the chain.
func (f *formSet) commitExt(start, parent int) int {
	if parent < 0 {
		return f.commit(start)
	}
	b := f.arena[start:]
	if p := f.pats[parent]; int(p.n) >= len(b) {
		f.arena = f.arena[:start]
		return parent
	}
	f.lens |= 1 << (len(b) & 63)
	f.pats = append(f.pats, pattern{off: int32(start), n: int32(len(b)), name: f.name, noScan: true})
	f.pats[parent].ext = int32(len(f.pats)) // index + 1
	return len(f.pats) - 1
}

// addValue appends every form of a long value v (len(v) >= MinLength).
func (f *formSet) addValue(v string) {
	f.addEncodings(v, true)
	// A value registered with its quotes ("abc..." or 'abc...', as pasted
	// from a .env file) is printed without them as often as with them.
	if n := len(v); n >= MinLength+2 && (v[0] == '"' || v[0] == '\'') && v[n-1] == v[0] {
		f.addValue(v[1 : n-1])
	}
	if !strings.ContainsAny(v, "\r\n") {
		return
	}
	lf := strings.ReplaceAll(v, "\r\n", "\n")
	crlf := strings.ReplaceAll(lf, "\n", "\r\n")
	if lf != v {
		f.addEncodings(lf, true)
	}
	if crlf != v {
		f.addEncodings(crlf, true)
	}
	armored := strings.Contains(lf, "-----")
	for _, line := range strings.Split(strings.ReplaceAll(lf, "\r", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if boilerplate(line, armored) {
			continue
		}
		if len(v) > largeValue {
			// Lines of a large value: only the line itself.
			f.first, f.lens = len(f.pats), 0
			s := len(f.arena)
			f.arena = append(f.arena, line...)
			f.commit(s)
			continue
		}
		f.addEncodings(line, false)
	}
}

// boilerplate reports whether a line of a multi-line value is left out of
// the per-line masks: lines shorter than MinLength, low-entropy lines, PEM
// armor lines ("-----BEGIN ...-----", "-----END ...-----") and, in an armored
// value, PEM header lines ("Proc-Type: 4,ENCRYPTED", "DEK-Info: ...").
func boilerplate(line string, armored bool) bool {
	if Weak(line) || strings.HasPrefix(line, "-----") || strings.HasSuffix(line, "-----") {
		return true
	}
	return armored && strings.Contains(line, ": ")
}

// largeValue is the length above which a value gets only one form per kind
// of escaping (URL query escaping with upper-case hex, minimal and HTML-safe
// JSON escaping, html.EscapeString; hex and base64 as usual) and its lines
// are registered without their escapings: the forms of a large value take
// about 60 times its size.
const largeValue = 4096

// addEncodings appends v and its escaped forms; with binary, also its hex
// and base64 forms.
func (f *formSet) addEncodings(v string, binary bool) {
	f.first, f.lens = len(f.pats), 0 // duplicates are looked for among v's forms only
	s := len(f.arena)
	f.arena = append(f.arena, v...)
	f.commit(s)

	var c class
	c.of(v)
	if len(v) > largeValue {
		// A large value (a key file, a certificate bundle) keeps one form
		// per escaping: its forms are as large as it is, or larger.
		c.urlSets, c.urlLetter = false, false
		c.quotes, c.ws = false, false
	}

	// URL escaping: query (Go's QueryEscape, '+' for space), path segment
	// (Go's PathEscape), encodeURIComponent and encodeURI, with upper- and
	// lower-case hex. Forms that cannot differ are not generated.
	if c.url {
		for _, set := range [...]*[256]bool{&urlQuery, &urlPath, &urlComponent, &urlURI} {
			if set != &urlQuery && !c.urlSets {
				break
			}
			for _, upper := range [...]bool{true, false} {
				if !upper && !c.urlLetter {
					break
				}
				s = len(f.arena)
				f.arena = appendURLEscape(f.arena, v, set, set == &urlQuery, upper)
				f.commit(s)
			}
		}
	}

	// JSON string escaping, in the flavours of JavaScript (minimal), Go
	// (HTML-safe), Python (ASCII-only, lower-case \u), other ASCII-only
	// encoders (upper-case \u), and PHP (escaped '/').
	if c.json {
		var irrelevant jsonMode // flags that cannot change this value
		if !c.htmlChars && !c.nonASCII {
			irrelevant |= jsonHTML
		}
		if !c.nonASCII {
			irrelevant |= jsonASCII
		}
		if !c.controls && !c.htmlChars && !c.nonASCII && !c.shortCtl && !c.del {
			irrelevant |= jsonUpper
		}
		if !c.slash {
			irrelevant |= jsonSlash
		}
		if !c.shortCtl {
			irrelevant |= jsonCtlU
		}
		if !c.del {
			irrelevant |= jsonDEL
		}
		if len(v) > largeValue {
			irrelevant |= jsonASCII | jsonUpper | jsonSlash | jsonCtlU | jsonDEL
		}
		for mode := jsonMode(0); mode < jsonModes; mode++ {
			if mode&irrelevant == 0 {
				s = len(f.arena)
				f.arena = appendJSONEscape(f.arena, v, mode)
				f.commit(s)
			}
		}
		// A JSON document inside a JSON string (an SNS or Slack payload)
		// escapes the escaped value again, and a service that echoes such
		// a request body back as a string a third time. The chains of
		// escapings that Hushflow's own flows produce: JavaScript's
		// JSON.stringify twice; a JSON.stringify inside a body that the
		// http block (Go) encodes, which a Go service may echo back
		// encoded once more; Go's encoder twice. Every combination of
		// flavours would multiply the patterns of such values (a third
		// more matcher build time for these five chains).
		if len(v) <= largeValue {
			for _, chain := range nestedJSON {
				f.addNestedJSON(v, chain)
			}
			// A value with control characters: its escapings by other
			// encoders (\u00XX for every control byte, upper-case hex,
			// \u007f), each escaped once more by JavaScript or Go, the two
			// outer encoders of Hushflow's own output (a JSON body logged
			// as a string field).
			if c.controls || c.shortCtl || c.del {
				for inner := jsonMode(0); inner < jsonModes; inner++ {
					if inner&irrelevant != 0 || inner&(jsonUpper|jsonCtlU|jsonDEL) == 0 || inner&(jsonASCII|jsonSlash) != 0 {
						continue
					}
					f.addNestedJSON(v, []jsonMode{inner, 0})
					if c.htmlChars {
						f.addNestedJSON(v, []jsonMode{inner, jsonHTML})
					}
				}
			}
		}
	}

	// Go's %q and %+q (strconv.Quote and QuoteToASCII) without their
	// quotes: \x01, \x7f, \u2028, \U0001f511, \xff for invalid UTF-8.
	if c.json || c.del {
		for _, ascii := range [...]bool{false, true} {
			if ascii && !c.nonASCII {
				break
			}
			s = len(f.arena)
			if ascii {
				f.arena = strconv.AppendQuoteToASCII(f.arena, v)
			} else {
				f.arena = strconv.AppendQuote(f.arena, v)
			}
			n := copy(f.arena[s:], f.arena[s+1:len(f.arena)-1])
			f.arena = f.arena[:s+n]
			f.commit(s)
		}
	}

	// Quote doubling: a single-quoted YAML or SQL string ('' for '), a
	// shell single-quoted word ('\'' for '), a CSV field ("" for ").
	if c.quotes {
		for _, q := range quoteDoublings {
			if strings.IndexByte(v, q.c) < 0 {
				continue
			}
			s = len(f.arena)
			for i := 0; i < len(v); i++ {
				if v[i] == q.c {
					f.arena = append(f.arena, q.with...)
				} else {
					f.arena = append(f.arena, v[i])
				}
			}
			f.commit(s)
		}
	}

	// HTML/XML entity escaping.
	if c.html {
		for i, e := range htmlFlavours {
			if i > 0 && !c.quotes && !e.ws || e.ws && !c.ws {
				continue
			}
			s = len(f.arena)
			f.arena = appendHTMLEscape(f.arena, v, e)
			f.commit(s)
		}
	}

	if !binary {
		return
	}

	vb := bytesOf(v)
	s = len(f.arena)
	f.arena = hex.AppendEncode(f.arena, vb)
	f.commit(s)
	s = len(f.arena)
	f.arena = appendUpperHex(f.arena, v)
	f.commit(s)

	// base64, standard then URL-safe. For each: the value at each of the
	// three alignments inside a longer stream (for example
	// base64("user:" + password)), only the characters that depend on the
	// value alone; then the value encoded on its own, unpadded and padded:
	// the aligned form above plus at most one character and the padding.
	// These two are not scanned for: a match of the aligned form is
	// extended over them (see pattern.ext). The URL-safe forms are the
	// standard ones with '-' and '_' for '+' and '/': they are translated,
	// not encoded again, and only when some standard form has '+' or '/'
	// (otherwise each would be a duplicate).
	sc := f.b64[:0] // the five standard forms, one after the other
	var ends [5]int
	var parent int
	for k := 0; k < 5; k++ {
		s = len(f.arena)
		switch k {
		case 0, 1, 2:
			f.appendBase64Core(base64.RawStdEncoding, v, k)
		case 3:
			f.arena = base64.RawStdEncoding.AppendEncode(f.arena, vb)
		case 4:
			f.arena = base64.StdEncoding.AppendEncode(f.arena, vb)
		}
		sc = append(sc, f.arena[s:]...)
		ends[k] = len(sc)
		parent = f.commitB64(s, k, parent)
	}
	f.b64 = sc
	if bytes.ContainsAny(sc, "+/") {
		for k := 0; k < 5; k++ {
			s = len(f.arena)
			for _, c := range sc[[5]int{0, ends[0], ends[1], ends[2], ends[3]}[k]:ends[k]] {
				switch c {
				case '+':
					c = '-'
				case '/':
					c = '_'
				}
				f.arena = append(f.arena, c)
			}
			parent = f.commitB64(s, k, parent)
		}
	}
	std := sc[ends[3]:ends[4]] // padded standard base64
	// base64 inside a URL query: '+', '/' and '=' percent-escaped.
	if bytes.ContainsAny(std, "+/=") {
		s = len(f.arena)
		f.arena = appendURLEscape(f.arena, std, &urlQuery, true, true)
		f.commit(s)
	}
}

// addNestedJSON appends v JSON-escaped by each mode of chain in turn.
func (f *formSet) addNestedJSON(v string, chain []jsonMode) {
	f.scratch = appendJSONEscape(f.scratch[:0], v, chain[0])
	for _, mode := range chain[1:] {
		n := len(f.scratch)
		f.scratch = appendJSONEscape(f.scratch, string(f.scratch[:n]), mode)
		f.scratch = f.scratch[n:]
	}
	s := len(f.arena)
	f.arena = append(f.arena, f.scratch...)
	f.commit(s)
}

// quoteDoublings are the escapings of a quote inside a quoted string by
// doubling or closing and reopening it.
var quoteDoublings = [...]struct {
	c    byte
	with string
}{
	{'\'', "''"},   // YAML and SQL single-quoted strings
	{'\'', `'\''`}, // POSIX shell single-quoted words
	{'"', `""`},    // CSV fields, SQL identifiers
}

// appendBase64Core appends the characters of the base64 encoding of
// (k unknown bytes + v + unknown bytes) that depend on v alone.
func (f *formSet) appendBase64Core(raw *base64.Encoding, v string, k int) {
	src := append(f.tmp[:0], "\x00\x00"[:k]...)
	src = append(src, v...)
	f.tmp = src
	s := len(f.arena)
	f.arena = raw.AppendEncode(f.arena, src)
	end := 8 * (k + len(v)) / 6 // characters fully determined by src
	skip := [...]int{0, 2, 3}[k]
	b := f.arena[s : s+end]
	n := copy(f.arena[s:], b[skip:])
	f.arena = f.arena[:s+n]
}

// commitB64 commits arena[start:], the k-th base64 form of a family (see
// addEncodings): the three aligned forms are ordinary forms, the unpadded
// and padded encodings extend the first of them. parent is what the
// previous call returned; the result is the new parent.
func (f *formSet) commitB64(start, k, parent int) int {
	switch k {
	case 0:
		return f.commit(start)
	case 1, 2:
		f.commit(start)
		return parent
	default:
		return f.commitExt(start, parent)
	}
}

func appendUpperHex(dst []byte, v string) []byte {
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		dst = append(dst, digits[v[i]>>4], digits[v[i]&15])
	}
	return dst
}

var urlQuery, urlPath, urlComponent, urlURI [256]bool // bytes kept as is

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		unreserved := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("-_.~", b) >= 0
		urlQuery[c] = unreserved
		urlPath[c] = unreserved || strings.IndexByte("$&+:=@", b) >= 0
		urlComponent[c] = unreserved || strings.IndexByte("!*'()", b) >= 0
		urlURI[c] = unreserved || strings.IndexByte("!*'();/?:@&=+$,#", b) >= 0
	}
}

// class says which escapings can change a value, so that forms that would
// only repeat another are not generated.
type class struct {
	url       bool // some byte is escaped by every URL escaping
	urlLetter bool // some escaped byte has a letter in its hex (case matters)
	urlSets   bool // some byte is kept by one URL escaping and not another
	json      bool // JSON escaping changes v
	controls  bool // some control byte needs \u00XX
	shortCtl  bool // \b, \f, \n, \r or \t (\u00XX in some encoders)
	del       bool // 0x7f (\u007f in ASCII-only encoders)
	htmlChars bool // <, > or &
	nonASCII  bool
	slash     bool
	html      bool // entity escaping changes v
	quotes    bool // " or '
	ws        bool // \t, \n or \r
}

func (c *class) of(v string) {
	for i := 0; i < len(v); i++ {
		b := v[i]
		if !urlQuery[b] {
			c.url = true
			if b>>4 >= 10 || b&15 >= 10 {
				c.urlLetter = true
			}
			if b == ' ' || urlURI[b] || urlPath[b] || urlComponent[b] {
				c.urlSets = true
			}
		}
		switch {
		case b >= 0x80:
			c.nonASCII, c.json = true, true
		case b < 0x20:
			c.json = true
			if b == '\t' || b == '\n' || b == '\r' {
				c.html, c.ws = true, true
			}
			if strings.IndexByte("\b\f\n\r\t", b) < 0 {
				c.controls = true
			} else {
				c.shortCtl = true
			}
		case b == 0x7f:
			c.del, c.json = true, true
		case b == '"' || b == '\'':
			c.html, c.quotes = true, true
			c.json = c.json || b == '"'
		case b == '<' || b == '>' || b == '&':
			c.html, c.htmlChars, c.json = true, true, true
		case b == '\\':
			c.json = true
		case b == '/':
			c.slash, c.json = true, true
		}
	}
}

func appendURLEscape[S string | []byte](dst []byte, v S, keep *[256]bool, spacePlus, upper bool) []byte {
	digits := "0123456789abcdef"
	if upper {
		digits = "0123456789ABCDEF"
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case keep[c]:
			dst = append(dst, c)
		case c == ' ' && spacePlus:
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', digits[c>>4], digits[c&15])
		}
	}
	return dst
}

// nestedJSON lists the chains of JSON escapings, innermost first, that
// addEncodings registers beyond one level.
var nestedJSON = [...][]jsonMode{
	{0, 0}, {0, jsonHTML}, {jsonHTML, jsonHTML},
	{0, 0, jsonHTML}, {0, jsonHTML, jsonHTML},
}

type jsonMode uint8

const (
	jsonHTML  jsonMode = 1 << iota // <, >, & as \u003c..., U+2028/9 escaped, invalid UTF-8 as \ufffd (Go)
	jsonASCII                      // every non-ASCII rune as \uXXXX (Python)
	jsonUpper                      // upper-case hex in \uXXXX (Jackson, .NET)
	jsonSlash                      // '/' as \/ (PHP)
	jsonCtlU                       // \b \f \n \r \t as \u0008 ... \u000d too (encoders without short escapes)
	jsonDEL                        // 0x7f as \u007f (Python's ensure_ascii, .NET)

	jsonModes = 1 << iota // number of combinations
)

func appendU(dst []byte, r rune, upper bool) []byte {
	digits := "0123456789abcdef"
	if upper {
		digits = "0123456789ABCDEF"
	}
	return append(dst, '\\', 'u', digits[r>>12&15], digits[r>>8&15], digits[r>>4&15], digits[r&15])
}

func appendJSONEscape(dst []byte, v string, mode jsonMode) []byte {
	upper := mode&jsonUpper != 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '/' && mode&jsonSlash != 0:
				dst = append(dst, '\\', '/')
			case c < 0x20 && mode&jsonCtlU != 0, c == 0x7f && mode&jsonDEL != 0:
				dst = appendU(dst, rune(c), upper)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			case c < 0x20:
				dst = appendU(dst, rune(c), upper)
			case (c == '<' || c == '>' || c == '&') && mode&jsonHTML != 0:
				dst = appendU(dst, rune(c), upper)
			default:
				dst = append(dst, c)
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			if mode&(jsonHTML|jsonASCII) != 0 {
				dst = appendU(dst, utf8.RuneError, upper)
			} else {
				dst = append(dst, c)
			}
		case mode&jsonASCII != 0:
			if r >= 0x10000 {
				r -= 0x10000
				dst = appendU(dst, 0xD800+(r>>10), upper)
				dst = appendU(dst, 0xDC00+(r&0x3ff), upper)
			} else {
				dst = appendU(dst, r, upper)
			}
		case (r == '\u2028' || r == '\u2029') && mode&jsonHTML != 0:
			dst = appendU(dst, r, upper)
		default:
			dst = append(dst, v[i:i+size]...)
		}
		i += size
	}
	return dst
}

// htmlFlavour names the entity used for each escaped character.
type htmlFlavour struct {
	quot, apos string
	ws         bool // also \t, \n, \r as &#x9; &#xA; &#xD; (encoding/xml)
}

var htmlFlavours = [...]htmlFlavour{
	{quot: "&#34;", apos: "&#39;"},             // html.EscapeString, html/template
	{quot: "&quot;", apos: "&#39;"},            // common templating engines
	{quot: "&quot;", apos: "&#x27;"},           // OWASP style
	{quot: "&quot;", apos: "&apos;"},           // XML named entities
	{quot: "&#34;", apos: "&#39;", ws: true},   // encoding/xml EscapeText
	{quot: "&quot;", apos: "&apos;", ws: true}, // XML attribute values
}

func appendHTMLEscape(dst []byte, v string, fl htmlFlavour) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '"':
			dst = append(dst, fl.quot...)
		case '\'':
			dst = append(dst, fl.apos...)
		case '\t', '\n', '\r':
			if fl.ws {
				dst = append(dst, "&#x"...)
				dst = append(dst, "0123456789ABCDEF"[c])
				dst = append(dst, ';')
			} else {
				dst = append(dst, c)
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// weakForms returns the forms of a short value that are matched as whole
// tokens: the value and its escaped forms (no hex or base64, which would be
// meaningless for a few bytes).
func weakForms(v string) []string {
	f := formSet{min: 1}
	f.begin(0)
	f.addEncodings(v, false)
	out := make([]string, len(f.pats))
	for i, p := range f.pats {
		out[i] = string(f.arena[p.off : p.off+p.n])
	}
	return out
}
