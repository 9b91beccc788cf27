package codec

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/huff0"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// Options configure a Codec. The zero value is usable.
type Options struct {
	// Level is the default zstd level (1..22, as the zstd CLI counts;
	// 0 means 1, the fastest). EncodeOptions.Level overrides it per call.
	Level int
	// MaxRawLen caps the decoded size of one frame, for Encode and Decode
	// (0 means MaxRawLen, 1 GiB).
	MaxRawLen int64
}

// EncodeOptions describe one blob for Encode.
type EncodeOptions struct {
	// ElemSize is the size of one element (2 for bf16/f16, 4 for f32...).
	// 0 or 1 means the bytes are not an array of wider elements, and the
	// byte-grouped encoding is not tried.
	ElemSize int
	// Base, when set with BaseDigest, is a blob of the same length to try
	// XOR-against (the same tensor in a base model). Decoding an XOR frame
	// needs the base back by BaseDigest.
	Base       []byte
	BaseDigest digest.Digest
	// Level overrides Options.Level for this call (0: the codec's default).
	Level int
}

// Codec encodes and decodes frames. It is safe for concurrent use: the zstd
// encoders and the decoder it holds hand out per-call state internally.
// Close it to release the decoder's workers.
type Codec struct {
	maxRaw int64
	level  int

	mu   sync.Mutex
	encs map[zstd.EncoderLevel]*zstd.Encoder
	dec  *zstd.Decoder
	// huff holds *huff0.Scratch values; a scratch serves one call at a time.
	huff sync.Pool
}

// New returns a Codec.
func New(opt Options) (*Codec, error) {
	c := &Codec{maxRaw: opt.MaxRawLen, level: opt.Level, encs: map[zstd.EncoderLevel]*zstd.Encoder{}}
	if c.maxRaw <= 0 {
		c.maxRaw = MaxRawLen
	}
	if c.level == 0 {
		c.level = 1
	}
	if c.level < 1 || c.level > 22 {
		return nil, fmt.Errorf("codec: zstd level %d out of range 1..22", opt.Level)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxMemory(uint64(c.maxRaw)),
		// DecodeAll then never writes past cap(dst), which Decode sets to
		// the size the frame header promised.
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("codec: zstd decoder: %w", err)
	}
	c.dec = dec
	c.huff.New = func() any { return new(huff0.Scratch) }
	return c, nil
}

// Close releases the decoder. The Codec must not be used afterwards.
func (c *Codec) Close() {
	c.dec.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.encs {
		_ = e.Close() // an encoder only holds memory and goroutines; there is nothing to flush
	}
	c.encs = nil
}

func (c *Codec) encoder(level int) (*zstd.Encoder, error) {
	if level == 0 {
		level = c.level
	}
	if level < 1 || level > 22 {
		return nil, fmt.Errorf("codec: zstd level %d out of range 1..22", level)
	}
	l := zstd.EncoderLevelFromZstd(level)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.encs[l]; e != nil {
		return e, nil
	}
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil, fmt.Errorf("codec: zstd encoder: %w", err)
	}
	c.encs[l] = e
	return e, nil
}

// sampleThreshold: inputs larger than this choose their encoding on a sample.
const (
	sampleThreshold = 4 << 20
	samplePieces    = 8
	samplePiece     = 256 << 10
)

// Encode returns raw as a frame in the smallest of the applicable encodings:
// raw, zstd, byte-grouped zstd (when ElemSize >= 2) and xor (when a Base of
// the same length is given). Inputs up to 4 MiB try every candidate in full;
// larger ones pick the candidate that wins on an evenly spread 2 MiB sample
// and encode only that, so encoding costs one compression pass, not four.
// A result that does not beat raw is stored raw.
func (c *Codec) Encode(raw []byte, opt EncodeOptions) ([]byte, error) {
	if int64(len(raw)) > c.maxRaw {
		return nil, fmt.Errorf("codec: %w: %d bytes, cap %d", ErrTooLarge, len(raw), c.maxRaw)
	}
	if opt.ElemSize < 0 || opt.ElemSize > MaxElemSize {
		return nil, fmt.Errorf("codec: element size %d out of range 0..%d", opt.ElemSize, MaxElemSize)
	}
	enc, err := c.encoder(opt.Level)
	if err != nil {
		return nil, err
	}
	var cands []Header
	if len(raw) > 0 {
		cands = append(cands, Header{Encoding: Zstd})
		if opt.ElemSize >= 2 && len(raw) >= opt.ElemSize {
			cands = append(cands, Header{Encoding: ByteGrouped, ElemSize: opt.ElemSize, Rotated: rotatable(opt.ElemSize)})
		}
		if opt.Base != nil {
			if len(opt.Base) != len(raw) {
				return nil, fmt.Errorf("codec: xor base is %d bytes, blob is %d", len(opt.Base), len(raw))
			}
			if err := opt.BaseDigest.Validate(); err != nil {
				return nil, fmt.Errorf("codec: xor base digest: %w", err)
			}
			if len(opt.BaseDigest) > 255 {
				return nil, fmt.Errorf("codec: xor base digest longer than 255 bytes")
			}
			e := max(opt.ElemSize, 1)
			cands = append(cands, Header{Encoding: XOR, ElemSize: e, Rotated: rotatable(e), BaseDigest: opt.BaseDigest})
		}
	}
	if len(cands) > 1 && len(raw) > sampleThreshold {
		best, bestLen := cands[0], -1
		s, sb := Sample(raw, opt.Base, max(opt.ElemSize, 1), samplePieces, samplePiece)
		for _, h := range cands {
			f, err := c.encodeAs(enc, h, s, sb)
			if err != nil {
				return nil, err
			}
			if bestLen < 0 || len(f) < bestLen {
				best, bestLen = h, len(f)
			}
		}
		cands = []Header{best}
	}
	best := c.rawFrame(raw)
	for _, h := range cands {
		f, err := c.encodeAs(enc, h, raw, opt.Base)
		if err != nil {
			return nil, err
		}
		if len(f) < len(best) {
			best = f
		}
	}
	return best, nil
}

