package gguf

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/kernels"
)

// HFResult summarises a GGUF -> Hugging Face conversion.
type HFResult struct {
	Tensors int
	Bytes   int64
}

// ToHF writes the GGUF model file src as a Hugging Face model folder dst:
// config.json from the architecture keys, model.safetensors with HF tensor
// names (q/k rows of the llama architecture permuted back to rotate-half
// order; F32, F16 and BF16 exactly, Q8_0 dequantized to F32), and, for a
// byte-level BPE vocabulary with a known pre-tokenizer, tokenizer.json and
// tokenizer_config.json. Exporting the folder again with the same type
// gives the same GGUF file byte for byte (F32, F16, BF16).
func ToHF(ctx context.Context, src, dst string) (*HFResult, error) {
	f, err := Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	md := f.Metadata
	if t, _ := md.String("general.type"); t == "adapter" {
		return nil, fmt.Errorf("gguf: %s: a LoRA adapter GGUF: %w (convert turns GGUF models into HF folders)", src, ErrUnsupported)
	}
	h, cfg, err := hparamsFromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", src, err)
	}
	files, err := tokenizerFiles(md, cfg)
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", src, err)
	}
	byGGUF := map[string]tensorMap{}
	for _, tm := range h.tensorMaps() {
		byGGUF[tm.gguf] = tm
	}
	var plan []safetensors.TensorInfo
	var srcs []TensorInfo
	for _, ti := range f.Tensors {
		if ti.Name == "rope_freqs.weight" {
			continue // derived from rope_scaling on export
		}
		tm, ok := byGGUF[ti.Name]
		if !ok {
			return nil, fmt.Errorf("gguf: %s: tensor %q has no Hugging Face name in the %s architecture: %w", src, ti.Name, h.Arch, ErrUnsupported)
		}
		dt := map[Type]format.DType{F32: format.F32, F16: format.F16, BF16: format.BF16, Q8_0: format.F32}[ti.Type]
		plan = append(plan, safetensors.TensorInfo{Name: tm.hf, DType: dt, Shape: ti.Shape})
		srcs = append(srcs, ti)
	}
	cfgBytes, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	w, err := hf.NewWriter(dst, plan, 0, map[string]string{"format": "pt"})
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer func() { _ = w.Abort() }() // no-op after Commit
	var total int64
	for i, ti := range srcs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r, err := hfTensor(f, ti, byGGUF[ti.Name].perm)
		if err != nil {
			return nil, fmt.Errorf("gguf: %s: %w", src, err)
		}
		if err := w.WriteTensor(plan[i].Name, r); err != nil {
			return nil, fmt.Errorf("gguf: %w", err)
		}
		n, _ := format.NumElements(plan[i].Shape)
		total += n * int64(plan[i].DType.Size())
	}
	if err := w.AddFile(hf.ConfigName, bytes.NewReader(append(cfgBytes, '\n'))); err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := w.AddFile(name, bytes.NewReader(files[name])); err != nil {
			return nil, fmt.Errorf("gguf: %w", err)
		}
	}
	if err := w.Commit(); err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return &HFResult{Tensors: len(plan), Bytes: total}, nil
}

// hfTensor reads one tensor as HF bytes: q/k rows back in rotate-half
// order, Q8_0 dequantized.
func hfTensor(f *File, ti TensorInfo, perm int) (io.Reader, error) {
	if perm == 0 && ti.Type != Q8_0 {
		return f.Section(ti), nil
	}
	raw, err := f.ReadData(ti)
	if err != nil {
		return nil, err
	}
	if ti.Type == Q8_0 {
		v := make([]float32, ti.Elements())
		kernels.DequantizeQ8_0(v, raw)
		raw = make([]byte, 4*len(v))
		kernels.F32ToF32Bytes(raw, v)
	}
	if perm == 0 {
		return bytes.NewReader(raw), nil
	}
	rows := int(ti.Shape[0])
	if rows%(2*perm) != 0 {
		return nil, fmt.Errorf("tensor %q has %d rows, not a multiple of 2×%d heads: %w", ti.Name, rows, perm, ErrInvalid)
	}
	rowBytes := len(raw) / rows
	out := make([]byte, len(raw))
	for i := 0; i < rows; i++ {
		// GGUF row i holds HF row permRow(i).
		j := permRow(i, rows, perm)
		copy(out[j*rowBytes:(j+1)*rowBytes], raw[i*rowBytes:(i+1)*rowBytes])
	}
	return bytes.NewReader(out), nil
}

