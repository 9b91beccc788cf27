// Package codec encodes registry blobs into self-describing frames.
//
// A frame is a small header followed by the payload:
//
//	offset size  field
//	0      4     magic "DLTB"
//	4      1     version (1)
//	5      1     encoding: 0 raw, 1 zstd, 2 byte-grouped, 3 xor against a base
//	6      1     flags: bit 0 = each element was rotated left by one bit before
//	             grouping, which moves the float sign bit out of the exponent byte
//	7      1     element size in bytes (byte-grouped and xor; 0 otherwise)
//	8      8     raw (decoded) length, little-endian uint64
//	16     1     base digest length n (xor only; 0 otherwise)
//	17     n     base digest, e.g. "sha256:<64 hex>"
//	17+n   ...   payload
//
// Payloads: raw is the bytes themselves; zstd is one zstd frame with its
// content size; byte-grouped and xor carry one record per byte plane (mode
// byte 0 = stored, 1 = zstd, 2 = Huffman blocks (see huff.go); uint64
// stored length; data), then the
// RawLen % ElemSize trailing bytes that do not fill an element, stored as
// they are. Plane k holds byte k of every element (after the optional
// rotation); xor applies all that to raw XOR base.
//
// A blob's address is the digest of its decoded bytes, so one address serves
// every encoding and verify can always re-hash. The codec itself does not
// hash: the registry re-hashes what Decode returns.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// ErrCorrupt wraps every decoding failure caused by the frame's bytes.
var ErrCorrupt = errors.New("corrupt blob frame")

// ErrTooLarge reports input over the codec's size cap (see Options.MaxRawLen).
var ErrTooLarge = errors.New("blob too large for one frame")

// Magic starts every frame.
const Magic = "DLTB"

// Version is the frame version this package writes and reads.
const Version = 1

// MaxRawLen is the default cap on a frame's decoded size. Large tensors are
// chunked by the registry well below it; the cap keeps a hostile frame from
// asking for an unbounded allocation.
const MaxRawLen = 1 << 30

// MaxElemSize is the largest element size a frame may name.
const MaxElemSize = 16

const (
	fixedHeaderLen = 17
	flagRotate     = 1
)

// Encoding names how a frame's payload is encoded.
type Encoding uint8

// The encodings. Their numbers are part of the stored format.
const (
	Raw         Encoding = 0
	Zstd        Encoding = 1
	ByteGrouped Encoding = 2
	XOR         Encoding = 3
)

var _ fmt.Stringer = Encoding(0)

func (e Encoding) String() string {
	switch e {
	case Raw:
		return "raw"
	case Zstd:
		return "zstd"
	case ByteGrouped:
		return "bytegroup"
	case XOR:
		return "xor-bytegroup"
	}
	return fmt.Sprintf("encoding(%d)", uint8(e))
}

// Header is the parsed start of a frame.
type Header struct {
	Encoding Encoding
	// RawLen is the length of the decoded bytes.
	RawLen int64
	// BaseDigest names the blob an XOR frame was encoded against.
	BaseDigest digest.Digest
	// ElemSize is the element size byte planes were split by (0 when unused).
	ElemSize int
	// Rotated: elements were rotated left by one bit before grouping.
	Rotated bool
	// Len is the header's length in bytes; the payload starts there.
	Len int
}

// ParseHeader reads and checks a frame's header. Errors wrap ErrCorrupt.
// It does not apply the size cap of a Codec; Decode does.
func ParseHeader(frame []byte) (Header, error) {
	var h Header
	if len(frame) < fixedHeaderLen {
		return h, fmt.Errorf("%w: %d bytes, shorter than a header", ErrCorrupt, len(frame))
	}
	if string(frame[:4]) != Magic {
		return h, fmt.Errorf("%w: bad magic %q", ErrCorrupt, frame[:4])
	}
	if frame[4] != Version {
		return h, fmt.Errorf("%w: unsupported frame version %d (this build reads %d)", ErrCorrupt, frame[4], Version)
	}
	h.Encoding = Encoding(frame[5])
	flags := frame[6]
	h.ElemSize = int(frame[7])
	raw := binary.LittleEndian.Uint64(frame[8:16])
	if raw > 1<<62 {
		return h, fmt.Errorf("%w: raw length %d", ErrCorrupt, raw)
	}
	h.RawLen = int64(raw)
	n := int(frame[16])
	h.Len = fixedHeaderLen + n
	if len(frame) < h.Len {
		return h, fmt.Errorf("%w: truncated base digest", ErrCorrupt)
	}
	if flags&^flagRotate != 0 {
		return h, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, flags)
	}
	h.Rotated = flags&flagRotate != 0
	switch h.Encoding {
	case Raw, Zstd:
		if h.ElemSize != 0 || n != 0 || h.Rotated {
			return h, fmt.Errorf("%w: %s frame with element size, flags or base digest", ErrCorrupt, h.Encoding)
		}
	case ByteGrouped:
		if h.ElemSize < 2 || h.ElemSize > MaxElemSize || n != 0 {
			return h, fmt.Errorf("%w: byte-grouped frame with element size %d or a base digest", ErrCorrupt, h.ElemSize)
		}
	case XOR:
		if h.ElemSize < 1 || h.ElemSize > MaxElemSize || n == 0 {
			return h, fmt.Errorf("%w: xor frame with element size %d or without a base digest", ErrCorrupt, h.ElemSize)
		}
		h.BaseDigest = digest.Digest(frame[fixedHeaderLen:h.Len])
		if err := h.BaseDigest.Validate(); err != nil {
			return h, fmt.Errorf("%w: base digest: %v", ErrCorrupt, err)
		}
	default:
		return h, fmt.Errorf("%w: unknown encoding %d", ErrCorrupt, uint8(h.Encoding))
	}
	if h.Rotated && !rotatable(h.ElemSize) {
		return h, fmt.Errorf("%w: rotation flag with element size %d", ErrCorrupt, h.ElemSize)
	}
	return h, nil
}

// appendHeader writes h (Len is ignored) to dst.
func appendHeader(dst []byte, h Header) []byte {
	dst = append(dst, Magic...)
	var flags byte
	if h.Rotated {
		flags |= flagRotate
	}
	dst = append(dst, Version, byte(h.Encoding), flags, byte(h.ElemSize))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.RawLen))
	dst = append(dst, byte(len(h.BaseDigest)))
	return append(dst, h.BaseDigest...)
}
