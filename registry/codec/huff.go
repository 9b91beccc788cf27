package codec

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/huff0"
)

// A huff plane is a run of blocks of huffBlock bytes (the last may be
// shorter), each: kind byte, uint32 length, data. Plain Huffman coding per
// 128 KiB block is what the exponent plane wants: its bytes are independent
// draws from a skewed distribution, with no repeats for an LZ matcher to
// find, and zstd's matcher only gets in the way there (on bf16 N(0,0.02)
// exponents zstd -1 reaches 40% of the plane, Huffman 32.4%, the entropy
// is 31.8%). Each block carries its own table, so blocks decode alone.
const huffBlock = 128 << 10

const (
	huffStored = 0 // data is the block as it is
	huffCoded  = 1 // data is a huff0 table and 4-stream payload
	huffRLE    = 2 // data is one byte, repeated for the whole block
)

// appendHuff appends plane p as huff blocks to dst.
func appendHuff(dst, p []byte, s *huff0.Scratch) []byte {
	for off := 0; off < len(p); off += huffBlock {
		blk := p[off:min(off+huffBlock, len(p))]
		s.Reuse = huff0.ReusePolicyNone
		out, _, err := huff0.Compress4X(blk, s)
		switch {
		case err == nil && len(out) < len(blk):
			dst = append(dst, huffCoded)
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(out)))
			dst = append(dst, out...)
		case errors.Is(err, huff0.ErrUseRLE):
			dst = append(dst, huffRLE)
			dst = binary.LittleEndian.AppendUint32(dst, 1)
			dst = append(dst, blk[0])
		default:
			dst = append(dst, huffStored)
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(blk)))
			dst = append(dst, blk...)
		}
	}
	return dst
}

// decodeHuff fills out (len(out) is the plane size) from huff blocks in src.
func decodeHuff(out, src []byte, s *huff0.Scratch) error {
	for off := 0; off < len(out); off += huffBlock {
		n := min(huffBlock, len(out)-off)
		if len(src) < 5 {
			return fmt.Errorf("%w: huffman block at %d: truncated", ErrCorrupt, off)
		}
		kind, size := src[0], binary.LittleEndian.Uint32(src[1:5])
		src = src[5:]
		if uint64(size) > uint64(len(src)) {
			return fmt.Errorf("%w: huffman block at %d: %d bytes declared, %d left", ErrCorrupt, off, size, len(src))
		}
		data := src[:size]
		src = src[size:]
		dst := out[off : off+n]
		switch kind {
		case huffStored:
			if len(data) != n {
				return fmt.Errorf("%w: stored block at %d: %d bytes, want %d", ErrCorrupt, off, len(data), n)
			}
			copy(dst, data)
		case huffRLE:
			if len(data) != 1 {
				return fmt.Errorf("%w: rle block at %d: %d bytes", ErrCorrupt, off, len(data))
			}
			for i := range dst {
				dst[i] = data[0]
			}
		case huffCoded:
			s2, rest, err := huff0.ReadTable(data, s)
			if err != nil {
				return fmt.Errorf("%w: huffman table at %d: %v", ErrCorrupt, off, err)
			}
			got, err := s2.Decoder().Decompress4X(dst[:0:n], rest)
			if err != nil {
				return fmt.Errorf("%w: huffman block at %d: %v", ErrCorrupt, off, err)
			}
			if len(got) != n {
				return fmt.Errorf("%w: huffman block at %d: %d bytes, want %d", ErrCorrupt, off, len(got), n)
			}
			if n > 0 && &got[0] != &dst[0] {
				copy(dst, got)
			}
		default:
			return fmt.Errorf("%w: block at %d: unknown kind %d", ErrCorrupt, off, kind)
		}
	}
	if len(src) != 0 {
		return fmt.Errorf("%w: %d bytes after the last huffman block", ErrCorrupt, len(src))
	}
	return nil
}
