package ordered

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchDoc is about 1 MiB of JSON: an array of objects, as an API's list
// response.
func benchDoc() []byte {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 5000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item %d","tags":["a","b"],"price":%d.5,"ok":true,"owner":{"login":"user%d","site_admin":false},"notes":null,"text":"lorem ipsum dolor sit amet, consectetur adipiscing elit"}`, i, i, i, i)
	}
	b.WriteString(`],"next":null}`)
	return []byte(b.String())
}

// BenchmarkDecode compares Decode with json.Unmarshal into an any (what
// an HTTP block's JSON body cost before issue 16).
func BenchmarkDecode(b *testing.B) {
	doc := benchDoc()
	b.Run("ordered", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			var v any
			if err := json.Unmarshal(doc, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
