package engine

import (
	"fmt"
	"testing"
)

func TestCacheEvictsUnusedFirst(t *testing.T) {
	l := newLRU(3, 1<<20)
	for i := 0; i < 3; i++ {
		l.add(&compiled{kind: Field, src: fmt.Sprint("src", i)})
	}
	l.get(Field, "src0") // used: gets a second chance
	l.add(&compiled{kind: Field, src: "src3"})
	if l.get(Field, "src0") == nil || l.get(Field, "src3") == nil {
		t.Fatal("a used or new entry was evicted")
	}
	if l.get(Field, "src1") != nil {
		t.Fatal("the oldest unused entry was kept")
	}
	// Bounded by bytes too.
	b := newLRU(100, 10)
	b.add(&compiled{kind: Code, src: "123456"})
	b.add(&compiled{kind: Code, src: "abcdef"})
	if b.get(Code, "123456") != nil || b.get(Code, "abcdef") == nil || b.bytes != 6 {
		t.Fatalf("byte bound: %d bytes", b.bytes)
	}
}
