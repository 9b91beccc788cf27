package hf

import (
	"bytes"
	"encoding/json"
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

const fluxSharded = "safetensors/fluxml-safetensors-jl/sharded"

func TestOpenTinyGPT2(t *testing.T) {
	dir := testutil.SharedData(t, "models/lm-buddy-tiny_gpt2")
	m := mustOpen(t, dir)
	if got := m.Config()["model_type"]; got != "gpt2" {
		t.Errorf("model_type %v", got)
	}
	if got := m.Config()["n_embd"]; got != json.Number("2") {
		t.Errorf("n_embd %v", got)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if !bytes.Equal(m.ConfigBytes(), raw) {
		t.Error("ConfigBytes differ from the file")
	}
	wantFiles := []string{"config.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"}
	if !slices.Equal(m.Files(), wantFiles) {
		t.Errorf("Files %v, want %v", m.Files(), wantFiles)
	}
	if !slices.Equal(m.Shards(), []string{"model.safetensors"}) || m.Index() != nil {
		t.Errorf("Shards %v index %v", m.Shards(), m.Index())
	}
	if len(m.Names()) != 16 {
		t.Fatalf("%d tensors, manifest says 16", len(m.Names()))
	}
	// GPT2Model with vocab 21, n_embd 2, n_positions from config.
	wte, ok := m.Info("wte.weight")
	if !ok || wte.DType != format.F32 || !format.ShapeEqual(wte.Shape, []int64{21, 2}) {
		t.Errorf("wte.weight %+v %v", wte, ok)
	}
	ca, err := m.Tensor("h.0.attn.c_attn.weight")
	if err != nil {
		t.Fatal(err)
	}
	if !format.ShapeEqual(ca.Shape, []int64{2, 6}) {
		t.Errorf("c_attn %v", ca.Shape)
	}
	if _, err := m.Tensor("lm_head.weight"); !errors.Is(err, safetensors.ErrNotFound) {
		t.Errorf("missing tensor: %v", err)
	}
	if s, _ := m.ShardOf("wte.weight"); s != "model.safetensors" {
		t.Errorf("ShardOf %q", s)
	}
}

// The six FluxML shards hold exactly the tensors of the non-sharded file.
func TestOpenSharded(t *testing.T) {
	m := mustOpen(t, testutil.SharedData(t, fluxSharded))
	if len(m.Shards()) != 6 || m.Shards()[0] != "model-00001-of-00006.safetensors" {
		t.Fatalf("shards %v", m.Shards())
	}
	if len(m.Names()) != 36 || m.Config() != nil || len(m.Files()) != 0 {
		t.Fatalf("names %d config %v files %v", len(m.Names()), m.Config(), m.Files())
	}
	if m.Index().TotalSize != 4305 || m.TotalSize() != 4305 || len(m.Warnings()) != 0 {
		t.Errorf("total %d/%d warnings %v", m.Index().TotalSize, m.TotalSize(), m.Warnings())
	}
	// Names: shard order, then file order within the shard.
	first := m.ShardFile(0).Infos()
	if m.Names()[0] != first[0].Name || m.Names()[len(first)] != m.ShardFile(1).Infos()[0].Name {
		t.Errorf("names not in shard order: %v", m.Names()[:3])
	}
	ref, err := safetensors.Open(testutil.SharedData(t, "safetensors/fluxml-safetensors-jl/non_sharded/model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, ti := range ref.Infos() {
		want, _ := ref.Tensor(ti.Name)
		got, err := m.Tensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.DType != want.DType || !format.ShapeEqual(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s differs from the non-sharded file", ti.Name)
		}
	}
}

func TestOpenFile(t *testing.T) {
	p := testutil.SharedData(t, "safetensors/hf-safetensors-samples/e_f16.safetensors")
	m, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !slices.Equal(m.Names(), []string{"e"}) || !slices.Equal(m.Shards(), []string{"e_f16.safetensors"}) || m.Dir() != filepath.Dir(p) {
		t.Fatalf("names %v shards %v dir %s", m.Names(), m.Shards(), m.Dir())
	}
	if _, err := OpenFile(testutil.SharedData(t, "malformed/syoyo_safetensors_abuse_attempt_1.safetensors")); !errors.Is(err, safetensors.ErrHeaderLength) {
		t.Errorf("malformed: %v", err)
	}
}

// copyTree copies a shared folder into a temp folder the test may break.
func copyTree(t *testing.T, rel string) string {
	t.Helper()
	src := testutil.SharedData(t, rel)
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func editIndex(t *testing.T, dir string, edit func(wm map[string]any, meta map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, IndexName)
	b, _ := os.ReadFile(p)
	var idx map[string]any
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	edit(idx["weight_map"].(map[string]any), idx["metadata"].(map[string]any))
	b, _ = json.Marshal(idx)
	os.WriteFile(p, b, 0o644)
}

func TestBrokenFolders(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   error
		msg    string
	}{
		{"listed tensor missing", func(t *testing.T, dir string) {
			editIndex(t, dir, func(wm, _ map[string]any) { wm["ghost"] = "model-00002-of-00006.safetensors" })
		}, ErrIndex, `"ghost"`},
		{"shard tensor not listed", func(t *testing.T, dir string) {
			editIndex(t, dir, func(wm, _ map[string]any) { delete(wm, "int64_3") })
		}, ErrIndex, `"int64_3" of model-00001-of-00006.safetensors is not in`},
		{"listed in the wrong shard", func(t *testing.T, dir string) {
			editIndex(t, dir, func(wm, _ map[string]any) { wm["int64_3"] = "model-00003-of-00006.safetensors" })
		}, ErrIndex, "lists it in model-00003"},
		{"tensor in two shards", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "model-00002-of-00006.safetensors"))
			os.WriteFile(filepath.Join(dir, "model-00007-of-00006.safetensors"), b, 0o644)
			editIndex(t, dir, func(wm, _ map[string]any) { wm["x"] = "model-00007-of-00006.safetensors" })
		}, ErrIndex, "is in both"},
		{"shard outside the folder", func(t *testing.T, dir string) {
			editIndex(t, dir, func(wm, _ map[string]any) { wm["float32_357"] = "../model-00002-of-00006.safetensors" })
		}, ErrIndex, "inside the folder"},
		{"absolute shard", func(t *testing.T, dir string) {
			editIndex(t, dir, func(wm, _ map[string]any) { wm["float32_357"] = "/etc/passwd.safetensors" })
		}, ErrIndex, "inside the folder"},
		{"index not JSON", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, IndexName), []byte("{"), 0o644)
		}, ErrIndex, IndexName},
		{"no weight_map", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, IndexName), []byte(`{"metadata":{}}`), 0o644)
		}, ErrIndex, "weight_map"},
		{"weight_map value not a string", func(t *testing.T, dir string) {
			editIndex(t, dir, func(wm, _ map[string]any) { wm["float32_357"] = 2 })
		}, ErrIndex, "not a file name"},
		{"total_size not a number", func(t *testing.T, dir string) {
			editIndex(t, dir, func(_, meta map[string]any) { meta["total_size"] = "big" })
		}, ErrIndex, "total_size"},
		{"shard missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "model-00004-of-00006.safetensors"))
		}, os.ErrNotExist, "model-00004"},
		{"shard malformed", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "model-00004-of-00006.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, 0), 0o644)
		}, safetensors.ErrIncompleteBuffer, "model-00004"},
		{"config not an object", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, ConfigName), []byte(`[1]`), 0o644)
		}, ErrConfig, "config.json"},
		{"no weights", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, IndexName))
		}, ErrNoWeights, "model.safetensors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyTree(t, fluxSharded)
			c.break_(t, dir)
			m, err := Open(dir)
			if err == nil {
				m.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q, want %v containing %q", err, c.want, c.msg)
			}
		})
	}
}

