package hf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/internal/testutil"
)

// reshard copies m into dir with the given shard size, streaming each tensor.
func reshard(t *testing.T, m *Model, dir string, maxShard int64, meta map[string]string, opts ...Option) *Writer {
	t.Helper()
	var plan []safetensors.TensorInfo
	for _, n := range m.Names() {
		ti, _ := m.Info(n)
		plan = append(plan, ti)
	}
	w, err := NewWriter(dir, plan, maxShard, meta, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Names() {
		r, err := m.Section(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteTensor(n, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range m.Files() {
		if err := w.CopyFile(f, filepath.Join(m.Dir(), filepath.FromSlash(f))); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// sameTensors checks that b holds a's tensors with identical bytes.
func sameTensors(t *testing.T, a, b *Model) {
	t.Helper()
	if !slices.Equal(a.Names(), b.Names()) {
		t.Fatalf("names differ:\n%v\n%v", a.Names(), b.Names())
	}
	for _, n := range a.Names() {
		x, _ := a.Tensor(n)
		y, err := b.Tensor(n)
		if err != nil {
			t.Fatal(err)
		}
		if x.DType != y.DType || !slices.Equal(x.Shape, y.Shape) || !bytes.Equal(x.Data, y.Data) {
			t.Errorf("tensor %s differs", n)
		}
	}
}

func TestReshardFluxML(t *testing.T) {
	src := mustOpen(t, testutil.SharedData(t, fluxSharded))
	for _, c := range []struct {
		max    int64
		shards int
	}{{0, 1}, {1 << 20, 1}, {1000, -1}, {300, -1}, {1, 36}} {
		// Expected shard count from the greedy rule, computed independently.
		want := c.shards
		if want < 0 {
			want, size := 1, int64(0)
			for i, n := range src.Names() {
				ti, _ := src.Info(n)
				if i > 0 && size+ti.Len() > c.max {
					want++
					size = 0
				}
				size += ti.Len()
			}
			c.shards = want
		}
		out := filepath.Join(t.TempDir(), "out")
		w := reshard(t, src, out, c.max, map[string]string{"format": "pt"})
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		got, err := Open(out)
		if err != nil {
			t.Fatalf("max %d: %v", c.max, err)
		}
		if len(got.Shards()) != c.shards {
			t.Errorf("max %d: %d shards, want %d", c.max, len(got.Shards()), c.shards)
		}
		if c.shards == 1 && (got.Shards()[0] != SingleName || got.Index() != nil) {
			t.Errorf("single shard written as %v", got.Shards())
		}
		if c.shards > 1 {
			if got.Index().TotalSize != 4305 || len(got.Warnings()) != 0 {
				t.Errorf("total_size %d warnings %v", got.Index().TotalSize, got.Warnings())
			}
			for i, s := range got.Shards() {
				f := got.ShardFile(i)
				var size int64
				for _, ti := range f.Infos() {
					size += ti.Len()
				}
				if size > c.max && len(f.Infos()) > 1 {
					t.Errorf("%s holds %d bytes > %d", s, size, c.max)
				}
				if f.Metadata()["format"] != "pt" {
					t.Errorf("%s metadata %v", s, f.Metadata())
				}
			}
		}
		sameTensors(t, src, got)
		got.Close()
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")); len(left) != 0 {
			t.Errorf("temp folders left: %v", left)
		}
	}
}

// Writing the FluxML tensors as one file in the reference file's order and
// without metadata reproduces non_sharded/model.safetensors byte for byte.
func TestSingleFileMatchesReference(t *testing.T) {
	refPath := testutil.SharedData(t, "safetensors/fluxml-safetensors-jl/non_sharded/model.safetensors")
	ref, err := OpenFile(refPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	out := filepath.Join(t.TempDir(), "m")
	if err := reshard(t, ref, out, 0, nil).Commit(); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(refPath)
	b, _ := os.ReadFile(filepath.Join(out, SingleName))
	if !bytes.Equal(a, b) {
		t.Fatal("single-file output differs from the reference file")
	}
}

func TestIndexFormat(t *testing.T) {
	src := mustOpen(t, testutil.SharedData(t, "models/lm-buddy-tiny_gpt2"))
	out := filepath.Join(t.TempDir(), "gpt2")
	w := reshard(t, src, out, 4096, map[string]string{"format": "pt"})
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(out, IndexName))
	s := string(b)
	if !strings.HasPrefix(s, "{\n  \"metadata\": {\n    \"total_size\": 8672\n  },\n  \"weight_map\": {\n    \"h.0.attn.c_attn.bias\": \"model-00001-of-00003.safetensors\",\n") || !strings.HasSuffix(s, "\"\n  }\n}\n") {
		t.Errorf("index layout differs from transformers' json.dumps(indent=2, sort_keys=True):\n%s", s)
	}
	got := mustOpen(t, out)
	sameTensors(t, src, got)
	if !slices.Equal(got.Files(), src.Files()) || !bytes.Equal(got.ConfigBytes(), src.ConfigBytes()) {
		t.Errorf("files %v config copied %v", got.Files(), bytes.Equal(got.ConfigBytes(), src.ConfigBytes()))
	}
}

func TestWriterDestination(t *testing.T) {
	src := mustOpen(t, testutil.SharedData(t, "models/lm-buddy-tiny_gpt2"))
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	os.MkdirAll(out, 0o755)
	os.WriteFile(filepath.Join(out, "old.txt"), []byte("old"), 0o644)

	var plan []safetensors.TensorInfo
	if _, err := NewWriter(out, plan, 0, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("non-empty destination: %v", err)
	}
	// Forced: the old folder is replaced as a whole.
	if err := reshard(t, src, out, 0, nil, WithForce()).Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "old.txt")); !os.IsNotExist(err) {
		t.Error("old file survived a forced replace")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("leftovers beside the output: %v", entries)
	}
	// An empty existing folder is fine without force.
	empty := filepath.Join(parent, "empty")
	os.Mkdir(empty, 0o755)
	if err := reshard(t, src, empty, 0, nil).Commit(); err != nil {
		t.Fatal(err)
	}
	// Abort leaves nothing.
	ab := filepath.Join(parent, "aborted")
	w := reshard(t, src, ab, 1000, nil)
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ab); !os.IsNotExist(err) {
		t.Error("aborted output exists")
	}
	if _, err := os.Stat(w.TempDir()); !os.IsNotExist(err) {
		t.Error("aborted temp folder exists")
	}
	if err := w.Commit(); !errors.Is(err, ErrMismatch) {
		t.Errorf("commit after abort: %v", err)
	}
}

func TestWriterMisuse(t *testing.T) {
	plan := []safetensors.TensorInfo{
		{Name: "a", DType: format.F32, Shape: []int64{2}},
		{Name: "b", DType: format.F32, Shape: []int64{2}},
	}
	dir := filepath.Join(t.TempDir(), "o")
	w, err := NewWriter(dir, plan, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if !slices.Equal(w.Shards(), []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
		t.Fatalf("shards %v", w.Shards())
	}
	if err := w.WriteTensor("b", bytes.NewReader(make([]byte, 8))); !errors.Is(err, ErrMismatch) {
		t.Errorf("out of order: %v", err)
	}
	if err := w.WriteTensor("a", bytes.NewReader(make([]byte, 8))); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"../x", "/etc/x", "a/../b", IndexName, "model-00002-of-00002.safetensors", ""} {
		if err := w.AddFile(bad, strings.NewReader("x")); !errors.Is(err, ErrMismatch) {
			t.Errorf("AddFile(%q): %v", bad, err)
		}
	}
	if err := w.AddFile("sub/tok.json", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile("sub/tok.json", strings.NewReader("{}")); !errors.Is(err, ErrMismatch) {
		t.Errorf("duplicate file: %v", err)
	}
	if err := w.Commit(); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("commit with a missing tensor: %v", err)
	}
	if err := w.WriteTensor("b", bytes.NewReader(make([]byte, 7))); !errors.Is(err, safetensors.ErrMismatch) {
		t.Errorf("short tensor: %v", err)
	}
	if err := w.Commit(); err == nil {
		t.Error("commit after a failed write succeeded")
	}
	if _, err := NewWriter(dir, []safetensors.TensorInfo{plan[0], plan[0]}, 0, nil); !errors.Is(err, safetensors.ErrDuplicate) {
		t.Errorf("duplicate plan: %v", err)
	}
}

func TestEmptyPlan(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "e")
	w, err := NewWriter(dir, nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	m := mustOpen(t, dir)
	if len(m.Names()) != 0 {
		t.Fatal(m.Names())
	}
}

func TestParseSize(t *testing.T) {
	ok := map[string]int64{
		"5GB": 5_000_000_000, "500MB": 500_000_000, "2GiB": 2 << 30, "10KB": 10_000, "3kib": 3072,
		"1.5GB": 1_500_000_000, " 7 MB ": 7_000_000, "1048576": 1 << 20, "0": 0, "12B": 12, "1TB": 1e12, "1TiB": 1 << 40,
	}
	for s, want := range ok {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "GB", "5XB", "-1GB", "1e3", "5 G", "99999999999999999999", "9999999999TB", "1.2.3GB"} {
		if _, err := ParseSize(s); !errors.Is(err, ErrSize) {
			t.Errorf("ParseSize(%q): %v, want ErrSize", s, err)
		}
	}
}
