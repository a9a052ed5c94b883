package redact

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The benchmarks run on a 32 MiB log-like text holding one value (in one of
// its forms) per 4 KiB, for 10, 100, 1,000 and 10,000 values. Each figure
// sits beside its baselines in the same run:
//
//	BenchmarkRedact/values=N/redact      Redactor.Append into a reused buffer (all forms of N values)
//	BenchmarkRedact/values=N/bytes       Redactor.Bytes (a new 32 MiB slice each time)
//	BenchmarkRedact/values=N/writer      Redactor.NewWriter, 4 KiB writes
//	BenchmarkRedact/values=N/writer-lines Redactor.NewWriter, one log line per Write (about 150 bytes)
//	BenchmarkRedact/values=N/dump        Redactor.Append on an 8 MiB base64 dump in 76-column lines (N = 1,000 only)
//	BenchmarkRedact/values=N/replacer    strings.NewReplacer over the same forms
//	BenchmarkRedact/values=N/replaceall  a loop of strings.ReplaceAll (N = 10 only: 0.9 MB/s at 100)
//	BenchmarkRedact/values=N/copy        copy of the buffer (memory bandwidth)
//	BenchmarkBuild/values=N              New + AddAll (matcher build)

const (
	benchSize  = 32 << 20
	benchEvery = 4 << 10
)

type benchCase struct {
	vals  map[string]string
	forms []string // every form of every value, as registered
	text  []byte
}

var benchCases sync.Map // int -> *benchCase

func benchSecret(rng *rand.Rand) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	const special = `&<>"'%\/+=-_.:~ !`
	n := 16 + rng.IntN(25)
	b := make([]byte, n)
	for i := range b {
		if rng.IntN(8) == 0 {
			b[i] = special[rng.IntN(len(special))]
		} else {
			b[i] = alnum[rng.IntN(len(alnum))]
		}
	}
	return string(b)
}

var logWords = strings.Fields(`request handled started finished user session cache miss hit
retry upstream timeout connection opened closed flow block run queued claimed worker
http GET POST PUT status ok error warning debug payload bytes latency duration ms
project environment production staging billing notify webhook event topic records`)

func benchLogLine(rng *rand.Rand, b []byte) []byte {
	b = fmt.Appendf(b, "2026-11-23T13:%02d:%02d.%06dZ %s ", rng.IntN(60), rng.IntN(60), rng.IntN(1e6),
		[...]string{"INFO", "DEBUG", "WARN", "ERROR"}[rng.IntN(4)])
	for i, n := 0, 4+rng.IntN(8); i < n; i++ {
		b = append(b, logWords[rng.IntN(len(logWords))]...)
		b = append(b, ' ')
	}
	b = fmt.Appendf(b, "run_id=%016x block=%s dur=%dms path=/api/v1/runs/%d\n",
		rng.Uint64(), logWords[rng.IntN(len(logWords))], rng.IntN(5000), rng.IntN(1e6))
	return b
}

func getBenchCase(n int) *benchCase {
	if c, ok := benchCases.Load(n); ok {
		return c.(*benchCase)
	}
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	c := &benchCase{vals: make(map[string]string, n)}
	var perValue [][]string
	for i := 0; i < n; i++ {
		v := benchSecret(rng)
		c.vals[fmt.Sprintf("SECRET_%d", i)] = v
		f := formSet{min: MinLength}
		f.begin(0)
		f.addValue(v)
		var forms []string
		for _, p := range f.pats {
			forms = append(forms, string(f.arena[p.off:p.off+p.n]))
		}
		perValue = append(perValue, forms)
		c.forms = append(c.forms, forms...)
	}
	text := make([]byte, 0, benchSize+4096)
	next := benchEvery
	for len(text) < benchSize {
		text = benchLogLine(rng, text)
		if len(text) >= next {
			forms := perValue[rng.IntN(n)]
			form := forms[0] // the raw value half of the time
			if rng.IntN(2) == 0 {
				form = forms[rng.IntN(len(forms))]
			}
			text = append(text, "token="...)
			text = append(text, form...)
			text = append(text, '\n')
			next += benchEvery
		}
	}
	c.text = text[:benchSize]
	benchCases.Store(n, c)
	return c
}

