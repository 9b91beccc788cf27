package gguf_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/train"
)

// deltactlLoss is `deltactl eval`'s mean next-token cross-entropy of the
// model folder (plus delta folder, if not "") over windows, each a record of
// input_ids scored from its second token.
func deltactlLoss(t *testing.T, model, delta string, windows [][]int32) (float64, int64) {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, w := range windows {
		j, _ := json.Marshal(map[string]any{"input_ids": w})
		b.Write(j)
		b.WriteByte('\n')
	}
	data := filepath.Join(t.TempDir(), "windows.jsonl")
	if err := os.WriteFile(data, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := train.LoadModel(ctx, model, 0)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := train.LoadData(data, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	var d *format.Delta
	if delta != "" {
		if d, err = train.ReadDelta(ctx, delta); err != nil {
			t.Fatal(err)
		}
	}
	r, err := train.Evaluate(ctx, m, d, ds, train.EvalOptions{Threads: 2, Batch: len(windows)})
	if err != nil {
		t.Fatal(err)
	}
	return r.Loss, r.Tokens
}

// windows cuts n windows of length tokens each from ids.
func windows(ids []int32, n, length int) [][]int32 {
	var out [][]int32
	for o := 0; len(out) < n && o+length <= len(ids); o += length {
		out = append(out, ids[o:o+length])
	}
	return out
}

func relDiff(a, b float64) float64 { return math.Abs(a-b) / math.Abs(b) }

// rng is a splitmix64 stream of deterministic test weights.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// normal returns a N(0, std²) deviate.
func (r *rng) normal(std float64) float32 {
	u1 := (float64(r.next()>>11) + 0.5) / (1 << 53)
	u2 := float64(r.next()>>11) / (1 << 53)
	return float32(std * math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2))
}

func f32Tensor(name string, shape []int64, vals []float32) *format.Tensor {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return &format.Tensor{Name: name, DType: format.F32, Shape: shape, Data: b}
}

func randTensor(r *rng, name string, std float64, shape ...int64) *format.Tensor {
	n, _ := format.NumElements(shape)
	v := make([]float32, n)
	for i := range v {
		v[i] = r.normal(std)
	}
	return f32Tensor(name, shape, v)
}

// smallModel describes a random Llama-family model written by writeModel.
type smallModel struct {
	modelType               string
	hidden, ff, layers      int
	heads, kvHeads, headDim int
	vocab                   int
	tied, bias, qkNorm      bool
	extra                   map[string]any // more config.json keys
}

// writeModel writes a HF folder with random weights large enough that
// attention and every projection change the next-token distribution.
func writeModel(t *testing.T, dir string, s smallModel, seed uint64) {
	t.Helper()
	r := rng(seed)
	D, F, V := int64(s.hidden), int64(s.ff), int64(s.vocab)
	qd, kvd := int64(s.heads*s.headDim), int64(s.kvHeads*s.headDim)
	ts := []*format.Tensor{randTensor(&r, "model.embed_tokens.weight", 1, V, D)}
	norm := func(name string, n int64) *format.Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1 + r.normal(0.2)
		}
		return f32Tensor(name, []int64{n}, v)
	}
	for l := 0; l < s.layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts, norm(p+"input_layernorm.weight", D),
			randTensor(&r, p+"self_attn.q_proj.weight", 2/math.Sqrt(float64(D)), qd, D),
			randTensor(&r, p+"self_attn.k_proj.weight", 2/math.Sqrt(float64(D)), kvd, D),
			randTensor(&r, p+"self_attn.v_proj.weight", 1/math.Sqrt(float64(D)), kvd, D),
			randTensor(&r, p+"self_attn.o_proj.weight", 1/math.Sqrt(float64(qd)), D, qd))
		if s.bias {
			ts = append(ts, randTensor(&r, p+"self_attn.q_proj.bias", 0.3, qd),
				randTensor(&r, p+"self_attn.k_proj.bias", 0.3, kvd),
				randTensor(&r, p+"self_attn.v_proj.bias", 0.3, kvd))
		}
		if s.qkNorm {
			ts = append(ts, norm(p+"self_attn.q_norm.weight", int64(s.headDim)), norm(p+"self_attn.k_norm.weight", int64(s.headDim)))
		}
		ts = append(ts, norm(p+"post_attention_layernorm.weight", D),
			randTensor(&r, p+"mlp.gate_proj.weight", 1/math.Sqrt(float64(D)), F, D),
			randTensor(&r, p+"mlp.up_proj.weight", 1/math.Sqrt(float64(D)), F, D),
			randTensor(&r, p+"mlp.down_proj.weight", 1/math.Sqrt(float64(F)), D, F))
	}
	ts = append(ts, norm("model.norm.weight", D))
	if !s.tied {
		ts = append(ts, randTensor(&r, "lm_head.weight", 1/math.Sqrt(float64(D)), V, D))
	}
	cfg := map[string]any{
		"architectures": []string{"X"}, "model_type": s.modelType, "hidden_act": "silu",
		"hidden_size": s.hidden, "intermediate_size": s.ff, "num_hidden_layers": s.layers,
		"num_attention_heads": s.heads, "num_key_value_heads": s.kvHeads, "head_dim": s.headDim,
		"vocab_size": s.vocab, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
		"rope_theta": 10000.0, "tie_word_embeddings": s.tied, "torch_dtype": "float32",
	}
	for k, v := range s.extra {
		cfg[k] = v
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cb, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cb, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(context.Background(), filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

// loraSpec is a random PEFT LoRA adapter for writeAdapter.
type loraSpec struct {
	rank     int
	alpha    float64
	rslora   bool
	targets  []string
	rankPat  map[string]int
	alphaPat map[string]float64
}

// writeAdapter writes a PEFT LoRA folder for a model with the given layers,
// in/out sizes looked up from the base folder's weights.
func writeAdapter(t *testing.T, dir, base string, s loraSpec, seed uint64) {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(base, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := peft.NewLoRAConfig()
	cfg.R, cfg.LoraAlpha, cfg.UseRSLoRA = s.rank, s.alpha, s.rslora
	cfg.TargetModules = peft.ModuleList(s.targets...)
	cfg.TaskType = "CAUSAL_LM"
	for k, v := range s.rankPat {
		cfg.RankPattern = append(cfg.RankPattern, peft.Pattern{Key: k, Value: float64(v)})
	}
	for k, v := range s.alphaPat {
		cfg.AlphaPattern = append(cfg.AlphaPattern, peft.Pattern{Key: k, Value: v})
	}
	r := rng(seed)
	var ts []*format.Tensor
	for _, ti := range f.Infos() {
		mod := strings.TrimSuffix(ti.Name, ".weight")
		if len(ti.Shape) != 2 || mod == ti.Name {
			continue
		}
		match := false
		for _, tg := range s.targets {
			match = match || strings.HasSuffix(mod, "."+tg)
		}
		if !match {
			continue
		}
		ms, err := cfg.ScaleOf(mod)
		if err != nil {
			t.Fatal(err)
		}
		rk := int64(ms.Rank)
		out, in := ti.Shape[0], ti.Shape[1]
		ts = append(ts,
			randTensor(&r, "base_model.model."+mod+".lora_A.weight", 1/math.Sqrt(float64(in)), rk, in),
			randTensor(&r, "base_model.model."+mod+".lora_B.weight", 0.3/math.Sqrt(float64(rk)), out, rk))
	}
	if err := peft.Write(context.Background(), dir, cfg, ts, true); err != nil {
		t.Fatal(err)
	}
}
