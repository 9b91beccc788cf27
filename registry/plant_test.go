package registry

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/deltactl/deltactl/registry/codec"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// plantManifest stores data as a manifest (as a hand-edited or hostile
// registry would hold it, bypassing push's checks) and points ref at it.
func plantManifest(t testing.TB, r *Registry, ref string, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	if _, err := r.putObject(bg, manifestKey(d), data); err != nil {
		t.Fatal(err)
	}
	tr, err := ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.setRef(bg, tr, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// plantBlob stores frame as blob d without any check.
func plantBlob(t testing.TB, r *Registry, d digest.Digest, frame []byte) {
	t.Helper()
	if err := r.b.Put(bg, blobKey(d), bytes.NewReader(frame), int64(len(frame))); err != nil {
		t.Fatal(err)
	}
}

// marshalRaw encodes m canonically without validating it.
func marshalRaw(t testing.TB, m *Manifest) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zstdFrame builds a zstd frame claiming rawLen decoded bytes whose payload
// decodes to payload (rawLen may lie, as a hostile frame's would).
func zstdFrame(t testing.TB, rawLen int64, payload []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = enc.Close() }() // memory only
	h := append([]byte(codec.Magic), codec.Version, byte(codec.Zstd), 0, 0)
	h = binary.LittleEndian.AppendUint64(h, uint64(rawLen))
	h = append(h, 0)
	return enc.EncodeAll(payload, h)
}

func digestOf(t testing.TB, s string) digest.Digest {
	t.Helper()
	d, err := digest.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustRef(t testing.TB, s string) Ref {
	t.Helper()
	r, err := ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// xorFrame builds an XOR frame of elem size 1 against base whose single
// plane is stored as it is (payload = raw XOR base, unchecked).
func xorFrame(base digest.Digest, payload []byte) []byte {
	h := append([]byte(codec.Magic), codec.Version, byte(codec.XOR), 0, 1)
	h = binary.LittleEndian.AppendUint64(h, uint64(len(payload)))
	h = append(h, byte(len(base)))
	h = append(h, base...)
	h = append(h, 0)
	h = binary.LittleEndian.AppendUint64(h, uint64(len(payload)))
	return append(h, payload...)
}

// zstdFrameNoT is zstdFrame for setups without a testing.TB.
func zstdFrameNoT(rawLen int64, payload []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		panic(err)
	}
	defer func() { _ = enc.Close() }() // memory only
	h := append([]byte(codec.Magic), codec.Version, byte(codec.Zstd), 0, 0)
	h = binary.LittleEndian.AppendUint64(h, uint64(rawLen))
	h = append(h, 0)
	return enc.EncodeAll(payload, h)
}

func fileSize(t testing.TB, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
