package registry

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/deltactl/deltactl/registry/store"
)

// testBackends returns an fs backend always and an s3 one when the test
// server is configured.
func testBackends(t *testing.T) map[string]store.Backend {
	t.Helper()
	return backendsForTest(t)
}

// newReg opens a Registry on b with small chunks (so chunking is exercised
// on small files) and a private hash cache.
func newReg(t testing.TB, b store.Backend, chunk int64) *Registry {
	t.Helper()
	r, err := New(b, Options{ChunkSize: chunk, CacheDir: filepath.Join(t.TempDir(), "cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// stTensor is one tensor for writeST.
type stTensor struct {
	name  string
	dtype string
	shape []int64
	data  []byte
}

// writeST writes a safetensors file with the header padded with spaces to
// a multiple of 8, tensors in the given order.
func writeST(t testing.TB, path string, ts []stTensor, meta map[string]string) {
	t.Helper()
	hdr := map[string]any{}
	if meta != nil {
		hdr["__metadata__"] = meta
	}
	off := 0
	for _, x := range ts {
		hdr[x.name] = map[string]any{"dtype": x.dtype, "shape": x.shape, "data_offsets": []int{off, off + len(x.data)}}
		off += len(x.data)
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, uint64(len(js)))
	buf.Write(js)
	for _, x := range ts {
		buf.Write(x.data)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// randF32 returns n float32 weights ~ N(0, 0.02) as little-endian bytes.
func randF32(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(float32(rng.NormFloat64()*0.02)))
	}
	return out
}

// gpt2Base writes a GPT-2-shaped base holding the weights the gpt2 LoRA
// adapters target: transformer.h.N.attn.c_attn.weight [768, 2304] (Conv1D,
// stored [in, out]) for 12 layers, plus a config.json. badLayer >= 0 gives
// that layer the wrong shape.
// oneTensorModel writes a model folder holding one random F32 tensor "w" of
// rows x cols (drawn from seed) and returns the folder.
func oneTensorModel(t testing.TB, rows, cols int64, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	writeST(t, filepath.Join(dir, "model.safetensors"), []stTensor{{name: "w", dtype: "F32", shape: []int64{rows, cols}, data: randF32(seed, int(rows*cols))}}, nil)
	return dir
}

func gpt2Base(t testing.TB, dir string, badLayer int) {
	t.Helper()
	var ts []stTensor
	for l := 0; l < 12; l++ {
		shape := []int64{768, 2304}
		if l == badLayer {
			shape = []int64{768, 768}
		}
		ts = append(ts, stTensor{name: "transformer.h." + itoa(l) + ".attn.c_attn.weight", dtype: "F32", shape: shape,
			data: randF32(uint64(l), int(shape[0]*shape[1]))})
	}
	writeST(t, filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"gpt2","n_embd":768,"n_layer":12}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// treeBytes reads every regular file under dir keyed by slash path, with mode.
func treeBytes(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails unless got holds exactly the files of want, byte for byte.
func sameTree(t testing.TB, want, got string) {
	t.Helper()
	w, g := treeBytes(t, want), treeBytes(t, got)
	var names []string
	for k := range w {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(w) != len(g) {
		t.Fatalf("pulled %d files, pushed %d", len(g), len(w))
	}
	if len(w) == 0 {
		t.Fatalf("%s holds no files: nothing to compare", want)
	}
	for _, k := range names {
		if gv, ok := g[k]; !ok {
			t.Fatalf("file %s missing after pull", k)
		} else if gv != w[k] {
			t.Fatalf("file %s differs after pull (%d vs %d bytes)", k, len(g[k]), len(w[k]))
		}
	}
}

var bg = context.Background()

// flipByte flips the last byte of a stored object (works on any backend:
// read, delete, put back).
func flipByte(t testing.TB, b store.Backend, key string) {
	t.Helper()
	rc, err := b.Get(bg, key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	_ = rc.Close() // read only; the content is what this helper checks
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0x01
	if err := b.Delete(bg, key); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(bg, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func contextWithCancel() (context.Context, context.CancelFunc) { return context.WithCancel(bg) }