// hparamsFromGGUF rebuilds the export's hyperparameters and a config.json
// that exports back to the same keys.
func hparamsFromGGUF(f *File) (*hparams, map[string]any, error) {
	md := f.Metadata
	arch, _ := md.String("general.architecture")
	mt := map[string]string{"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}[arch]
	if mt == "" {
		return nil, nil, fmt.Errorf("general.architecture %q: %w (deltactl converts llama, qwen2 and qwen3)", arch, ErrUnsupported)
	}
	var ropeScaling map[string]any
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		js, ok := md.String("deltactl.rope_scaling")
		if !ok {
			return nil, nil, fmt.Errorf("rope_freqs.weight (llama3 rope scaling) without deltactl.rope_scaling: %w: the rope_scaling parameters cannot be recovered from the frequencies", ErrUnsupported)
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(js)))
		dec.UseNumber()
		if err := dec.Decode(&ropeScaling); err != nil {
			return nil, nil, fmt.Errorf("deltactl.rope_scaling %q: %v: %w", js, err, ErrInvalid)
		}
	}
	a := arch + "."
	u := func(k string) (int, error) {
		v, ok := md.Uint(a + k)
		if !ok || v == 0 || v > 1<<31-1 {
			return 0, fmt.Errorf("%s%s missing or invalid: %w", a, k, ErrInvalid)
		}
		return int(v), nil
	}
	cfg := map[string]any{
		"architectures": []string{map[string]string{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[arch]},
		"model_type":    mt,
		"hidden_act":    "silu",
	}
	if n, ok := md.String("general.name"); ok {
		cfg["_name_or_path"] = n
	}
	for _, k := range []struct{ gguf, hf string }{
		{"block_count", "num_hidden_layers"}, {"context_length", "max_position_embeddings"},
		{"embedding_length", "hidden_size"}, {"feed_forward_length", "intermediate_size"},
		{"attention.head_count", "num_attention_heads"}, {"attention.head_count_kv", "num_key_value_heads"},
	} {
		v, err := u(k.gguf)
		if err != nil {
			return nil, nil, err
		}
		cfg[k.hf] = v
	}
	if v, ok := md.Uint(a + "attention.key_length"); ok {
		cfg["head_dim"] = v
	}
	vocab, ok := md.Uint(a + "vocab_size")
	if !ok {
		toks, _ := md.Strings("tokenizer.ggml.tokens")
		vocab = uint64(len(toks))
	}
	cfg["vocab_size"] = vocab
	for _, k := range []struct{ gguf, hf string }{{"rope.freq_base", "rope_theta"}, {"attention.layer_norm_rms_epsilon", "rms_norm_eps"}} {
		if v, ok := md.Float(a + k.gguf); ok {
			cfg[k.hf] = v
		}
	}
	if ropeScaling != nil {
		cfg["rope_scaling"] = ropeScaling
	}
	if t, _ := md.String(a + "rope.scaling.type"); t == "linear" {
		fac, _ := md.Float(a + "rope.scaling.factor")
		cfg["rope_scaling"] = map[string]any{"type": "linear", "factor": fac}
	} else if t != "" {
		return nil, nil, fmt.Errorf("%srope.scaling.type %q: %w", a, t, ErrUnsupported)
	}
	_, untied := f.Tensor("output.weight")
	cfg["tie_word_embeddings"] = !untied
	for _, k := range []string{"bos", "eos"} {
		if id, ok := md.Uint("tokenizer.ggml." + k + "_token_id"); ok {
			cfg[k+"_token_id"] = id
		}
	}
	cfg["torch_dtype"] = "float32"
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, nil, err
	}
	h, err := parseHParams(raw)
	if err != nil {
		return nil, nil, err
	}
	for _, v := range []float64{h.Theta, h.Eps} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil, fmt.Errorf("rope.freq_base / rms epsilon %v: %w", v, ErrInvalid)
		}
	}
	return h, cfg, nil
}
