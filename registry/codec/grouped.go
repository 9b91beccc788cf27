package codec

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/huff0"
	"github.com/klauspost/compress/zstd"
)

// Plane record modes.
const (
	planeStored = 0
	planeZstd   = 1
	planeHuff   = 2
)

// zstdProbe is how much of a plane zstd is tried on before it is run on
// the whole plane.
const zstdProbe = 1 << 20

// appendPlanes appends the plane records and the tail of src to f.
//
// Each plane gets Huffman blocks (best for exponent planes: independent
// draws from a skewed distribution) unless zstd does better (planes with
// runs or repeats: zeros, XOR of near-equal weights, integer ids), and is
// stored as it is when neither saves 1/64 of it (mantissa planes are
// near-random and decode fastest as a plain copy). To keep encoding at one
// pass, zstd runs on the whole of a large plane only when it beats Huffman
// by 3% on the plane's first MiB.
func (c *Codec) appendPlanes(enc *zstd.Encoder, f, src []byte, h Header) []byte {
	e := h.ElemSize
	n := len(src) / e
	buf := make([]byte, n*e)
	planes := make([][]byte, e)
	for k := range planes {
		planes[k] = buf[k*n : (k+1)*n]
	}
	splitPlanes(planes, src, e, h.Rotated)
	s := c.huff.Get().(*huff0.Scratch)
	defer c.huff.Put(s)
	var z []byte
	for _, p := range planes {
		// Huffman straight into f; the length is patched in afterwards.
		rec := len(f)
		f = append(f, planeHuff, 0, 0, 0, 0, 0, 0, 0, 0)
		f = appendHuff(f, p, s)
		best := len(f) - rec - 9
		tryZstd := true
		if len(p) > zstdProbe {
			zs := enc.EncodeAll(p[:zstdProbe], z[:0])
			hs := appendHuff(nil, p[:zstdProbe], s)
			tryZstd = len(zs) < len(hs)-len(hs)/32
		}
		if tryZstd {
			z = enc.EncodeAll(p, z[:0])
			if len(z) < best {
				f = append(f[:rec], planeZstd, 0, 0, 0, 0, 0, 0, 0, 0)
				f = append(f, z...)
				best = len(z)
			}
		}
		if n == 0 || best >= len(p)-len(p)/64 {
			f = append(f[:rec], planeStored, 0, 0, 0, 0, 0, 0, 0, 0)
			f = append(f, p...)
			best = len(p)
		}
		binary.LittleEndian.PutUint64(f[rec+1:], uint64(best))
	}
	return append(f, src[n*e:]...)
}

// decodePlanes fills out from the plane records in payload.
//
// Huffman planes are decoded one 128 KiB block at a time into a small
// per-plane buffer and interleaved into out right away, so the working set
// stays in cache and no plane-sized buffer is allocated for them.
func (c *Codec) decodePlanes(out, payload []byte, h Header) error {
	e := h.ElemSize
	n := len(out) / e
	modes := make([]byte, e)
	srcs := make([][]byte, e)
	for k := range e {
		if len(payload) < 9 {
			return fmt.Errorf("%w: plane %d: truncated record", ErrCorrupt, k)
		}
		mode, size := payload[0], binary.LittleEndian.Uint64(payload[1:9])
		payload = payload[9:]
		if size > uint64(len(payload)) {
			return fmt.Errorf("%w: plane %d: %d bytes declared, %d left", ErrCorrupt, k, size, len(payload))
		}
		data := payload[:size]
		payload = payload[size:]
		modes[k] = mode
		switch mode {
		case planeStored:
			if len(data) != n {
				return fmt.Errorf("%w: plane %d: stored %d bytes, want %d", ErrCorrupt, k, len(data), n)
			}
			srcs[k] = data
		case planeZstd:
			p, err := c.unzstd(data, make([]byte, 0, n))
			if err != nil {
				return fmt.Errorf("plane %d: %w", k, err)
			}
			srcs[k] = p
		case planeHuff:
			srcs[k] = data // decoded block by block below
		default:
			return fmt.Errorf("%w: plane %d: unknown mode %d", ErrCorrupt, k, mode)
		}
	}
	if len(payload) != len(out)-n*e {
		return fmt.Errorf("%w: %d tail bytes, want %d", ErrCorrupt, len(payload), len(out)-n*e)
	}
	s := c.huff.Get().(*huff0.Scratch)
	defer c.huff.Put(s)
	var scratch []byte
	views := make([][]byte, e)
	for off := 0; off < n; off += huffBlock {
		cn := min(huffBlock, n-off)
		for k := range e {
			if modes[k] != planeHuff {
				views[k] = srcs[k][off : off+cn]
				continue
			}
			if scratch == nil {
				scratch = make([]byte, e*huffBlock)
			}
			v := scratch[k*huffBlock : k*huffBlock+cn]
			rest, err := nextHuffBlock(v, srcs[k], s)
			if err != nil {
				return fmt.Errorf("plane %d at element %d: %w", k, off, err)
			}
			srcs[k], views[k] = rest, v
		}
		joinPlanes(out[off*e:(off+cn)*e], views, e, h.Rotated)
	}
	for k := range e {
		if modes[k] == planeHuff && len(srcs[k]) != 0 {
			return fmt.Errorf("%w: plane %d: %d bytes after the last block", ErrCorrupt, k, len(srcs[k]))
		}
	}
	copy(out[n*e:], payload)
	return nil
}
