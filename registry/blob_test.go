package registry

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/deltactl/deltactl/registry/codec"
	"github.com/deltactl/deltactl/registry/store/storetest"
	"github.com/opencontainers/go-digest"
)

func randBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 11))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(rng.Uint32())
	}
	return out
}

// TestRawFrameHeaderMatchesCodec: the raw frame header push builds itself
// (to send a chunk without copying it) is one the codec parses and decodes.
func TestRawFrameHeaderMatchesCodec(t *testing.T) {
	c, err := codec.New(codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, n := range []int{0, 1, 17, 1 << 20} {
		payload := randBytes(uint64(n), n)
		hdr := rawFrameHeader(int64(n))
		if len(hdr) != rawHeaderLen {
			t.Fatalf("header is %d bytes, want %d", len(hdr), rawHeaderLen)
		}
		h, err := codec.ParseHeader(hdr)
		if err != nil || h.Encoding != codec.Raw || h.RawLen != int64(n) || h.Len != rawHeaderLen {
			t.Fatalf("n=%d: ParseHeader = %+v, %v", n, h, err)
		}
		got, err := c.Decode(append(hdr, payload...), codec.NoBase)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("n=%d: Decode: %v", n, err)
		}
	}
}

// TestFrameReader checks Read, ReadAt and Seek of the header+payload view
// against the concatenation.
func TestFrameReader(t *testing.T) {
	hdr, body := rawFrameHeader(1000), randBytes(1, 1000)
	want := append(append([]byte{}, hdr...), body...)
	if err := iotest.TestReader(newFrameReader(hdr, body), want); err != nil {
		t.Fatal(err)
	}
	fr := newFrameReader(hdr, body)
	p := make([]byte, 40)
	if n, err := fr.ReadAt(p, 5); n != 40 || err != nil || !bytes.Equal(p, want[5:45]) {
		t.Fatalf("ReadAt across the seam: %d %v", n, err)
	}
	if n, err := fr.ReadAt(p, fr.Size()-10); n != 10 || err == nil {
		t.Fatalf("ReadAt past the end: %d %v", n, err)
	}
}

// TestEncodeBlobChoice: random bytes are stored raw without a full
// compression pass; zeros go to zstd; float weights to byte grouping.
func TestEncodeBlobChoice(t *testing.T) {
	r := newReg(t, storetest.NewFS(t), 4<<20)
	enc := func(raw []byte, elem int) codec.Encoding {
		f, err := r.encodeBlob(raw, codec.EncodeOptions{ElemSize: elem})
		if err != nil {
			t.Fatal(err)
		}
		if f == nil {
			return codec.Raw
		}
		h, err := codec.ParseHeader(f)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := r.codec.Decode(f, codec.NoBase); err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("frame does not round-trip: %v", err)
		}
		return h.Encoding
	}
	if e := enc(randBytes(2, 2<<20), 4); e != codec.Raw {
		t.Errorf("random bytes: %s, want raw", e)
	}
	if e := enc(make([]byte, 2<<20), 4); e != codec.Zstd {
		t.Errorf("zeros: %s, want zstd", e)
	}
	if e := enc(randF32(3, 1<<19), 4); e != codec.ByteGrouped {
		t.Errorf("f32 weights: %s, want byte-grouped", e)
	}
	// Small chunks skip the probe and still get the codec's choice.
	if e := enc(randF32(3, 1<<10), 4); e != codec.ByteGrouped && e != codec.Raw {
		t.Errorf("small f32: %s", e)
	}
}

