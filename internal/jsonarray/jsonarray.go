// Package jsonarray encodes an object with one large array member (a
// decision's actions, a ledger entry's) exactly as encoding/json would,
// in one buffer sized up front. json.Marshal of an object holding 40,000
// actions (a roster of 100,000) grows its buffer by doubling and then
// copies the result, three times the memory of the encoding; here it is
// the encoding's size once, and it can stop at a limit instead of
// finishing an answer nobody may send.
package jsonarray

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrTooLarge is returned when the encoding would exceed the limit.
var ErrTooLarge = errors.New("the encoding exceeds its limit")

// Encode encodes shell with its member name holding elems. shell is the
// object to encode with that member empty (encoded as `"name":[]`, which
// inside a JSON string could only appear escaped, so it is found
// unambiguously), and elems are encoded into it one at a time, the
// buffer sized from the first of them (they are alike). limit > 0 bounds
// the array: once the encoding passes it, Encode stops with ErrTooLarge.
func Encode[E any](shell any, name string, elems []E, limit int64) ([]byte, error) {
	frame, err := json.Marshal(shell)
	if err != nil {
		return nil, err
	}
	empty := []byte(`"` + name + `":[]`)
	head, tail, ok := bytes.Cut(frame, empty)
	if !ok {
		return nil, fmt.Errorf("encoding: no %s member", empty)
	}
	size := int64(len(frame))
	if limit > 0 && size > limit {
		return nil, ErrTooLarge
	}
	if len(elems) > 0 {
		first, err := json.Marshal(&elems[0])
		if err != nil {
			return nil, fmt.Errorf("encoding element 0: %w", err)
		}
		// Room for longer ids than the first's, and the commas.
		size += int64(len(elems)) * int64(len(first)+len(first)/8+1)
	}
	if limit > 0 {
		size = min(size, limit+1)
	}
	var buf bytes.Buffer
	buf.Grow(int(size))
	buf.Write(head)
	buf.Write(empty[:len(empty)-1]) // `"name":[`
	enc := json.NewEncoder(&buf)
	for i := range elems {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(&elems[i]); err != nil {
			return nil, fmt.Errorf("encoding element %d: %w", i, err)
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		if limit > 0 && int64(buf.Len()) > limit {
			return nil, ErrTooLarge
		}
	}
	buf.WriteByte(']')
	buf.Write(tail)
	// The members after the array count too.
	if limit > 0 && int64(buf.Len()) > limit {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}
