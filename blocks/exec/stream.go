package exec

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/redact"
)

// maxLine is the longest text of one log event: a longer line is logged
// in pieces of this size.
const maxLine = 16 << 10

// stream is the writer of one of the command's outputs. What the command
// writes goes through a redacting Writer first, so that nothing after it
// (log events, the kept output) ever sees a byte of a value this block
// resolved, even one written a byte at a time; then it is kept, up to max
// bytes, and logged line by line.
type stream struct {
	name string
	rw   *redact.Writer
	sink *sink
}

type sink struct {
	name string
	max  int
	emit func(blocks.Event)

	mu        sync.Mutex // guards the fields below
	kept      bytes.Buffer
	line      []byte
	logged    int
	truncated bool
	noted     bool
}

func newStream(name string, red *redact.Redactor, max int, emit func(blocks.Event)) *stream {
	s := &sink{name: name, max: max, emit: emit}
	return &stream{name: name, rw: red.NewWriter(s), sink: s}
}

// Write is called by os/exec's copying goroutine.
func (s *stream) Write(p []byte) (int, error) { return s.rw.Write(p) }

// Close flushes what the redacting writer held back and the last line.
func (s *stream) Close() {
	_ = s.rw.Close()
	s.sink.flush()
}

// Output is the kept, redacted output. When it was truncated, a partial
// last line is dropped (it could be the start of a value of another
// secret, which only a whole line lets the run's redactor catch).
func (s *stream) Output() string {
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	return s.sink.kept.String()
}

// Truncated reports whether output was dropped.
func (s *stream) Truncated() bool {
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	return s.sink.truncated
}

// Write receives redacted bytes.
func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	if room := s.max - s.kept.Len(); room < len(p) {
		if !s.truncated {
			keep := p[:max(room, 0)]
			if i := bytes.LastIndexByte(keep, '\n'); i >= 0 && room-i < 4096 {
				keep = keep[:i+1]
			}
			s.kept.Write(keep)
		}
		s.truncated = true
	} else if !s.truncated {
		s.kept.Write(p)
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.line = append(s.line, p...)
			for len(s.line) >= maxLine {
				s.logLocked(s.line[:maxLine])
				s.line = append(s.line[:0], s.line[maxLine:]...)
			}
			break
		}
		s.line = append(s.line, p[:i]...)
		s.logLocked(s.line)
		s.line = s.line[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (s *sink) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.line) > 0 {
		s.logLocked(s.line)
		s.line = s.line[:0]
	}
}

// logLocked emits one log event, within the logging budget of max bytes.
func (s *sink) logLocked(line []byte) {
	if s.logged >= s.max {
		if !s.noted {
			s.noted = true
			s.emit(blocks.Event{Type: "log", Data: map[string]any{"level": "warn", "stream": s.name,
				"message": fmt.Sprintf("%s: more than %d bytes; the rest is not logged", s.name, s.max)}})
		}
		return
	}
	s.logged += len(line) + 1
	level := "info"
	if s.name == "stderr" {
		level = "warn"
	}
	s.emit(blocks.Event{Type: "log", Data: map[string]any{"level": level, "stream": s.name,
		"message": strings.TrimSuffix(string(line), "\r")}})
}
