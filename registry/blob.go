package registry

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/deltactl/deltactl/registry/codec"
	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// maxBaseDepth bounds chains of XOR frames (a frame encoded against a blob
// that is itself an XOR frame). Push never builds chains deeper than the
// lineage of full deltas; the bound stops a crafted cycle.
const maxBaseDepth = 16

// frameHeaderMax is enough bytes to hold any frame header (17 fixed bytes, a
// length byte and "sha256:" plus 64 hex digits).
const frameHeaderMax = 128

// rawHeaderLen is the length of a raw frame's header (no base digest).
const rawHeaderLen = 17

// statBlob reports whether blob d is stored.
func (r *Registry) statBlob(ctx context.Context, d digest.Digest) (bool, error) {
	_, err := r.b.Stat(ctx, blobKey(d))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if errors.Is(err, store.ErrNotRegular) {
		return true, nil // present but damaged: reading it says so (ErrCorrupt)
	}
	return false, fmt.Errorf("blob %s: %w", d, err)
}

// putBlob encodes raw (whose digest is d) and stores it create-only. When
// base is set, the codec may encode raw as XOR against the base blob's
// decoded bytes, which baseRaw fetches. It returns the stored bytes written
// (0 when another writer got there first). raw is not kept after it returns.
func (r *Registry) putBlob(ctx context.Context, d digest.Digest, raw []byte, elemSize int, base digest.Digest, baseRaw []byte) (int64, error) {
	opt := codec.EncodeOptions{ElemSize: elemSize}
	if base != "" && base != d && len(baseRaw) == len(raw) {
		opt.Base, opt.BaseDigest = baseRaw, base
	}
	var frame []byte
	err := r.withCPU(ctx, func() error {
		var err error
		frame, err = r.encodeBlob(raw, opt)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("blob %s: encode: %w", d, err)
	}
	var body io.Reader
	var size int64
	if frame == nil {
		// Stored raw: send a header and the caller's buffer as they are,
		// rather than copy a whole chunk into a frame.
		fr := newFrameReader(rawFrameHeader(int64(len(raw))), raw)
		body, size = fr, fr.Size()
	} else {
		body, size = bytes.NewReader(frame), int64(len(frame))
	}
	err = r.b.Put(ctx, blobKey(d), body, size)
	if errors.Is(err, store.ErrExists) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	return size, nil
}

// Encoding choice, made before the codec runs on a whole chunk.
const (
	// probeMin: chunks from this size on are probed on a sample first.
	probeMin = 1 << 20
	// probePieces evenly spread pieces of probePiece bytes make the sample
	// (256 KiB: under 1% of a 32 MiB chunk per candidate tried).
	probePieces = 4
	probePiece  = 64 << 10
	// skipRatio: when the best encoding of the sample is larger than this
	// fraction of it, the chunk is stored raw without compressing it
	// (random mantissas, already compressed files): the few percent it
	// would save cost a full compression pass and a copy.
	skipRatio = 0.97
)

// encodeBlob returns the frame for raw, or nil when raw should be stored
// as a raw frame (see rawFrameHeader). Large chunks are probed on a small
// sample with every applicable encoding: when none saves 3%, the chunk is
// not compressed at all; when plain zstd wins, the codec is asked for zstd
// alone, so it runs one pass instead of trying byte grouping again.
func (r *Registry) encodeBlob(raw []byte, opt codec.EncodeOptions) ([]byte, error) {
	if len(raw) >= probeMin {
		s, sb := codec.Sample(raw, opt.Base, max(opt.ElemSize, 1), probePieces, probePiece)
		po := opt
		po.Base = sb
		f, err := r.codec.Encode(s, po)
		if err != nil {
			return nil, err
		}
		if float64(len(f)) > skipRatio*float64(len(s)) {
			return nil, nil
		}
		if h, err := codec.ParseHeader(f); err == nil && h.Encoding == codec.Zstd {
			opt.ElemSize, opt.Base, opt.BaseDigest = 0, nil, ""
		}
	}
	f, err := r.codec.Encode(raw, opt)
	if err != nil {
		return nil, err
	}
	if h, err := codec.ParseHeader(f); err == nil && h.Encoding == codec.Raw {
		return nil, nil // the codec found nothing better; skip its copy
	}
	return f, nil
}

// rawFrameHeader is the header of a raw frame of n bytes, as codec writes
// it (codec/header.go: magic, version, encoding 0, no flags, element size 0, the
// raw length little-endian, no base digest). The registry builds it itself
// so a raw chunk can be sent from the read buffer without a copy; a test
// checks it against the codec's own parser and decoder.
func rawFrameHeader(n int64) []byte {
	h := make([]byte, 0, rawHeaderLen)
	h = append(h, codec.Magic...)
	h = append(h, codec.Version, byte(codec.Raw), 0, 0)
	h = binary.LittleEndian.AppendUint64(h, uint64(n))
	return append(h, 0)
}

// frameReader reads a header then a payload as one seekable stream, with
// ReadAt, so a backend can retry or send parts in parallel without either
// being copied into one buffer.
type frameReader struct {
	hdr, body []byte
	off       int64
}

func newFrameReader(hdr, body []byte) *frameReader { return &frameReader{hdr: hdr, body: body} }

// Backends rewind (Seek) or split (ReadAt) what they upload.
var (
	_ io.ReadSeeker = (*frameReader)(nil)
	_ io.ReaderAt   = (*frameReader)(nil)
)

// Size is the total length.
func (f *frameReader) Size() int64 { return int64(len(f.hdr) + len(f.body)) }

// ReadAt implements io.ReaderAt.
func (f *frameReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("frameReader: negative offset")
	}
	n := 0
	if off < int64(len(f.hdr)) {
		n = copy(p, f.hdr[off:])
	}
	if n < len(p) {
		boff := off + int64(n) - int64(len(f.hdr))
		if boff < int64(len(f.body)) {
			n += copy(p[n:], f.body[boff:])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Read implements io.Reader.
func (f *frameReader) Read(p []byte) (int, error) {
	if f.off >= f.Size() {
		return 0, io.EOF
	}
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (f *frameReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.Size()
	default:
		return 0, errors.New("frameReader: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("frameReader: negative position")
	}
	f.off = offset
	return offset, nil
}

// getBlob reads, decodes and re-hashes blob d. A blob whose decoded bytes do
// not hash to d is reported as ErrCorrupt, never returned.
// sizeHint is the expected decoded size (from the manifest; -1 if unknown),
// used to size the read buffer.
func (r *Registry) getBlob(ctx context.Context, d digest.Digest, sizeHint int64) ([]byte, error) {
	return r.getBlobDepth(ctx, d, sizeHint, 0)
}

func (r *Registry) getBlobDepth(ctx context.Context, d digest.Digest, sizeHint int64, depth int) ([]byte, error) {
	if depth > maxBaseDepth {
		return nil, fmt.Errorf("blob %s: %w: XOR base chain deeper than %d", d, ErrCorrupt, maxBaseDepth)
	}
	frame, err := r.readFrame(ctx, d, sizeHint)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return r.decodeFrameDepth(ctx, d, frame, sizeHint, depth)
}

// decodeFrame decodes a frame of blob d and re-hashes the result; bytes
// that do not hash to d are reported as ErrCorrupt, never returned.
func (r *Registry) decodeFrame(ctx context.Context, d digest.Digest, frame []byte, sizeHint int64) ([]byte, error) {
	return r.decodeFrameDepth(ctx, d, frame, sizeHint, 0)
}

func (r *Registry) decodeFrameDepth(ctx context.Context, d digest.Digest, frame []byte, sizeHint int64, depth int) ([]byte, error) {
	raw, err := r.decodeOnlyDepth(ctx, d, frame, nil, sizeHint, depth)
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(raw); got != d {
		return nil, fmt.Errorf("blob %s: %w: decoded bytes hash to %s", d, ErrCorrupt, got)
	}
	return raw, nil
}

// xorBaseOf fetches (verified) the XOR base frame names, or returns nil
// when frame is not an XOR frame. Pull calls it before taking a CPU token,
// so a token is never held while waiting on the network.
func (r *Registry) xorBaseOf(ctx context.Context, frame []byte, sizeHint int64) ([]byte, error) {
	h, err := codec.ParseHeader(frame)
	if err != nil || h.Encoding != codec.XOR {
		return nil, nil // Decode reports a bad header
	}
	b, err := r.xorBase(ctx, h.BaseDigest, sizeHint, 1)
	if err != nil {
		return nil, fmt.Errorf("xor base: %w", err)
	}
	return b, nil
}

// xorBase returns base blob bd (verified), decoded once and shared through
// r.bases. An XOR base has the same decoded length as its blob, size.
func (r *Registry) xorBase(ctx context.Context, bd digest.Digest, size int64, depth int) ([]byte, error) {
	nested := ctx.Value(inBaseLoad{}) != nil
	return r.bases.get(bd, nested, func() ([]byte, error) {
		return r.getBlobDepth(context.WithValue(ctx, inBaseLoad{}, true), bd, size, depth)
	})
}

// inBaseLoad marks the context of a base being loaded for r.bases (see
// baseCache.get: nested loads never wait).
type inBaseLoad struct{}

// decodeOnly decodes a frame of blob d WITHOUT re-hashing the result; the
// caller must hash it (pull does, fused with writing). base, if not nil,
// is the frame's XOR base already fetched by xorBaseOf; otherwise XOR bases
// are fetched through getBlobDepth, which hashes them.
func (r *Registry) decodeOnly(ctx context.Context, d digest.Digest, frame, base []byte, sizeHint int64) ([]byte, error) {
	return r.decodeOnlyDepth(ctx, d, frame, base, sizeHint, 0)
}

func (r *Registry) decodeOnlyDepth(ctx context.Context, d digest.Digest, frame, base []byte, sizeHint int64, depth int) ([]byte, error) {
	// Decoding stops at the claimed size: a frame promising more than the
	// manifest says the blob holds is damage, refused before it allocates.
	if h, err := codec.ParseHeader(frame); err == nil && sizeHint >= 0 && h.RawLen != sizeHint {
		return nil, fmt.Errorf("blob %s: %w: frame holds %d bytes, manifest says %d", d, ErrCorrupt, h.RawLen, sizeHint)
	}
	raw, err := r.codec.Decode(frame, func(bd digest.Digest) ([]byte, error) {
		if base != nil {
			return base, nil
		}
		// An XOR base has the same decoded length as the blob.
		b, err := r.xorBase(ctx, bd, sizeHint, depth+1)
		if err != nil {
			return nil, fmt.Errorf("xor base: %w", err)
		}
		return b, nil
	})
	if err != nil {
		if errors.Is(err, codec.ErrCorrupt) {
			return nil, fmt.Errorf("blob %s: %w: %v", d, ErrCorrupt, err)
		}
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return raw, nil
}

// readFrame reads a whole blob frame into a buffer sized up front for the
// largest frame of a sizeHint-byte blob (a raw frame: header plus bytes):
// io.ReadAll would grow it by doubling, copying a 64 MiB frame several times.
func (r *Registry) readFrame(ctx context.Context, d digest.Digest, sizeHint int64) ([]byte, error) {
	rc, err := r.getObject(ctx, blobKey(d), 0, -1)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read only: what was read is checked, a close error loses nothing
	// No valid frame is larger than a raw frame of the largest chunk (or of
	// a sizeHint-byte blob); more is damage, and is not read.
	limit := int64(MaxChunkSize)
	if sizeHint >= 0 && sizeHint < limit {
		limit = sizeHint
	}
	limit += frameHeaderMax
	if sizeHint < 0 || sizeHint > r.opt.ChunkSize {
		sizeHint = 0 // unknown: let the buffer grow as bytes arrive
	}
	buf := bytes.NewBuffer(make([]byte, 0, sizeHint+frameHeaderMax+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(rc, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%w: stored frame is larger than %d bytes, the most a blob of that size can take", ErrCorrupt, limit)
	}
	return buf.Bytes(), nil
}

// blobHeader reads and parses the header of a stored blob's frame: its
// XOR base (or "") and its decoded length.
func (r *Registry) blobHeader(ctx context.Context, d digest.Digest) (codec.Header, error) {
	rc, err := r.getObject(ctx, blobKey(d), 0, frameHeaderMax)
	if err != nil {
		return codec.Header{}, fmt.Errorf("blob %s: %w", d, err)
	}
	defer func() { _ = rc.Close() }() // read only: what was read is checked, a close error loses nothing
	head, err := io.ReadAll(io.LimitReader(rc, frameHeaderMax))
	if err != nil {
		return codec.Header{}, fmt.Errorf("blob %s: %w", d, err)
	}
	h, err := codec.ParseHeader(head)
	if err != nil {
		return codec.Header{}, fmt.Errorf("blob %s: %w: %v", d, ErrCorrupt, err)
	}
	return h, nil
}

// verifiedFrame reads blob d's stored frame and checks that it decodes to
// bytes hashing to d (XOR bases are fetched and checked the same way). It
// returns the frame as stored, for copying without re-encoding.
func (r *Registry) verifiedFrame(ctx context.Context, d digest.Digest, sizeHint int64) ([]byte, error) {
	frame, err := r.readFrame(ctx, d, sizeHint)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if err := r.checkFrame(ctx, d, frame, sizeHint, 0); err != nil {
		return nil, err
	}
	return frame, nil
}

// checkFrame decodes frame and re-hashes the result against d and the
// expected size.
func (r *Registry) checkFrame(ctx context.Context, d digest.Digest, frame []byte, sizeHint int64, depth int) error {
	raw, err := r.decodeFrameDepth(ctx, d, frame, sizeHint, depth)
	if err != nil {
		return err
	}
	if sizeHint >= 0 && int64(len(raw)) != sizeHint {
		return fmt.Errorf("blob %s: %w: %d bytes, manifest says %d", d, ErrCorrupt, len(raw), sizeHint)
	}
	return nil
}
