package peft

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/internal/testutil"
)

func f32Tensor(name string, shape []int64, f func(i int) float32) *format.Tensor {
	n, _ := format.NumElements(shape)
	b := make([]byte, 4*n)
	for i := range int(n) {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f(i)))
	}
	return &format.Tensor{Name: name, DType: format.F32, Shape: shape, Data: b}
}

// effective is Scale*B in float64, what PEFT multiplies A by.
func effective(t *testing.T, l *format.LoRA) []float64 {
	t.Helper()
	v, err := l.B.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x) * l.Scale
	}
	return out
}

// Converting the legacy .bin adapters to safetensors (Load, Write) keeps
// every tensor's bytes, and the reloaded adapter gives the same Delta.
func TestConvertBinAdapters(t *testing.T) {
	for _, rel := range []string{
		"adapters/peft_lora_opt-125m_regression_0.5.0_bin",
		"adapters/peft_ia3_mt0-large_seq2seq_bin",
		"adapters/peft_regression_0.6.1_bin/lora_emb_conv1d",
		"adapters/peft_regression_0.6.1_bin/lora_conv2d",
	} {
		a := load(t, rel)
		for _, st := range []bool{true, false} {
			out := filepath.Join(t.TempDir(), "out")
			if err := Write(t.Context(), out, a.Config, a.Tensors, st); err != nil {
				t.Fatal(err)
			}
			b := loadDir(t, out)
			if len(b.Tensors) != len(a.Tensors) {
				t.Fatalf("%s: %d tensors back", rel, len(b.Tensors))
			}
			for i := range a.Tensors {
				x, y := a.Tensors[i], b.Tensors[i]
				if x.Name != y.Name || x.DType != y.DType || !format.ShapeEqual(x.Shape, y.Shape) || !bytes.Equal(x.Data, y.Data) {
					t.Errorf("%s: tensor %s differs after conversion", rel, x.Name)
				}
			}
			orig, _ := os.ReadFile(filepath.Join(testutil.SharedData(t, rel), ConfigFile))
			got, _ := os.ReadFile(filepath.Join(out, ConfigFile))
			if !bytes.Equal(orig, got) {
				t.Errorf("%s: config changed", rel)
			}
		}
	}
}

func loadDir(t *testing.T, dir string) *Adapter {
	t.Helper()
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// FromDelta folds every scale into B with lora_alpha = r, and writes
// rank_pattern/alpha_pattern for modules of another rank; PEFT's rules on
// the written config give back the same effective update.
func TestFromDeltaRoundTrip(t *testing.T) {
	mk := func(target string, r int64, scale float64, seed int) *format.LoRA {
		return &format.LoRA{
			Target: target, Scale: scale,
			A: f32Tensor("a", []int64{r, 6}, func(i int) float32 { return float32(i%7+seed) / 8 }),
			B: f32Tensor("b", []int64{4, r}, func(i int) float32 { return float32(i%5-seed) / 3 }),
		}
	}
	d := &format.Delta{Method: "lora", LoRA: []*format.LoRA{
		mk("model.layers.0.self_attn.q_proj.weight", 8, 2, 1),
		mk("model.layers.0.self_attn.v_proj.weight", 4, 16/math.Sqrt(4), 2), // an rsLoRA scale
		mk("model.layers.1.self_attn.q_proj.weight", 8, 0.5, 3),
		mk("layers.1.self_attn.q_proj.weight", 16, 1, 4), // a suffix of the module above
	}}
	d.LoRA[0].Bias = f32Tensor("bias", []int64{4}, func(i int) float32 { return float32(i) })
	d.Replace = []*format.Tensor{f32Tensor("score.weight", []int64{2, 6}, func(i int) float32 { return float32(i) })}

	cfg, tensors, err := FromDelta(d, "my/base")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.R != 8 || cfg.LoraAlpha != 8 || cfg.UseRSLoRA || !cfg.LoraBias || cfg.BaseModelNameOrPath != "my/base" ||
		len(cfg.ModulesToSave) != 1 || cfg.ModulesToSave[0] != "score" || len(cfg.TargetModules.List) != 4 {
		t.Errorf("config %+v", cfg)
	}
	for _, st := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "adapter")
		if err := Write(context.Background(), dir, cfg, tensors, st); err != nil {
			t.Fatal(err)
		}
		back := delta(t, loadDir(t, dir))
		if len(back.LoRA) != 4 || len(back.Replace) != 1 || back.Replace[0].Name != "score.weight" {
			t.Fatalf("back: %d LoRA, %d replace", len(back.LoRA), len(back.Replace))
		}
		for i, l := range back.LoRA {
			src := d.LoRA[i]
			if l.Target != src.Target || l.Rank() != src.Rank() || l.Scale != 1 || !bytes.Equal(l.A.Data, src.A.Data) {
				t.Errorf("%s: rank %d scale %v", l.Target, l.Rank(), l.Scale)
			}
			want, got := effective(t, src), effective(t, l)
			for j := range want {
				if math.Abs(got[j]-want[j]) > 1e-7*math.Abs(want[j]) {
					t.Fatalf("%s: effective B[%d] = %v, want %v", l.Target, j, got[j], want[j])
				}
			}
		}
		bias, _ := back.LoRA[0].Bias.Float32s()
		if bias[3] != 6 { // 3 * scale 2
			t.Errorf("bias not scaled: %v", bias)
		}
	}
	// Nothing to scale: B is aliased, not copied.
	d1 := &format.Delta{LoRA: []*format.LoRA{mk("x.weight", 2, 1, 0)}}
	_, ts, err := FromDelta(d1, "")
	if err != nil || &ts[1].Data[0] != &d1.LoRA[0].B.Data[0] {
		t.Errorf("scale 1 copied B (%v)", err)
	}
}

