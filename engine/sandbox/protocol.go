// Package sandbox runs JavaScript in a pool of worker processes with a
// memory limit and a CPU deadline, so that a script that goja cannot stop
// (a huge builtin, a memory bomb, a backtracking regex) costs a worker, not
// the server.
//
// Lifecycle:
//
//  1. The server calls New with the path of its own executable and the
//     hidden subcommand that calls WorkerMain (`hushflow sandbox-worker`).
//     New starts Config.Workers processes and waits until each is ready.
//  2. Pool.Run takes an idle worker, sends it the script and the run's
//     globals, and serves its requests (a secret by name and scope, the
//     secret names, console records, masks) through the jsvm.Host, so that
//     the server authorizes and audits every secret read.
//  3. A worker that answers is reused; each evaluation gets a fresh goja
//     runtime, so no global survives it. A worker that passes its deadline
//     (plus Config.Grace), whose caller gives up, or that dies (its memory
//     limit makes allocation fail and the Go runtime exits) is killed and
//     replaced, and Run returns a clear error.
//  4. Close kills every worker.
//
// Frames on the worker's stdin and stdout are a 4-byte big-endian length
// and that many bytes: the message's own fields as JSON, after its
// length, then the run's data (input, steps, run, env, item: JSON the
// server wrote), each after its length, as they are (see message.data).
package sandbox

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hushflow/hushflow/engine/jsvm"
)

// message is one frame. T says which fields are set:
//
//	server -> worker: "eval" (Kind, Src, globals, limits), "secret" (Value
//	or Err), "names" (Names or Err)
//	worker -> server: "ready", "secret" (Name, Scope), "names", "log"
//	(Level, Message), "mask" (Value), "result" (Result), "error" (Error)
type message struct {
	T string `json:"t"`

	Kind    jsvm.Kind       `json:"kind,omitempty"`
	Src     string          `json:"src,omitempty"`
	Input   json.RawMessage `json:"-"`
	Steps   json.RawMessage `json:"-"`
	Run     json.RawMessage `json:"-"`
	Env     json.RawMessage `json:"-"`
	Failure *jsvm.Failure   `json:"failure,omitempty"`
	// EachIndex and Item are `index` and `item` of an iteration of a
	// block with each (EachIndex nil elsewhere).
	EachIndex *int            `json:"each_index,omitempty"`
	Item      json.RawMessage `json:"-"`
	TimeoutNS int64           `json:"timeout,omitempty"`
	MaxOutput int             `json:"max_output,omitempty"`
	MaxStack  int             `json:"max_stack,omitempty"`
	MaxLog    int             `json:"max_log,omitempty"`
	Ordered   bool            `json:"ordered,omitempty"`

	Name    string     `json:"name,omitempty"`
	Scope   jsvm.Scope `json:"scope,omitzero"`
	Value   string     `json:"value,omitempty"`
	Names   []string   `json:"names,omitempty"`
	Err     string     `json:"err,omitempty"`
	Level   string     `json:"level,omitempty"`
	Message string     `json:"message,omitempty"`

	Result json.RawMessage `json:"result,omitempty"`
	Error  *jsvm.Error     `json:"error,omitempty"`
}

// maxFrame bounds a frame read by the worker (a request with its globals).
const maxFrame = 256 << 20

func writeFrame(w *bufio.Writer, m *message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	data := m.data()
	size := 4 + len(b)
	for _, d := range data {
		size += 4 + len(*d)
	}
	var n [4]byte
	put := func(k int) error {
		binary.BigEndian.PutUint32(n[:], uint32(k))
		_, err := w.Write(n[:])
		return err
	}
	if err := put(size); err != nil {
		return err
	}
	if err := put(len(b)); err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	for _, d := range data {
		if err := put(len(*d)); err != nil {
			return err
		}
		if _, err := w.Write(*d); err != nil {
			return err
		}
	}
	return nil
}

// readFrame reads one frame of at most limit bytes into m. The run's data
// is left as it came, slices of the frame, for the worker to build its
// values from: no JSON decoder reads it (twice over) first.
func readFrame(r *bufio.Reader, limit int, m *message) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	// Lengths are compared before they become ints: on a 32-bit build a
	// worker's 0xFFFFFFFF would be -1.
	size32 := binary.BigEndian.Uint32(n[:])
	if uint64(size32) > uint64(limit) {
		return fmt.Errorf("sandbox: frame of %d bytes over the limit of %d", size32, limit)
	}
	size := int(size32)
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	*m = message{}
	next := func() ([]byte, error) {
		if len(b) < 4 {
			return nil, errors.New("the frame ends early")
		}
		k32 := binary.BigEndian.Uint32(b)
		if uint64(k32) > uint64(len(b)-4) {
			return nil, errors.New("the frame ends early")
		}
		k := int(k32)
		part := b[4 : 4+k : 4+k]
		b = b[4+k:]
		return part, nil
	}
	fields, err := next()
	if err != nil {
		return badFrame{err}
	}
	if err := json.Unmarshal(fields, m); err != nil {
		return badFrame{err}
	}
	for _, d := range m.data() {
		part, err := next()
		if err != nil {
			return badFrame{err}
		}
		if len(part) > 0 {
			*d = part
		}
	}
	if len(b) != 0 {
		return badFrame{errors.New("bytes after the data")}
	}
	return nil
}

// dataNames names message.data's values, in its order.
var dataNames = [...]string{"input", "steps", "run", "env", "item"}

// data lists the run's data of m, which travels after its fields.
func (m *message) data() [5]*json.RawMessage {
	return [...]*json.RawMessage{&m.Input, &m.Steps, &m.Run, &m.Env, &m.Item}
}

// badFrame is a frame read whole that does not decode: the stream is
// still in step, and the reader may answer it and go on.
type badFrame struct{ err error }

func (b badFrame) Error() string { return "sandbox: the frame does not decode: " + b.err.Error() }
func (b badFrame) Unwrap() error { return b.err }
