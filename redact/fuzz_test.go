package redact

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

var maskRE = regexp.MustCompile(`\[REDACTED(:[AB])?\]`)

// lineBreaksRE matches a line break and the indentation after it.
var lineBreaksRE = regexp.MustCompile(`\r?\n[ \t]*`)

// FuzzRedact checks the redaction property: for any text and any set of
// values, no value of MinLength bytes or more, and none of its forms,
// survives in the output (outside the masks), and text that holds no value
// and no form comes out unchanged. It also checks that the streaming Writer
// agrees with String when the text is split in two.
func FuzzRedact(f *testing.F) {
	f.Add("token abcdefgh in text", "abcdefgh", "", "", uint(3))
	f.Add("Basic "+b64std("user:"+canary), canary, "user", "x", uint(10))
	f.Add("a transforming a", "a", "trans", "forming-long", uint(1))
	f.Add("{\"k\":\""+jsonString(pemKey, true)+"\"}", pemKey, "", "", uint(40))
	f.Add("0123456789abcdef", "0123456789", "56789abcdef", "345678", uint(7))
	f.Add("%3Cscript%3E &lt;script&gt;", "<script>", "", "", uint(5))
	f.Add("nothing here", "something-else", "other-value", "", uint(0))
	// Forms of issue 16: line-wrapped base64 and hex (split inside a
	// wrapped line and at its break), nested JSON with control bytes,
	// %q and %+q, quote doubling, a quoted value, a structured secret.
	wrapped := wrap(b64std("prefix bytes "+canary+" and more bytes after it"), 76, "\n", "")
	f.Add("out:\n"+wrapped+"done", canary, "", "", uint(60))
	f.Add(wrapped, canary, "", "", uint(77))
	f.Add(wrap(b64std(strings.Repeat("x", 50)+canary), 64, "\r\n", "  "), canary, "", "", uint(66))
	f.Add(wrap(hex.EncodeToString([]byte("ab"+canary)), 60, "\n", ""), canary, "", "", uint(61))
	// Cut within the form's head: 2 and 11 characters in.
	f.Add(wrap(b64std(strings.Repeat("y", 55)+canary), 76, "\n", ""), canary, "", "", uint(70))
	f.Add(wrap(hex.EncodeToString([]byte(strings.Repeat("z", 24)+canary)), 60, "\n", ""), canary, "", "", uint(59))
	f.Add(encJS.quote(encJackson.quote("ctl-\x1f-\x7f-7Qx2")), "ctl-\x1f-\x7f-7Qx2", "", "", uint(9))
	f.Add(fmt.Sprintf("%q %+q", "key-🔑-\x01", "key-🔑-\x01"), "key-🔑-\x01", "", "", uint(4))
	f.Add(`'it''s-7Qx2' 'it'\''s-7Qx2' "say ""hi"" 7Qx2"`, "it's-7Qx2", `say "hi" 7Qx2`, "", uint(20))
	f.Add("TOKEN=dq-wrapped-7Qx2", `"dq-wrapped-7Qx2"`, "", "", uint(8))
	f.Add("pw s3cr3t-P4ssw0rd and tok_abc123XYZ", `{"password":"s3cr3t-P4ssw0rd","nested":["tok_abc123XYZ"]}`, "", "", uint(12))
	f.Fuzz(func(t *testing.T, text, v1, v2, v3 string, split uint) {
		r := New()
		r.Add("A", v1)
		r.Add("B", v2)
		r.AddAll(map[string]string{"": v3})
		out := r.String(text)

		segments := maskRE.Split(out, -1)
		joined := lineBreaksRE.ReplaceAllString(text, "")
		present := false
		values := []string{v1, v2, v3}
		for i := 0; i < len(values); i++ { // and the leaves of structured values
			jsonLeaves(values[i], func(leaf string) { values = append(values, leaf) })
		}
		for _, v := range values {
			if v == "" {
				continue
			}
			if len(v) < MinLength {
				for _, w := range weakForms(v) {
					if strings.Contains(text, w) {
						present = true
					}
				}
				continue
			}
			fs := formSet{min: MinLength}
			fs.begin(0)
			fs.addValue(v)
			for _, p := range fs.pats {
				form := string(fs.arena[p.off : p.off+p.n])
				if !strings.Contains(text, form) {
					// A wrapped dump's line breaks may cut it.
					if strings.Contains(joined, form) {
						present = true
					}
					continue
				}
				present = true
				for _, s := range segments {
					if strings.Contains(s, form) {
						t.Fatalf("form %q of value %q survived:\nin  %q\nout %q", form, v, text, out)
					}
				}
			}
		}
		if !present && out != text {
			t.Fatalf("text without values changed:\nin  %q\nout %q", text, out)
		}
		if b := r.Bytes([]byte(text)); string(b) != out {
			t.Fatalf("Bytes %q != String %q", b, out)
		}

		var buf bytes.Buffer
		w := r.NewWriter(&buf)
		i := 0
		if len(text) > 0 {
			i = int(split % uint(len(text)+1))
		}
		w.Write([]byte(text[:i]))
		w.Write([]byte(text[i:]))
		w.Close()
		if buf.String() != out {
			t.Fatalf("Writer split at %d: %q != %q", i, buf.String(), out)
		}
	})
}