// benchDump returns a base64 dump in lines of 76 columns, about
// benchSize/4 long, of random bytes with one of c's values every 3 KiB.
func benchDump(c *benchCase, n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 76))
	vals := make([]string, 0, len(c.vals))
	for _, v := range c.vals {
		vals = append(vals, v)
	}
	slices.Sort(vals)
	blob := make([]byte, 0, benchSize/4*3/4+4096)
	for len(blob) < cap(blob)-4096 {
		for i := 0; i < 3<<10; i++ {
			blob = append(blob, byte(rng.Uint32()))
		}
		blob = append(blob, vals[rng.IntN(len(vals))]...)
	}
	enc := base64.StdEncoding.EncodeToString(blob)
	out := make([]byte, 0, len(enc)+len(enc)/76+1)
	for len(enc) > 0 {
		k := min(76, len(enc))
		out = append(append(out, enc[:k]...), '\n')
		enc = enc[k:]
	}
	return out
}

var benchCounts = []int{10, 100, 1000, 10000}

// cpuRate reports the throughput per CPU second of the process ("cpuMB/s")
// for the loop that follows; call it as defer cpuRate(b, size)().
func cpuRate(b *testing.B, size int) func() {
	start := cpuTime()
	return func() {
		if d := cpuTime() - start; d > 0 {
			b.ReportMetric(float64(size)*float64(b.N)/d.Seconds()/1e6, "cpuMB/s")
		}
	}
}

