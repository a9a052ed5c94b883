package redact

import (
	"io"
	"sync"
)

// maxPending bounds what a Writer holds back when matches keep chaining
// (adjacent or overlapping occurrences with no gap): past it, the Writer
// emits what it has, which may split one merged mask into two.
const maxPending = 64 << 10

// Writer masks the registered values in a stream. It catches a value split
// across writes: it holds back only the tail of what was written that could
// still be the start of a value in one of its forms (at most the length of
// the longest form minus one byte, plus a masked range that could still
// grow) and writes everything else, masked, to the underlying writer: a log
// line that ends in a newline is usually written at once. Close writes the
// tail.
//
// The output equals Redactor.String of everything written, except when
// values are added during the stream or when matches chain past 64 KiB.
// A Writer is safe for concurrent use; Close does not close the underlying
// writer.
type Writer struct {
	r  *Redactor
	w  io.Writer
	mu sync.Mutex // mu guards the fields below.

	pend   []byte // written, not yet emitted
	prev   int    // last emitted byte, or -1
	run    int    // base64 and hex characters at the end of what was emitted
	out    []byte // scratch for masked output
	sp     []span
	found  Found // names of the values masked
	closed bool
	err    error // sticky error of w
}

// NewWriter returns a Writer that writes masked output to w.
func (r *Redactor) NewWriter(w io.Writer) *Writer {
	return &Writer{r: r, w: w, prev: -1}
}

// Write masks p and writes what is safe to write to the underlying writer.
// It returns len(p) unless the underlying writer failed or the Writer is
// closed.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, io.ErrClosedPipe
	}
	if w.err != nil {
		return 0, w.err
	}
	t := p
	if len(w.pend) > 0 {
		w.pend = append(w.pend, p...)
		t = w.pend
	}
	// With nothing held back (a stream of whole lines), p is masked where
	// it is and only its tail, if any, is copied.
	if err := w.emit(t, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Found returns the names of the values the Writer masked so far (or
// found in what it holds back), sorted, as [Found.Names] does.
func (w *Writer) Found() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.found.Names()
}

// Close writes what is held back. It does not close the underlying writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	return w.emit(w.pend, true)
}

// emit writes the safe prefix of t, which is w.pend or, when nothing is
// held back, the caller's p, and keeps the rest in w.pend. w.mu must be
// held.
func (w *Writer) emit(t []byte, final bool) error {
	snap := w.r.load()
	cut := len(t)
	var sp []span
	if snap != nil {
		sp = snap.findAll(t, w.prev, w.run, w.sp[:0])
		if len(sp) > 0 {
			w.found.note(snap.names, sp)
			sp = merge(sp)
		}
		w.sp = sp
		if !final {
			// Hold back the longest tail that can still be the start of
			// an occurrence: every occurrence that starts before cut is
			// then complete within t. Later bytes can only create
			// occurrences starting at or after cut, which can merge with a
			// masked range that ends at or after cut: hold that back too.
			cut = len(t) - snap.holdBack(t)
			// A line of a wrapped base64 or hex dump may go on in the
			// next write.
			cut = min(cut, snap.wrapHold(t, w.run))
			for i := len(sp) - 1; i >= 0; i-- {
				if sp[i].end < cut {
					break
				}
				if sp[i].start < cut {
					cut = sp[i].start
				}
			}
			if len(t)-cut > maxPending+snap.hold {
				// Pathological chaining: stop merging. Every range that
				// starts before the usual cut is complete: emit it whole.
				cut = max(len(t)-snap.hold, 0)
				for _, x := range sp {
					if x.start < cut {
						cut = max(cut, x.end)
					}
				}
			}
		}
	}
	var err error
	if cut > 0 {
		out := t[:cut]
		if len(sp) > 0 && sp[0].start < cut {
			out = w.out[:0]
			last := 0
			for _, x := range sp {
				if x.start >= cut {
					break
				}
				out = append(out, t[last:x.start]...)
				out = snap.appendMask(out, t, x)
				last = x.end
			}
			out = append(out, t[last:cut]...)
			w.out = out
		}
		w.prev = int(t[cut-1])
		k := cut
		for k > 0 && encByte[t[k-1]] && cut-k <= wrapMin {
			k--
		}
		if k > 0 {
			w.run = 0
		}
		w.run = min(w.run+cut-k, wrapMin+1)
		if _, err = w.w.Write(out); err != nil {
			w.err = err
		}
	}
	// Keep the tail (t may be w.pend itself: copy down).
	if tail := t[cut:]; cap(w.pend) >= len(tail) {
		w.pend = w.pend[:copy(w.pend[:len(tail)], tail)]
	} else {
		w.pend = append([]byte(nil), tail...)
	}
	return err
}
