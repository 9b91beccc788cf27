package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

func newCodec(t testing.TB) *Codec {
	t.Helper()
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// bf16Weights returns n bf16 values drawn from N(0, 0.02), rounded from
// float32 to nearest-even, little-endian: the same recipe as bench_io.py.
func bf16Weights(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]byte, 2*n)
	for i := range n {
		f := math.Float32bits(float32(r.NormFloat64()) * 0.02)
		f += 0x7fff + (f>>16)&1 // round to nearest even
		binary.LittleEndian.PutUint16(out[2*i:], uint16(f>>16))
	}
	return out
}

// f32Weights returns n float32 values drawn from N(0, 0.02).
func f32Weights(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(float32(r.NormFloat64())*0.02))
	}
	return out
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	return out
}

func baseLookup(d digest.Digest, b []byte) func(digest.Digest) ([]byte, error) {
	return func(want digest.Digest) ([]byte, error) {
		if want != d {
			return nil, fmt.Errorf("unexpected base %s", want)
		}
		return b, nil
	}
}

func TestRoundTripEveryEncoding(t *testing.T) {
	c := newCodec(t)
	enc, err := c.encoder(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, 7, 8, 9, 100, 4097, 65536 + 5} {
		raw := bf16Weights(n/2+1, uint64(n))[:n]
		base := randomBytes(n, uint64(n))
		bd := digest.FromBytes(base)
		for _, h := range []Header{
			{Encoding: Zstd},
			{Encoding: ByteGrouped, ElemSize: 2, Rotated: true},
			{Encoding: ByteGrouped, ElemSize: 2},
			{Encoding: ByteGrouped, ElemSize: 3},
			{Encoding: ByteGrouped, ElemSize: 4, Rotated: true},
			{Encoding: ByteGrouped, ElemSize: 8, Rotated: true},
			{Encoding: ByteGrouped, ElemSize: 16},
			{Encoding: XOR, ElemSize: 1, BaseDigest: bd},
			{Encoding: XOR, ElemSize: 2, Rotated: true, BaseDigest: bd},
			{Encoding: XOR, ElemSize: 5, BaseDigest: bd},
		} {
			f, err := c.encodeAs(enc, h, raw, base)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Decode(f, baseLookup(bd, base))
			if err != nil {
				t.Fatalf("n=%d %s e=%d rot=%v: %v", n, h.Encoding, h.ElemSize, h.Rotated, err)
			}
			if !bytes.Equal(got, raw) {
				t.Fatalf("n=%d %s e=%d rot=%v: round trip differs", n, h.Encoding, h.ElemSize, h.Rotated)
			}
			ph, err := ParseHeader(f)
			if err != nil || ph.Encoding != h.Encoding || ph.RawLen != int64(n) || ph.ElemSize != h.ElemSize || ph.BaseDigest != h.BaseDigest {
				t.Fatalf("header %+v, %v", ph, err)
			}
		}
	}
}

