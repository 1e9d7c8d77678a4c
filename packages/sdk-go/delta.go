package arqon

import (
	"encoding/binary"
	"fmt"
)

// Fossil deltas, as the gateway sends them to subscriptions that opted in (SubscribeOptions.Delta): the target size
// as a base-64 number and a newline, then commands, each a base-64 number and a letter: "N@O," copies N bytes of the
// base from offset O, "N:" inserts the N bytes that follow, "C;" ends the delta with C, the checksum of the rebuilt
// payload (the sum modulo 2^32 of its bytes read as big-endian 32-bit words, the last one padded with zero bytes).
// The digits are 0-9 A-Z _ a-z ~, most significant first.

const maxDeltaOutput = 16 << 20

var deltaDigit = func() [256]int8 {
	var t [256]int8
	for i := range t {
		t[i] = -1
	}
	for i, c := range "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~" {
		t[c] = int8(i)
	}
	return t
}()

func deltaChecksum(data []byte) uint32 {
	var sum uint32
	for len(data) >= 4 {
		sum += binary.BigEndian.Uint32(data)
		data = data[4:]
	}
	if len(data) > 0 {
		var last [4]byte
		copy(last[:], data)
		sum += binary.BigEndian.Uint32(last[:])
	}
	return sum
}

type deltaReader struct {
	d   []byte
	pos int
}

func (r *deltaReader) number() (int, error) {
	start := r.pos
	v := 0
	for r.pos < len(r.d) {
		digit := deltaDigit[r.d[r.pos]]
		if digit < 0 {
			break
		}
		if v > (1 << 40) {
			return 0, fmt.Errorf("a number at byte %d is too large", start)
		}
		v = v<<6 | int(digit)
		r.pos++
	}
	if r.pos == start {
		return 0, fmt.Errorf("a number was expected at byte %d", start)
	}
	return v, nil
}

func (r *deltaReader) char() (byte, error) {
	if r.pos >= len(r.d) {
		return 0, fmt.Errorf("the delta ends without its checksum")
	}
	c := r.d[r.pos]
	r.pos++
	return c, nil
}

// applyDelta rebuilds the payload a delta was made from, given the previous payload.
func applyDelta(base, delta []byte, maxBytes int) ([]byte, error) {
	r := &deltaReader{d: delta}
	size, err := r.number()
	if err != nil {
		return nil, err
	}
	if c, err := r.char(); err != nil || c != '\n' {
		return nil, fmt.Errorf("the size header does not end with a newline")
	}
	if size > maxBytes {
		return nil, fmt.Errorf("the delta rebuilds %d bytes, more than %d", size, maxBytes)
	}
	out := make([]byte, 0, size)
	for r.pos < len(delta) {
		count, err := r.number()
		if err != nil {
			return nil, err
		}
		op, err := r.char()
		if err != nil {
			return nil, err
		}
		switch op {
		case '@':
			offset, err := r.number()
			if err != nil {
				return nil, err
			}
			if c, err := r.char(); err != nil || c != ',' {
				return nil, fmt.Errorf("a copy command does not end with a comma")
			}
			if offset+count > len(base) {
				return nil, fmt.Errorf("a copy command reaches past the end of the base")
			}
			if len(out)+count > size {
				return nil, fmt.Errorf("the delta rebuilds more than its announced size")
			}
			out = append(out, base[offset:offset+count]...)
		case ':':
			if len(out)+count > size {
				return nil, fmt.Errorf("the delta rebuilds more than its announced size")
			}
			if r.pos+count > len(delta) {
				return nil, fmt.Errorf("an insert command reaches past the end of the delta")
			}
			out = append(out, delta[r.pos:r.pos+count]...)
			r.pos += count
		case ';':
			if len(out) != size {
				return nil, fmt.Errorf("the delta rebuilt %d bytes, not the announced %d", len(out), size)
			}
			if deltaChecksum(out) != uint32(count) {
				return nil, fmt.Errorf("checksum mismatch: the delta does not apply to this base")
			}
			return out, nil
		default:
			return nil, fmt.Errorf("unknown delta command %q", op)
		}
	}
	return nil, fmt.Errorf("the delta ends without its checksum")
}