// TestPullDamagedFrames damages stored frames in the ways a disk or a hand
// can: flipped payload bytes of a raw (streamed) and of a compressed frame,
// a truncated frame, trailing garbage, a frame shorter than a header, and an
// oversized frame. Each pull fails with ErrCorrupt naming the blob and
// leaves nothing behind.
func TestPullDamagedFrames(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "noise.bin"), randBytes(7, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	writeST(t, filepath.Join(src, "model.safetensors"), []stTensor{{name: "w", dtype: "F32", shape: []int64{1 << 19}, data: randF32(8, 1<<19)}}, nil)
	b := storetest.NewFS(t)
	r := newReg(t, b, 4<<20)
	res, err := r.Push(bg, "m:v1", src, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := r.Manifest(bg, res.Digest)
	var rawBlob, bgBlob Chunk
	for _, f := range m.Files {
		if f.Path == "noise.bin" {
			rawBlob = f.Chunks[0]
		} else {
			bgBlob = f.Safetensors.Tensors[0].Chunks[0]
		}
	}
	read := func(d digest.Digest) []byte { return storetest.ReadAll(t, b, blobKey(d), 0, -1) }
	rawFrame, bgFrame := read(rawBlob.Digest), read(bgBlob.Digest)
	if h, _ := codec.ParseHeader(rawFrame); h.Encoding != codec.Raw {
		t.Fatalf("noise stored as %s, want raw", h.Encoding)
	}
	if h, _ := codec.ParseHeader(bgFrame); h.Encoding != codec.ByteGrouped {
		t.Fatalf("weights stored as %s, want byte-grouped", h.Encoding)
	}
	flip := func(f []byte, i int) []byte { g := append([]byte{}, f...); g[i] ^= 0x40; return g }
	cases := []struct {
		name  string
		blob  Chunk
		frame []byte
	}{
		{"raw flipped byte", rawBlob, flip(rawFrame, len(rawFrame)/2)},
		{"raw truncated", rawBlob, rawFrame[:len(rawFrame)-1]},
		{"raw trailing bytes", rawBlob, append(append([]byte{}, rawFrame...), 1, 2, 3)},
		{"compressed flipped byte", bgBlob, flip(bgFrame, len(bgFrame)-100)},
		{"compressed truncated", bgBlob, bgFrame[:len(bgFrame)/2]},
		{"shorter than a header", bgBlob, bgFrame[:5]},
		{"oversized", bgBlob, append(append([]byte{}, bgFrame...), make([]byte, int(bgBlob.Size)+frameHeaderMax)...)},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			key := blobKey(tc.blob.Digest)
			if err := b.Delete(bg, key); err != nil {
				t.Fatal(err)
			}
			if err := b.Put(bg, key, bytes.NewReader(tc.frame), int64(len(tc.frame))); err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			_, err := r.Pull(bg, "m:v1", filepath.Join(parent, "out"))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.blob.Digest.String()) {
				t.Fatalf("pull: %v; want ErrCorrupt naming %s", err, tc.blob.Digest)
			}
			if ents, err := os.ReadDir(parent); err != nil || len(ents) != 0 {
				t.Fatalf("pull left %v behind (%v)", ents, err)
			}
			// Put the good frame back for the next case.
			good := rawFrame
			if tc.blob == bgBlob {
				good = bgFrame
			}
			if err := b.Delete(bg, key); err != nil {
				t.Fatal(err)
			}
			if err := b.Put(bg, key, bytes.NewReader(good), int64(len(good))); err != nil {
				t.Fatal(err)
			}
		})
	}
	out := filepath.Join(t.TempDir(), "ok")
	if _, err := r.Pull(bg, "m:v1", out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, out)
}

// TestChunkBuffersArePooled: every buffer push and pull ask for on a
// full-size chunk (the chunk itself, and the largest frame plus the byte
// that detects an oversized one) comes from, and goes back to, the pool.
func TestChunkBuffersArePooled(t *testing.T) {
	r := newReg(t, storetest.NewFS(t), 1<<20)
	for _, n := range []int{1 << 20, 1<<20 + frameHeaderMax + 1, streamPiece} {
		b := r.getBuf(n)
		if len(b) != n || cap(b) != r.bufCap {
			t.Fatalf("getBuf(%d): len %d cap %d, want a pooled buffer of cap %d", n, len(b), cap(b), r.bufCap)
		}
		r.putBuf(b)
	}
	if b := r.getBuf(r.bufCap + 1); len(b) != r.bufCap+1 {
		t.Fatalf("oversized getBuf: len %d", len(b))
	}
}