func TestEncodePicksSmallest(t *testing.T) {
	c := newCodec(t)
	w := bf16Weights(1<<20, 7) // 2 MiB: every candidate is tried in full
	fine := append([]byte(nil), w...)
	// A "fine-tune": perturb the low mantissa bits of 10% of the values.
	r := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < len(fine); i += 2 {
		if r.IntN(10) == 0 {
			fine[i] ^= byte(1 + r.IntN(3))
		}
	}
	bd := digest.FromBytes(w)
	cases := []struct {
		name string
		raw  []byte
		opt  EncodeOptions
		want Encoding
	}{
		{"empty", nil, EncodeOptions{}, Raw},
		{"random", randomBytes(1<<16, 1), EncodeOptions{ElemSize: 2}, Raw},
		{"zeros", make([]byte, 1<<16), EncodeOptions{}, Zstd},
		{"text", bytes.Repeat([]byte("tokenizer vocabulary "), 5000), EncodeOptions{}, Zstd},
		{"bf16", w, EncodeOptions{ElemSize: 2}, ByteGrouped},
		{"bf16-finetune", fine, EncodeOptions{ElemSize: 2, Base: w, BaseDigest: bd}, XOR},
		{"bf16-big-sampled", bf16Weights(3<<20, 8), EncodeOptions{ElemSize: 2}, ByteGrouped},
	}
	for _, tc := range cases {
		f, err := c.Encode(tc.raw, tc.opt)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		h, err := ParseHeader(f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if h.Encoding != tc.want {
			t.Errorf("%s: picked %s, want %s", tc.name, h.Encoding, tc.want)
		}
		if len(f) > len(tc.raw)+fixedHeaderLen {
			t.Errorf("%s: frame %d bytes for %d raw bytes", tc.name, len(f), len(tc.raw))
		}
		got, err := c.Decode(f, baseLookup(bd, w))
		if err != nil || !bytes.Equal(got, tc.raw) {
			t.Fatalf("%s: decode: %v (equal=%v)", tc.name, err, bytes.Equal(got, tc.raw))
		}
		t.Logf("%-18s %-20s %8d -> %8d bytes (%.3f)", tc.name, h.Encoding, len(tc.raw), len(f), float64(len(f))/float64(max(len(tc.raw), 1)))
	}
}

// zstdCLIRatio is raw/compressed for `zstd -1 -T1 -c` (the zstd CLI) on
// 256 MiB of bf16 weights drawn as bf16Weights draws them (N(0, 0.02)
// rounded to bf16), measured once outside this repository: 1.2824.
const zstdCLIRatio = 1.2824

// TestBF16Ratio checks the headline claim on the baseline's data: the
// byte-grouped frame is at least 15% smaller than plain zstd, taking for
// plain zstd the best of this library's zstd at levels 1, 3 and 7 and the
// zstd CLI's -1 figure.
func TestBF16Ratio(t *testing.T) {
	c := newCodec(t)
	w := bf16Weights(4<<20, 0) // 8 MiB
	// encode encodes w as h and checks the frame decodes back to w, so a
	// failed or lossy encode can never count as a saving.
	encode := func(enc *zstd.Encoder, h Header) []byte {
		t.Helper()
		f, err := c.encodeAs(enc, h, w, nil)
		if err != nil {
			t.Fatalf("encode %+v: %v", h, err)
		}
		got, err := c.Decode(f, nil)
		if err != nil || !bytes.Equal(got, w) {
			t.Fatalf("encode %+v: frame does not decode back (err %v)", h, err)
		}
		return f
	}
	plain := 1 / zstdCLIRatio
	for _, lvl := range []int{1, 3, 7} {
		enc, err := c.encoder(lvl)
		if err != nil {
			t.Fatal(err)
		}
		z := encode(enc, Header{Encoding: Zstd})
		r := float64(len(z)) / float64(len(w))
		t.Logf("bf16 8 MiB: zstd level %d: %.4f of raw", lvl, r)
		plain = min(plain, r)
	}
	enc, err := c.encoder(0)
	if err != nil {
		t.Fatal(err)
	}
	g := encode(enc, Header{Encoding: ByteGrouped, ElemSize: 2, Rotated: true})
	gr := encode(enc, Header{Encoding: ByteGrouped, ElemSize: 2})
	gl := float64(len(g)) / float64(len(w))
	t.Logf("bf16 8 MiB: byte-grouped %.4f, without the sign rotation %.4f; best plain zstd %.4f", gl, float64(len(gr))/float64(len(w)), plain)
	if saving := 1 - gl/plain; saving < 0.15 {
		t.Errorf("byte-grouped is only %.1f%% smaller than plain zstd, want >= 15%%", 100*saving)
	}
}

// readSafetensors is a minimal reader for the test: tensor name -> bytes.
func readSafetensors(t *testing.T, path string) (map[string][]byte, map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	data := b[8+n:]
	out, dtypes := map[string][]byte{}, map[string]string{}
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var ti struct {
			DType   string   `json:"dtype"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &ti); err != nil {
			t.Fatal(err)
		}
		out[name] = data[ti.Offsets[0]:ti.Offsets[1]]
		dtypes[name] = ti.DType
	}
	return out, dtypes
}

// TestRealAdapterCheckpoints encodes the trained TRL LoRA (F32) at step 1000
// both on its own and XOR-against its step-500 checkpoint, and checks every
// tensor round-trips.
func TestRealAdapterCheckpoints(t *testing.T) {
	c := newCodec(t)
	final, dt := readSafetensors(t, testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_final/adapter_model.safetensors"))
	ckpt, _ := readSafetensors(t, testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_ckpt500/adapter_model.safetensors"))
	names := make([]string, 0, len(final))
	for n := range final {
		names = append(names, n)
	}
	sort.Strings(names)
	var raw, alone, delta int
	for _, name := range names {
		if dt[name] != "F32" {
			t.Fatalf("%s: dtype %s, expected F32", name, dt[name])
		}
		w, b := final[name], ckpt[name]
		if len(w) != len(b) {
			t.Fatalf("%s: checkpoints differ in size", name)
		}
		f1, err := c.Encode(w, EncodeOptions{ElemSize: 4})
		if err != nil {
			t.Fatal(err)
		}
		bd := digest.FromBytes(b)
		f2, err := c.Encode(w, EncodeOptions{ElemSize: 4, Base: b, BaseDigest: bd})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range [][]byte{f1, f2} {
			got, err := c.Decode(f, baseLookup(bd, b))
			if err != nil || !bytes.Equal(got, w) {
				t.Fatalf("%s: round trip failed: %v", name, err)
			}
		}
		raw, alone, delta = raw+len(w), alone+len(f1), delta+len(f2)
	}
	t.Logf("%d F32 tensors, %d bytes: alone %.3f, with the step-500 checkpoint as base %.3f", len(names), raw, float64(alone)/float64(raw), float64(delta)/float64(raw))
	if alone >= raw {
		t.Errorf("trained F32 LoRA did not compress at all (%d >= %d)", alone, raw)
	}
	if delta > alone {
		t.Errorf("encoding against a base (%d) came out larger than alone (%d)", delta, alone)
	}
}

func TestDecodeRejects(t *testing.T) {
	c := newCodec(t)
	w := bf16Weights(5000, 3)
	bd := digest.FromBytes(w)
	good, err := c.Encode(w, EncodeOptions{ElemSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := c.encoder(0)
	x, err := c.encodeAs(enc, Header{Encoding: XOR, ElemSize: 2, Rotated: true, BaseDigest: digest.FromBytes(w[2000:4000])}, w[:2000], w[2000:4000])
	if err != nil {
		t.Fatal(err)
	}
	mut := func(f []byte, fn func([]byte)) []byte { g := append([]byte(nil), f...); fn(g); return g }
	huge := mut(good, func(g []byte) { binary.LittleEndian.PutUint64(g[8:], 1<<40) })
	bad := map[string][]byte{
		"empty":          nil,
		"short":          good[:10],
		"magic":          mut(good, func(g []byte) { g[0] = 'X' }),
		"version":        mut(good, func(g []byte) { g[4] = 9 }),
		"encoding":       mut(good, func(g []byte) { g[5] = 42 }),
		"flags":          mut(good, func(g []byte) { g[6] = 0x80 }),
		"elemsize":       mut(good, func(g []byte) { g[7] = 0 }),
		"rawlen-huge":    huge,
		"rawlen-small":   mut(good, func(g []byte) { binary.LittleEndian.PutUint64(g[8:], 4000) }),
		"truncated":      good[:len(good)-5],
		"trailing":       append(append([]byte(nil), good...), 1, 2, 3),
		"plane-mode":     mut(good, func(g []byte) { g[fixedHeaderLen] = 7 }),
		"raw-len":        append(c.rawFrame(w), 0),
		"zstd-corrupt":   mut(mustEncode(t, c, make([]byte, 1000), EncodeOptions{}), func(g []byte) { g[len(g)-3] ^= 0xff }),
		"xor-wrong-base": x,
	}
	for name, f := range bad {
		_, err := c.Decode(f, baseLookup(bd, w))
		if err == nil {
			t.Errorf("%s: decoded without error", name)
			continue
		}
		if name != "xor-wrong-base" && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v does not wrap ErrCorrupt", name, err)
		}
	}
	// A base of the wrong length is corruption; a failing lookup is passed on.
	wrongLen := func(digest.Digest) ([]byte, error) { return w[:10], nil }
	if _, err := c.Decode(x, wrongLen); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short base: %v", err)
	}
	if _, err := c.Decode(x, NoBase); !errors.Is(err, errNoBase) {
		t.Errorf("missing base: %v", err)
	}
	if _, err := c.Decode(x, nil); err == nil {
		t.Error("xor frame decoded without a base lookup")
	}
	// The cap applies to Encode too.
	small, _ := New(Options{MaxRawLen: 100})
	defer small.Close()
	if _, err := small.Encode(make([]byte, 101), EncodeOptions{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("encode over cap: %v", err)
	}
	if _, err := small.Decode(good, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("decode over cap: %v", err)
	}
}

func mustEncode(t *testing.T, c *Codec, raw []byte, opt EncodeOptions) []byte {
	t.Helper()
	f, err := c.Encode(raw, opt)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConcurrentUse(t *testing.T) {
	c := newCodec(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 4 {
				w := bf16Weights(20000+g*100+i, uint64(g*10+i))
				f, err := c.Encode(w, EncodeOptions{ElemSize: 2})
				if err != nil {
					t.Error(err)
					return
				}
				got, err := c.Decode(f, nil)
				if err != nil || !bytes.Equal(got, w) {
					t.Errorf("goroutine %d: round trip: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEncodeOptionErrors(t *testing.T) {
	c := newCodec(t)
	if _, err := c.Encode([]byte("abcd"), EncodeOptions{Base: []byte("ab"), BaseDigest: digest.FromString("ab")}); err == nil {
		t.Error("base of another length accepted")
	}
	if _, err := c.Encode([]byte("abcd"), EncodeOptions{Base: []byte("abce")}); err == nil {
		t.Error("base without digest accepted")
	}
	if _, err := c.Encode([]byte("abcd"), EncodeOptions{ElemSize: 17}); err == nil {
		t.Error("element size 17 accepted")
	}
	if _, err := c.Encode([]byte("abcd"), EncodeOptions{Level: 23}); err == nil {
		t.Error("level 23 accepted")
	}
}

// TestSample: pieces are element-aligned, evenly spread from the start to
// the end of raw, and cut at the same places in base.
func TestSample(t *testing.T) {
	raw, base := make([]byte, 100), make([]byte, 100)
	for i := range raw {
		raw[i], base[i] = byte(i), byte(200-i)
	}
	s, sb := Sample(raw, base, 2, 4, 5) // pieces of 4 bytes, 32 apart
	want := []byte{0, 1, 2, 3, 32, 33, 34, 35, 64, 65, 66, 67, 96, 97, 98, 99}
	if !bytes.Equal(s, want) {
		t.Fatalf("sample %v, want %v", s, want)
	}
	for i, v := range sb {
		if v != byte(200-int(want[i])) {
			t.Fatalf("base sample %v is not cut where raw's is", sb)
		}
	}
	if _, sb := Sample(raw, nil, 1, 2, 10); sb != nil {
		t.Fatalf("base sample without a base: %v", sb)
	}
}
