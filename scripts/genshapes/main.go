// Command genshapes writes a Hugging Face Llama-family folder with the
// published shapes of a model and seeded random BF16 weights, for
// benchmarks (`make bench-train`): only the shapes and config are the real
// model's. It is the Go twin of ../shared/bench/gen_shapes.py, which needs
// numpy; the values differ (uniform, not normal, with the same std 0.02;
// norms near 1), the shapes and config.json do not. rope_scaling is left
// out: the trainer runs the Llama 3.x shapes with it off.
//
//	go run ./scripts/genshapes NAME OUT
//
// It also writes OUT/bench.jsonl, 64 records of 257 random token ids.
//
// NAME: smollm2-135m | llama-3.2-1b | llama-3.2-3b | llama-3.1-8b.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/kernels"
)

// shape is the part of a config.json that fixes the tensors.
type shape struct {
	Hidden, MLP, Layers, Heads, KVHeads, Vocab int
	Tied                                       bool
	RopeTheta                                  float64
}

// shapes are the published configs (each model's config.json).
var shapes = map[string]shape{
	"smollm2-135m": {576, 1536, 30, 9, 3, 49152, true, 100000},
	"llama-3.2-1b": {2048, 8192, 16, 32, 8, 128256, true, 500000},
	"llama-3.2-3b": {3072, 8192, 28, 24, 8, 128256, true, 500000},
	"llama-3.1-8b": {4096, 14336, 32, 32, 8, 128256, false, 500000},
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: genshapes smollm2-135m|llama-3.2-1b|llama-3.2-3b|llama-3.1-8b OUT")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "genshapes:", err)
		os.Exit(1)
	}
}

type tensor struct {
	name  string
	shape []int64
	norm  bool // ~1 instead of ~0
}

func run(name, out string) error {
	s, ok := shapes[name]
	if !ok {
		return fmt.Errorf("unknown shape %q", name)
	}
	D, F, V := int64(s.Hidden), int64(s.MLP), int64(s.Vocab)
	hd := D / int64(s.Heads)
	qd, kvd := int64(s.Heads)*hd, int64(s.KVHeads)*hd
	ts := []tensor{{name: "model.embed_tokens.weight", shape: []int64{V, D}}}
	for l := 0; l < s.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			tensor{name: p + "input_layernorm.weight", shape: []int64{D}, norm: true},
			tensor{name: p + "self_attn.q_proj.weight", shape: []int64{qd, D}},
			tensor{name: p + "self_attn.k_proj.weight", shape: []int64{kvd, D}},
			tensor{name: p + "self_attn.v_proj.weight", shape: []int64{kvd, D}},
			tensor{name: p + "self_attn.o_proj.weight", shape: []int64{D, qd}},
			tensor{name: p + "post_attention_layernorm.weight", shape: []int64{D}, norm: true},
			tensor{name: p + "mlp.gate_proj.weight", shape: []int64{F, D}},
			tensor{name: p + "mlp.up_proj.weight", shape: []int64{F, D}},
			tensor{name: p + "mlp.down_proj.weight", shape: []int64{D, F}})
	}
	ts = append(ts, tensor{name: "model.norm.weight", shape: []int64{D}, norm: true})
	if !s.Tied {
		ts = append(ts, tensor{name: "lm_head.weight", shape: []int64{V, D}})
	}
	plan := make([]safetensors.TensorInfo, len(ts))
	for i, t := range ts {
		plan[i] = safetensors.TensorInfo{Name: t.name, DType: format.BF16, Shape: t.shape}
	}
	w, err := hf.NewWriter(out, plan, 5<<30, map[string]string{"format": "pt"}, hf.WithForce())
	if err != nil {
		return err
	}
	for i, t := range ts {
		if err := w.WriteTensor(t.name, bytes.NewReader(values(t, uint64(i+1)))); err != nil {
			_ = w.Abort() // the write error is the one to report
			return err
		}
	}
	cfg, err := json.MarshalIndent(map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "hidden_act": "silu",
		"torch_dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 2,
		"hidden_size": s.Hidden, "intermediate_size": s.MLP, "num_hidden_layers": s.Layers,
		"num_attention_heads": s.Heads, "num_key_value_heads": s.KVHeads, "vocab_size": s.Vocab,
		"tie_word_embeddings": s.Tied, "rope_theta": s.RopeTheta, "rms_norm_eps": 1e-5,
		"max_position_embeddings": 131072, "initializer_range": 0.02,
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := w.AddFile(hf.ConfigName, bytes.NewReader(cfg)); err != nil {
		_ = w.Abort() // the write error is the one to report
		return err
	}
	if err := w.Commit(); err != nil {
		return err
	}
	if err := writeData(filepath.Join(out, "bench.jsonl"), s.Vocab); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%s)\n", filepath.Clean(out), name)
	return nil
}

// writeData writes 64 records of 257 random token ids (seq 256 + 1), the
// training data of the benchmark.
func writeData(path string, vocab int) error {
	var b bytes.Buffer
	for r := 0; r < 64; r++ {
		ids := make([]int, 257)
		for i := range ids {
			ids[i] = int(splitmix64(uint64(r)<<32+uint64(i)) % uint64(vocab))
		}
		line, err := json.Marshal(map[string][]int{"input_ids": ids})
		if err != nil {
			return err
		}
		b.Write(append(line, '\n'))
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// values returns t's BF16 bytes: uniform with std 0.02 (norms 1 ± 0.1·u)
// from a counter-based stream keyed by key.
func values(t tensor, key uint64) []byte {
	n := int64(1)
	for _, d := range t.shape {
		n *= d
	}
	f := make([]float32, n)
	a := 0.02 * math.Sqrt(3)
	for i := range f {
		u := float64(splitmix64(key<<40+uint64(i))>>11)/(1<<53)*2 - 1
		if t.norm {
			f[i] = float32(1 + 0.1*u)
		} else {
			f[i] = float32(a * u)
		}
	}
	h := make([]uint16, n)
	kernels.F32ToBF16(h, f)
	b := make([]byte, 2*n)
	for i, v := range h {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
