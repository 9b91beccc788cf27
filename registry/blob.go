package registry

import (
	"bytes"
	"context"
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

// statBlob reports whether blob d is stored.
func (r *Registry) statBlob(ctx context.Context, d digest.Digest) (bool, error) {
	_, err := r.b.Stat(ctx, blobKey(d))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return false, fmt.Errorf("blob %s: %w", d, err)
}

// putBlob encodes raw (whose digest is d) and stores it create-only. When
// base is set, the codec may encode raw as XOR against the base blob's
// decoded bytes, which baseRaw fetches. It returns the stored bytes written
// (0 when another writer got there first).
func (r *Registry) putBlob(ctx context.Context, d digest.Digest, raw []byte, elemSize int, base digest.Digest, baseRaw []byte) (int64, error) {
	opt := codec.EncodeOptions{ElemSize: elemSize}
	if base != "" && base != d && len(baseRaw) == len(raw) {
		opt.Base, opt.BaseDigest = baseRaw, base
	}
	frame, err := r.codec.Encode(raw, opt)
	if err != nil {
		return 0, fmt.Errorf("blob %s: encode: %w", d, err)
	}
	err = r.b.Put(ctx, blobKey(d), bytes.NewReader(frame), int64(len(frame)))
	if errors.Is(err, store.ErrExists) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	return int64(len(frame)), nil
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
	raw, err := r.codec.Decode(frame, func(bd digest.Digest) ([]byte, error) {
		// An XOR base has the same decoded length as the blob.
		b, err := r.getBlobDepth(ctx, bd, sizeHint, depth+1)
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
	if got := digest.FromBytes(raw); got != d {
		return nil, fmt.Errorf("blob %s: %w: decoded bytes hash to %s", d, ErrCorrupt, got)
	}
	return raw, nil
}

// readFrame reads a whole blob frame into a buffer sized up front for the
// largest frame of a sizeHint-byte blob (a raw frame: header plus bytes):
// io.ReadAll would grow it by doubling, copying a 64 MiB frame several times.
func (r *Registry) readFrame(ctx context.Context, d digest.Digest, sizeHint int64) ([]byte, error) {
	rc, err := r.b.Get(ctx, blobKey(d), 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if sizeHint < 0 || sizeHint > r.opt.ChunkSize {
		sizeHint = 0 // unknown: let the buffer grow
	}
	buf := bytes.NewBuffer(make([]byte, 0, sizeHint+frameHeaderMax+bytes.MinRead))
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// blobBase returns the XOR base a stored blob's frame depends on, or "".
func (r *Registry) blobBase(ctx context.Context, d digest.Digest) (digest.Digest, error) {
	rc, err := r.b.Get(ctx, blobKey(d), 0, frameHeaderMax)
	if err != nil {
		return "", fmt.Errorf("blob %s: %w", d, err)
	}
	defer rc.Close()
	head, err := io.ReadAll(rc)
	if err != nil {
		return "", fmt.Errorf("blob %s: %w", d, err)
	}
	h, err := codec.ParseHeader(head)
	if err != nil {
		return "", fmt.Errorf("blob %s: %w: %v", d, ErrCorrupt, err)
	}
	return h.BaseDigest, nil
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

// checkFrame decodes frame and re-hashes the result against d.
func (r *Registry) checkFrame(ctx context.Context, d digest.Digest, frame []byte, sizeHint int64, depth int) error {
	raw, err := r.codec.Decode(frame, func(bd digest.Digest) ([]byte, error) {
		b, err := r.getBlobDepth(ctx, bd, sizeHint, depth+1)
		if err != nil {
			return nil, fmt.Errorf("xor base: %w", err)
		}
		return b, nil
	})
	if err != nil {
		if errors.Is(err, codec.ErrCorrupt) {
			return fmt.Errorf("blob %s: %w: %v", d, ErrCorrupt, err)
		}
		return fmt.Errorf("blob %s: %w", d, err)
	}
	if got := digest.FromBytes(raw); got != d {
		return fmt.Errorf("blob %s: %w: decoded bytes hash to %s", d, ErrCorrupt, got)
	}
	if sizeHint >= 0 && int64(len(raw)) != sizeHint {
		return fmt.Errorf("blob %s: %w: %d bytes, manifest says %d", d, ErrCorrupt, len(raw), sizeHint)
	}
	return nil
}