func TestFromDeltaErrors(t *testing.T) {
	l := func(target string, fifo bool) *format.LoRA {
		return &format.LoRA{Target: target, Scale: 1, FanInFanOut: fifo,
			A: f32Tensor("a", []int64{2, 3}, func(int) float32 { return 1 }),
			B: f32Tensor("b", []int64{3, 2}, func(int) float32 { return 1 })}
	}
	cases := []struct {
		d    *format.Delta
		want error
	}{
		{&format.Delta{LoRA: []*format.LoRA{l("a.weight", true), l("b.weight", false)}}, ErrUnsupported},
		{&format.Delta{Adapters: []*format.Adapter{{}}}, ErrUnsupported},
		{&format.Delta{LoRA: []*format.LoRA{l("a.bias", false)}}, ErrInvalid},
		{&format.Delta{LoRA: []*format.LoRA{l("a.weight", false)}, Replace: []*format.Tensor{f32Tensor("a.weight", []int64{1}, func(int) float32 { return 0 })}}, ErrUnsupported},
	}
	for i, c := range cases {
		if _, _, err := FromDelta(c.d, ""); !errors.Is(err, c.want) {
			t.Errorf("case %d: %v, want %v", i, err, c.want)
		}
	}
}

// Shape disagreements name the tensors and both shapes.
func TestShapeErrors(t *testing.T) {
	cfg := NewLoRAConfig()
	cfg.R, cfg.LoraAlpha = 4, 4
	cfg.TargetModules = ModuleList("q")
	A := f32Tensor("base_model.model.q.lora_A.weight", []int64{4, 6}, func(int) float32 { return 1 })
	cases := []struct {
		b    *format.Tensor
		r    int
		want []string
	}{
		{f32Tensor("base_model.model.q.lora_B.weight", []int64{5, 3}, func(int) float32 { return 1 }), 4,
			[]string{`"base_model.model.q.lora_A.weight" has shape [4 6]`, `"base_model.model.q.lora_B.weight" has shape [5 3]`}},
		{f32Tensor("base_model.model.q.lora_B.weight", []int64{5, 4}, func(int) float32 { return 1 }), 8,
			[]string{"[4 6]", "[5 4]", "r = 8"}},
	}
	for _, c := range cases {
		cfg.R = c.r
		dir := filepath.Join(t.TempDir(), "a")
		if err := Write(t.Context(), dir, cfg, []*format.Tensor{A, c.b}, true); err != nil {
			t.Fatal(err)
		}
		_, err := loadDir(t, dir).Delta()
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%v, want ErrInvalid", err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q does not mention %s", err, w)
			}
		}
	}
	// rank_pattern disagreeing with the tensors is named.
	cfg.R, cfg.RankPattern = 4, Patterns{{"q", 2}}
	dir := filepath.Join(t.TempDir(), "a")
	Write(t.Context(), dir, cfg, []*format.Tensor{A, f32Tensor("base_model.model.q.lora_B.weight", []int64{5, 4}, func(int) float32 { return 1 })}, true)
	if _, err := loadDir(t, dir).Delta(); err == nil || !strings.Contains(err.Error(), `rank_pattern["q"] = 2`) {
		t.Errorf("rank_pattern mismatch: %v", err)
	}
	// A lone A factor.
	dir = filepath.Join(t.TempDir(), "a")
	Write(t.Context(), dir, cfg, []*format.Tensor{A}, true)
	if _, err := loadDir(t, dir).Delta(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no LoRA B factor") {
		t.Errorf("lone A: %v", err)
	}
}