// Sample concatenates n evenly spaced pieces of about pieceLen bytes of raw,
// each cut on an element boundary of elem bytes, and the same pieces of base
// when base is not nil (nil otherwise). It is how an encoding is tried on a
// large buffer cheaply. n must be at least 2 and raw at least pieceLen long.
func Sample(raw, base []byte, elem, n, pieceLen int) ([]byte, []byte) {
	piece := pieceLen / elem * elem
	step := (len(raw) - piece) / (n - 1) / elem * elem
	s := make([]byte, 0, n*piece)
	var sb []byte
	if base != nil {
		sb = make([]byte, 0, n*piece)
	}
	for i := range n {
		off := i * step
		s = append(s, raw[off:off+piece]...)
		if base != nil {
			sb = append(sb, base[off:off+piece]...)
		}
	}
	return s, sb
}

func (c *Codec) rawFrame(raw []byte) []byte {
	f := appendHeader(make([]byte, 0, fixedHeaderLen+len(raw)), Header{Encoding: Raw, RawLen: int64(len(raw))})
	return append(f, raw...)
}

func (c *Codec) encodeAs(enc *zstd.Encoder, h Header, raw, base []byte) ([]byte, error) {
	h.RawLen = int64(len(raw))
	// Room for the worst case (every plane stored) so appends never regrow.
	f := appendHeader(make([]byte, 0, fixedHeaderLen+len(h.BaseDigest)+len(raw)+9*MaxElemSize+64), h)
	switch h.Encoding {
	case Zstd:
		return enc.EncodeAll(raw, f), nil
	case ByteGrouped:
		return c.appendPlanes(enc, f, raw, h), nil
	case XOR:
		x := make([]byte, len(raw))
		xorInto(x, raw, base)
		return c.appendPlanes(enc, f, x, h), nil
	}
	return nil, fmt.Errorf("codec: cannot encode as %s", h.Encoding)
}

// Decode returns the bytes a frame encodes. base fetches the base blob of an
// XOR frame by digest (it is not called otherwise). Decoding never allocates
// more than the header's RawLen (plus the compressed planes' sizes), and
// RawLen is checked against the codec's cap first. Errors caused by the
// frame wrap ErrCorrupt; errors from base are returned wrapped as they are.
func (c *Codec) Decode(frame []byte, base func(digest.Digest) ([]byte, error)) ([]byte, error) {
	h, err := ParseHeader(frame)
	if err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	if h.RawLen > c.maxRaw {
		return nil, fmt.Errorf("codec: %w: raw length %d over the cap of %d", ErrCorrupt, h.RawLen, c.maxRaw)
	}
	payload := frame[h.Len:]
	switch h.Encoding {
	case Raw:
		if int64(len(payload)) != h.RawLen {
			return nil, fmt.Errorf("codec: %w: raw payload is %d bytes, header says %d", ErrCorrupt, len(payload), h.RawLen)
		}
		return append([]byte(nil), payload...), nil
	case Zstd:
		out, err := c.unzstd(payload, make([]byte, 0, h.RawLen))
		if err != nil {
			return nil, fmt.Errorf("codec: zstd payload: %w", err)
		}
		return out, nil
	case ByteGrouped:
		out := make([]byte, h.RawLen)
		if err := c.decodePlanes(out, payload, h); err != nil {
			return nil, fmt.Errorf("codec: %s payload: %w", h.Encoding, err)
		}
		return out, nil
	case XOR:
		if base == nil {
			return nil, fmt.Errorf("codec: xor frame against %s but no base lookup was given", h.BaseDigest)
		}
		b, err := base(h.BaseDigest)
		if err != nil {
			return nil, fmt.Errorf("codec: xor base %s: %w", h.BaseDigest, err)
		}
		if int64(len(b)) != h.RawLen {
			return nil, fmt.Errorf("codec: %w: xor base %s is %d bytes, frame is %d", ErrCorrupt, h.BaseDigest, len(b), h.RawLen)
		}
		out := make([]byte, h.RawLen)
		if err := c.decodePlanes(out, payload, h); err != nil {
			return nil, fmt.Errorf("codec: %s payload: %w", h.Encoding, err)
		}
		xorInto(out, out, b)
		return out, nil
	}
	return nil, fmt.Errorf("codec: %w: unknown encoding %d", ErrCorrupt, h.Encoding)
}

// unzstd decodes exactly one zstd frame whose declared content size fits
// cap(dst) and returns exactly that many bytes.
func (c *Codec) unzstd(src, dst []byte) ([]byte, error) {
	var zh zstd.Header
	if err := zh.Decode(src); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if zh.HasFCS && zh.FrameContentSize != uint64(cap(dst)) {
		return nil, fmt.Errorf("%w: zstd content size %d, want %d", ErrCorrupt, zh.FrameContentSize, cap(dst))
	}
	out, err := c.dec.DecodeAll(src, dst[:0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if len(out) != cap(dst) {
		return nil, fmt.Errorf("%w: zstd decoded %d bytes, want %d", ErrCorrupt, len(out), cap(dst))
	}
	return out, nil
}

// errNoBase is what tests and tools pass when a frame must not need a base.
var errNoBase = errors.New("no base available")

// NoBase is a base lookup for callers that have no bases: it fails every lookup.
func NoBase(d digest.Digest) ([]byte, error) { return nil, fmt.Errorf("%s: %w", d, errNoBase) }
