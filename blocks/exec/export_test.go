package exec

import (
	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/redact"
)

// NewStreamForTest exposes the output stream to tests.
func NewStreamForTest(name string, red *redact.Redactor, max int, emit func(blocks.Event)) interface {
	Write([]byte) (int, error)
	Close()
	Output() string
} {
	return newStream(name, red, max, emit)
}
