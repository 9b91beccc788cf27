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

// nextHuffBlock decodes the block at the start of src into dst (whose
// length is the block's size) and returns the rest of src.
func nextHuffBlock(dst, src []byte, s *huff0.Scratch) ([]byte, error) {
	n := len(dst)
	if len(src) < 5 {
		return nil, fmt.Errorf("%w: huffman block: truncated", ErrCorrupt)
	}
	kind, size := src[0], binary.LittleEndian.Uint32(src[1:5])
	src = src[5:]
	if uint64(size) > uint64(len(src)) {
		return nil, fmt.Errorf("%w: huffman block: %d bytes declared, %d left", ErrCorrupt, size, len(src))
	}
	data, rest := src[:size], src[size:]
	switch kind {
	case huffStored:
		if len(data) != n {
			return nil, fmt.Errorf("%w: stored block: %d bytes, want %d", ErrCorrupt, len(data), n)
		}
		copy(dst, data)
	case huffRLE:
		if len(data) != 1 {
			return nil, fmt.Errorf("%w: rle block: %d bytes", ErrCorrupt, len(data))
		}
		for i := range dst {
			dst[i] = data[0]
		}
	case huffCoded:
		s2, payload, err := huff0.ReadTable(data, s)
		if err != nil {
			return nil, fmt.Errorf("%w: huffman table: %v", ErrCorrupt, err)
		}
		got, err := s2.Decoder().Decompress4X(dst[:0:n], payload)
		if err != nil {
			return nil, fmt.Errorf("%w: huffman block: %v", ErrCorrupt, err)
		}
		if len(got) != n {
			return nil, fmt.Errorf("%w: huffman block: %d bytes, want %d", ErrCorrupt, len(got), n)
		}
		if n > 0 && &got[0] != &dst[0] {
			copy(dst, got)
		}
	default:
		return nil, fmt.Errorf("%w: huffman block: unknown kind %d", ErrCorrupt, kind)
	}
	return rest, nil
}
