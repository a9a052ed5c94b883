package blocks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// Dur is a duration in configuration: a Go duration string ("1.5s",
// "250ms") or a number of milliseconds.
type Dur time.Duration

// UnmarshalJSON accepts "1.5s" or 1500.
func (d *Dur) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		*d = 0
	case float64:
		*d = Dur(time.Duration(x * float64(time.Millisecond)))
	case string:
		if ms, err := strconv.ParseFloat(x, 64); err == nil {
			*d = Dur(time.Duration(ms * float64(time.Millisecond)))
			return nil
		}
		p, err := time.ParseDuration(x)
		if err != nil {
			return fmt.Errorf("invalid duration %q: use a number of milliseconds or a string such as \"1.5s\"", x)
		}
		*d = Dur(p)
	default:
		return fmt.Errorf("invalid duration: use a number of milliseconds or a string such as \"1.5s\"")
	}
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Dur) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// D returns the time.Duration.
func (d Dur) D() time.Duration { return time.Duration(d) }
