package jsvm

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/dop251/goja/file"
)

// ErrorCode classifies an Error. It crosses the sandbox boundary as text.
type ErrorCode string

const (
	CodeSyntax        ErrorCode = "syntax"         // the source does not parse
	CodeException     ErrorCode = "exception"      // the script threw
	CodeSecret        ErrorCode = "secret"         // a secret did not resolve
	CodeTimeout       ErrorCode = "timeout"        // the deadline passed
	CodeCanceled      ErrorCode = "canceled"       // the caller's context ended
	CodeStackOverflow ErrorCode = "stack_overflow" // the call stack limit
	CodeOutput        ErrorCode = "output"         // the result is not a JSON value or too big
	CodeInput         ErrorCode = "input"          // a global is beyond what the sandbox takes
	CodeMemory        ErrorCode = "memory"         // the sandbox hit its memory limit
	CodeCrash         ErrorCode = "crash"          // the sandbox process died
	CodeUnavailable   ErrorCode = "unavailable"    // no sandbox could run the script
	CodeInternal      ErrorCode = "internal"       // a bug
)

// Error is an error of a script. Positions are in the user's source (1-based).
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	Line    int       `json:"line,omitempty"`
	Column  int       `json:"column,omitempty"`
	Snippet string    `json:"snippet,omitempty"`
	Stack   string    `json:"stack,omitempty"`
	// Err is the Go cause, when there is one (not sent across processes).
	Err error `json:"-"`
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Message)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// fileMap maps positions of the wrapped source to the user's source.
type fileMap struct {
	src       string
	prefixLen int
	file      *file.File
}

func (fm *fileMap) userPos(line, col int) (int, int) {
	line -= prefixLines
	n := strings.Count(fm.src, "\n") + 1
	if line < 1 {
		return 1, 1
	}
	if line > n {
		last := fm.line(n)
		return n, len(last) + 1
	}
	return line, col
}

func (fm *fileMap) syntaxError(line, col int, msg string) *Error {
	// A token of the wrapper after the user's last line means the user's
	// source ended too early ("(1 +" meets the wrapper's ")"): say so
	// rather than name a token the user never wrote.
	if line-prefixLines > strings.Count(fm.src, "\n")+1 && strings.HasPrefix(msg, "Unexpected token") {
		msg = "Unexpected end of input"
	}
	l, c := fm.userPos(line, col)
	return &Error{Code: CodeSyntax, Message: "SyntaxError: " + msg, Line: l, Column: c, Snippet: fm.line(l)}
}

func (fm *fileMap) syntaxErrorAt(idx file.Idx, msg string) *Error {
	p := fm.file.Position(int(idx) - fm.file.Base())
	return fm.syntaxError(p.Line, p.Column, msg)
}

// Pos returns the user position of an AST index.
func (s *Script) Pos(idx file.Idx) (line, col int) {
	fm := s.File
	p := fm.file.Position(int(idx) - fm.file.Base())
	return fm.userPos(p.Line, p.Column)
}

// line returns line n (1-based) of the user source, cut to 200 bytes.
func (fm *fileMap) line(n int) string {
	s := fm.src
	for i := 1; i < n; i++ {
		j := strings.IndexByte(s, '\n')
		if j < 0 {
			return ""
		}
		s = s[j+1:]
	}
	if j := strings.IndexByte(s, '\n'); j >= 0 {
		s = s[:j]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

var framePos = regexp.MustCompile(srcName + `:(\d+):(\d+)(\(\d+\))?`)

func (fm *fileMap) firstFrame(stack string) (int, int) {
	m := framePos.FindStringSubmatch(stack)
	if m == nil {
		return 0, 0
	}
	l, _ := strconv.Atoi(m[1])
	c, _ := strconv.Atoi(m[2])
	return fm.userPos(l, c)
}

// rewriteStack shows user positions and drops the wrapper's frame names.
func (fm *fileMap) rewriteStack(stack string) string {
	stack = trimLines(stack, 32)
	return framePos.ReplaceAllStringFunc(stack, func(s string) string {
		m := framePos.FindStringSubmatch(s)
		l, _ := strconv.Atoi(m[1])
		c, _ := strconv.Atoi(m[2])
		l, c = fm.userPos(l, c)
		return fmt.Sprintf("%s:%d:%d", srcName, l, c)
	})
}

// Before returns the last byte before the AST index idx in the user's
// source that is not white space, or 0 at its start.
func (s *Script) Before(idx file.Idx) byte {
	fm := s.File
	i := int(idx) - fm.file.Base() - fm.prefixLen
	for i--; i >= 0 && i < len(fm.src); i-- {
		switch c := fm.src[i]; c {
		case ' ', '\t', '\n', '\r':
		default:
			return c
		}
	}
	return 0
}