func BenchmarkRedact(b *testing.B) {
	for _, n := range benchCounts {
		c := getBenchCase(n)
		b.Run(fmt.Sprintf("values=%d/redact", n), func(b *testing.B) {
			r := New()
			r.AddAll(c.vals)
			dst := make([]byte, 0, 2*len(c.text))
			b.SetBytes(int64(len(c.text)))
			b.ResetTimer()
			defer cpuRate(b, len(c.text))()
			for b.Loop() {
				dst = r.Append(dst[:0], c.text)
			}
			b.ReportMetric(float64(len(c.forms))/float64(n), "forms/value")
		})
		b.Run(fmt.Sprintf("values=%d/bytes", n), func(b *testing.B) {
			r := New()
			r.AddAll(c.vals)
			b.SetBytes(int64(len(c.text)))
			b.ResetTimer()
			defer cpuRate(b, len(c.text))()
			for b.Loop() {
				_ = r.Bytes(c.text)
			}
		})
		b.Run(fmt.Sprintf("values=%d/writer", n), func(b *testing.B) {
			r := New()
			r.AddAll(c.vals)
			b.SetBytes(int64(len(c.text)))
			b.ResetTimer()
			defer cpuRate(b, len(c.text))()
			for b.Loop() {
				w := r.NewWriter(io.Discard)
				for p := c.text; len(p) > 0; {
					k := min(len(p), 4096)
					w.Write(p[:k])
					p = p[k:]
				}
				w.Close()
			}
		})
		b.Run(fmt.Sprintf("values=%d/writer-lines", n), func(b *testing.B) {
			// One log line per Write, as console output and exec output
			// arrive.
			r := New()
			r.AddAll(c.vals)
			lines := bytes.SplitAfter(c.text, []byte("\n"))
			b.SetBytes(int64(len(c.text)))
			b.ResetTimer()
			defer cpuRate(b, len(c.text))()
			for b.Loop() {
				w := r.NewWriter(io.Discard)
				for _, l := range lines {
					w.Write(l)
				}
				w.Close()
			}
			b.ReportMetric(float64(len(c.text))/float64(len(lines)), "bytes/line")
		})
		if n == 1000 {
			b.Run(fmt.Sprintf("values=%d/dump", n), func(b *testing.B) {
				// A base64 dump (76 columns) of a blob holding a value
				// every 4 KiB: every line break ends a line of the
				// alphabets, so every one is looked at for occurrences
				// cut within their head (wrapped.go).
				r := New()
				r.AddAll(c.vals)
				text := benchDump(c, n)
				dst := make([]byte, 0, 2*len(text))
				b.SetBytes(int64(len(text)))
				b.ResetTimer()
				defer cpuRate(b, len(text))()
				for b.Loop() {
					dst = r.Append(dst[:0], text)
				}
			})
		}
		b.Run(fmt.Sprintf("values=%d/replacer", n), func(b *testing.B) {
			old := make([]string, 0, 2*len(c.forms))
			for _, f := range c.forms {
				old = append(old, f, "[REDACTED]")
			}
			rep := strings.NewReplacer(old...)
			s := string(c.text)
			b.SetBytes(int64(len(s)))
			b.ResetTimer()
			defer cpuRate(b, len(c.text))()
			for b.Loop() {
				_ = rep.Replace(s)
			}
		})
		if n <= 10 {
			b.Run(fmt.Sprintf("values=%d/replaceall", n), func(b *testing.B) {
				s := string(c.text)
				b.SetBytes(int64(len(s)))
				b.ResetTimer()
				defer cpuRate(b, len(s))()
				for b.Loop() {
					out := s
					for _, f := range c.forms {
						out = strings.ReplaceAll(out, f, "[REDACTED]")
					}
				}
			})
		}
		b.Run(fmt.Sprintf("values=%d/copy", n), func(b *testing.B) {
			dst := make([]byte, len(c.text))
			b.SetBytes(int64(len(c.text)))
			b.ResetTimer()
			defer cpuRate(b, len(c.text))()
			for b.Loop() {
				copy(dst, c.text)
			}
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range benchCounts {
		c := getBenchCase(n)
		b.Run(fmt.Sprintf("values=%d", n), func(b *testing.B) {
			start := cpuTime()
			defer func() {
				b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
			}()
			for b.Loop() {
				r := New()
				r.AddAll(c.vals)
			}
		})
	}
}

// BenchmarkAdd measures adding one run-time value: to a Redactor that holds
// a run's 20 secrets (rebuilt whole), and to one that holds 10,000 values
// (amortized: the side matcher is rebuilt on every Add, the main one now
// and then).
func BenchmarkAdd(b *testing.B) {
	b.Run("values=20", func(b *testing.B) {
		c := getBenchCase(100)
		vals := map[string]string{}
		for k, v := range c.vals {
			if len(vals) < 20 {
				vals[k] = v
			}
		}
		i := 0
		for b.Loop() {
			b.StopTimer()
			r := New()
			r.AddAll(vals)
			i++
			b.StartTimer()
			r.Add("RUNTIME", fmt.Sprintf("run-time-token-%d-%x", i, i*2654435761))
		}
	})
	b.Run("values=10000", func(b *testing.B) {
		c := getBenchCase(10000)
		r := New()
		r.AddAll(c.vals)
		i := 0
		for b.Loop() {
			i++
			r.Add("RUNTIME", fmt.Sprintf("run-time-token-%d-%x", i, i*2654435761))
		}
	})
}

// TestBenchText checks that the benchmark text holds what it should and
// that the Redactor masks all of it.
func TestBenchText(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 32 MiB")
	}
	c := getBenchCase(100)
	r := New()
	r.AddAll(c.vals)
	out := r.Bytes(c.text)
	if got, want := bytes.Count(out, []byte("[REDACTED:")), benchSize/benchEvery; got < want-2 {
		t.Fatalf("%d masks, want about %d", got, want)
	}
	for _, v := range c.vals {
		if bytes.Contains(out, []byte(v)) {
			t.Fatalf("%q survived", v)
		}
	}
}

// BenchmarkValueNoMatch measures Redactor.Value on the data of a typical
// stored event (a block output of about 2 KiB: a map of strings, numbers
// and a nested list) holding none of 20 values: the common case of every
// event a run stores.
func BenchmarkValueNoMatch(b *testing.B) {
	r := New()
	for i := range 20 {
		r.Add(fmt.Sprintf("SECRET_%d", i), fmt.Sprintf("sk_live_%016x%08d", uint64(i)*0x9E3779B97F4A7C15, i))
	}
	var items []any
	for i := range 28 {
		items = append(items, map[string]any{"id": i, "name": "record", "status": "active", "note": "created by the nightly import job"})
	}
	v := map[string]any{"output": map[string]any{"status": 200, "headers": map[string]any{"Content-Type": "application/json"}, "body": items}, "attempt": 1}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Value(v)
	}
}
