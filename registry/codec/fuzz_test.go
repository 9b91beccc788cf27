package codec

import (
	"bytes"
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzDecode feeds arbitrary frames to Decode: it must never panic, never
// return more or fewer bytes than the header's RawLen, and a frame it accepts
// must survive a re-encode round trip. XOR frames get a fixed base of the
// right length, so their payload decoding is exercised too.
func FuzzDecode(f *testing.F) {
	const maxRaw = 1 << 20
	c, err := New(Options{MaxRawLen: maxRaw})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	w := bf16Weights(3000, 11)
	anyBase := bf16Weights(maxRaw/2, 12)
	base := anyBase[:6000]
	bd := digest.FromBytes(base)
	for _, opt := range []EncodeOptions{{}, {ElemSize: 2}, {ElemSize: 4}, {ElemSize: 3}, {ElemSize: 2, Base: base, BaseDigest: bd}} {
		fr, err := c.Encode(w, opt)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fr)
	}
	enc, _ := c.encoder(0)
	for _, h := range []Header{{Encoding: Zstd}, {Encoding: ByteGrouped, ElemSize: 2, Rotated: true}, {Encoding: XOR, ElemSize: 2, Rotated: true, BaseDigest: bd}} {
		fr, _ := c.encodeAs(enc, h, w[:777], base[:777])
		f.Add(fr)
	}
	f.Add(c.rawFrame([]byte("hello")))
	f.Add(c.rawFrame(nil))
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, herr := ParseHeader(frame)
		out, err := c.Decode(frame, func(d digest.Digest) ([]byte, error) {
			return anyBase[:h.RawLen], nil
		})
		if err != nil {
			return
		}
		if herr != nil {
			t.Fatalf("Decode accepted a frame ParseHeader refused: %v", herr)
		}
		if int64(len(out)) != h.RawLen {
			t.Fatalf("decoded %d bytes, header says %d", len(out), h.RawLen)
		}
		again, err := c.Encode(out, EncodeOptions{ElemSize: h.ElemSize})
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.Decode(again, nil)
		if err != nil || !bytes.Equal(back, out) {
			t.Fatalf("re-encode round trip: %v", err)
		}
	})
}