// Write is all-or-nothing and never overwrites a non-empty folder.
func TestWriteAtomic(t *testing.T) {
	cfg := NewLoRAConfig()
	ts := []*format.Tensor{f32Tensor("base_model.model.q.lora_A.weight", []int64{8, 2}, func(int) float32 { return 1 })}
	root := t.TempDir()
	dir := filepath.Join(root, "a")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644)
	if err := Write(t.Context(), dir, cfg, ts, true); !errors.Is(err, fs.ErrExist) {
		t.Errorf("non-empty dir: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Write(ctx, filepath.Join(root, "b"), cfg, ts, true); err == nil {
		t.Error("cancelled write succeeded")
	}
	bad := []*format.Tensor{{Name: "x", DType: format.F32, Shape: []int64{3}, Data: []byte{1}}}
	if err := Write(t.Context(), filepath.Join(root, "c"), cfg, bad, false); err == nil {
		t.Error("bad tensor written")
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 || ents[0].Name() != "a" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("leftovers after failed writes: %v", names)
	}
	// An empty existing folder is replaced.
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	if err := Write(t.Context(), filepath.Join(root, "d"), cfg, ts, true); err != nil {
		t.Fatal(err)
	}
	loadDir(t, filepath.Join(root, "d"))
}

func TestIA3FromDelta(t *testing.T) {
	d := delta(t, load(t, "adapters/peft_ia3_mt0-large_seq2seq_bin"))
	d.IA3[2].FeedForward = true // pretend; checks feedforward_modules is written
	d.IA3[2].Vector = &format.Tensor{Name: "v", DType: format.F32, Shape: []int64{1, 2}, Data: make([]byte, 8)}
	cfg, ts, err := FromDelta(d, "bigscience/mt0-large")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PeftType != "IA3" || len(cfg.TargetModules.List) != 192 || len(cfg.FeedforwardModules.List) != 1 {
		t.Fatalf("config %+v", cfg)
	}
	dir := filepath.Join(t.TempDir(), "ia3")
	if err := Write(t.Context(), dir, cfg, ts, true); err != nil {
		t.Fatal(err)
	}
	back := delta(t, loadDir(t, dir))
	for i, v := range back.IA3 {
		if v.Target != d.IA3[i].Target || v.FeedForward != d.IA3[i].FeedForward || !bytes.Equal(v.Vector.Data, d.IA3[i].Vector.Data) {
			t.Errorf("IA3 %d: %s ff %v", i, v.Target, v.FeedForward)
		}
	}
}

func TestFromDeltaNestedPatterns(t *testing.T) {
	mk := func(target string, r int64) *format.LoRA {
		return &format.LoRA{Target: target, Scale: 1,
			A: f32Tensor("a", []int64{r, 2}, func(int) float32 { return 1 }),
			B: f32Tensor("b", []int64{2, r}, func(int) float32 { return 1 })}
	}
	// "c.a.b" ends in ".a.b", so a plain key "a.b" would also match it.
	d := &format.Delta{LoRA: []*format.LoRA{mk("a.b.weight", 4), mk("c.a.b.weight", 8), mk("x.weight", 8), mk("y.weight", 8), mk("z.a.b.weight", 2)}}
	cfg, _, err := FromDelta(d, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range d.LoRA {
		ms, err := cfg.ScaleOf(strings.TrimSuffix(l.Target, ".weight"))
		if err != nil || ms.Rank != l.Rank() || ms.Scale != 1 {
			t.Errorf("%s: %+v %v", l.Target, ms, err)
		}
	}
	out, _ := cfg.Marshal()
	t.Logf("%s", out)
}