func TestTotalSizeMismatchWarns(t *testing.T) {
	dir := copyTree(t, fluxSharded)
	editIndex(t, dir, func(_, meta map[string]any) { meta["total_size"] = 4306.0 })
	m := mustOpen(t, dir)
	if len(m.Warnings()) != 1 || !strings.Contains(m.Warnings()[0], "4306") {
		t.Fatalf("warnings %v", m.Warnings())
	}
}

func TestOtherFilesListing(t *testing.T) {
	dir := copyTree(t, "models/lm-buddy-tiny_gpt2")
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "x.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.json"), []byte("{}"), 0o644)
	os.MkdirAll(filepath.Join(dir, ".git"), 0o755)
	os.WriteFile(filepath.Join(dir, ".git", "HEAD"), []byte("x"), 0o644)
	os.Symlink(filepath.Join(dir, "vocab.json"), filepath.Join(dir, "link.json"))
	m := mustOpen(t, dir)
	want := []string{"a.json", "a/x.txt", "config.json", "link.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"}
	if !slices.Equal(m.Files(), want) {
		t.Fatalf("Files %v\nwant %v", m.Files(), want)
	}
}

// mustOpen opens the model folder dir and closes it when the test ends.
func mustOpen(t *testing.T, dir string) *Model {
	t.Helper()
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() }) // read-only
	return m
}
