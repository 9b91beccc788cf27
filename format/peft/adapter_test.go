package peft

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/internal/testutil"
)

func load(t *testing.T, rel string) *Adapter {
	t.Helper()
	a, err := Load(testutil.SharedData(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func delta(t *testing.T, a *Adapter) *format.Delta {
	t.Helper()
	d, err := a.Delta()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func checkLoRA(t *testing.T, l *format.LoRA, target string, a, b []int64, scale float64, fifo, emb bool) {
	t.Helper()
	if l.Target != target || !format.ShapeEqual(l.A.Shape, a) || !format.ShapeEqual(l.B.Shape, b) ||
		l.Scale != scale || l.FanInFanOut != fifo || l.Embedding != emb || l.A.DType != format.F32 || l.B.DType != format.F32 {
		t.Errorf("got %s A%v B%v scale %v fifo %v emb %v; want %s A%v B%v scale %v fifo %v emb %v",
			l.Target, l.A.Shape, l.B.Shape, l.Scale, l.FanInFanOut, l.Embedding, target, a, b, scale, fifo, emb)
	}
}

func TestGPT2KTO(t *testing.T) {
	for _, dir := range []string{"adapters/trl_kto_lora_gpt2_ckpt500", "adapters/trl_kto_lora_gpt2_final"} {
		a := load(t, dir)
		if a.WeightsFile != SafetensorsFile || len(a.Tensors) != 24 || a.Metadata["format"] != "pt" {
			t.Fatalf("%s: %s, %d tensors, metadata %v", dir, a.WeightsFile, len(a.Tensors), a.Metadata)
		}
		d := delta(t, a)
		if d.Method != "lora" || len(d.LoRA) != 12 || len(d.Replace) != 0 {
			t.Fatalf("%s: %s %d LoRA %d replace", dir, d.Method, len(d.LoRA), len(d.Replace))
		}
		// r=16, alpha=16: scale 1; GPT-2 Conv1D: fan_in_fan_out.
		checkLoRA(t, d.LoRA[0], "transformer.h.0.attn.c_attn.weight", []int64{16, 768}, []int64{2304, 16}, 1, true, false)
	}
}

func TestRoBERTaModulesToSave(t *testing.T) {
	a := load(t, "adapters/peft_lora_roberta-base_mrpc_ckpt460")
	d := delta(t, a)
	if len(d.LoRA) != 24 {
		t.Fatalf("%d LoRA, want 24 (12 layers x query,value)", len(d.LoRA))
	}
	for _, l := range d.LoRA {
		// r=8, alpha=16.
		if l.Scale != 2 || l.Rank() != 8 || l.FanInFanOut || !strings.HasPrefix(l.Target, "roberta.encoder.layer.") {
			t.Errorf("%s: scale %v rank %d", l.Target, l.Scale, l.Rank())
		}
	}
	want := map[string][]int64{
		"classifier.dense.weight": {768, 768}, "classifier.dense.bias": {768},
		"classifier.out_proj.weight": {2, 768}, "classifier.out_proj.bias": {2},
	}
	if len(d.Replace) != len(want) {
		t.Fatalf("%d replace tensors", len(d.Replace))
	}
	for _, r := range d.Replace {
		if !format.ShapeEqual(r.Shape, want[r.Name]) {
			t.Errorf("replace %s %v, want %v", r.Name, r.Shape, want[r.Name])
		}
	}
	s, err := a.Summary()
	if err != nil {
		t.Fatal(err)
	}
	if s.PeftType != "LORA" || s.R != 8 || s.LoraAlpha != 16 || len(s.Targets) != 28 || s.Targets[0].Scale != 2 || s.Targets[27].Kind != "replace" {
		t.Errorf("summary %+v", s)
	}
}

func TestLegacyBinAdapters(t *testing.T) {
	a := load(t, "adapters/peft_lora_opt-125m_regression_0.5.0_bin")
	if a.WeightsFile != BinFile {
		t.Fatal(a.WeightsFile)
	}
	d := delta(t, a)
	if len(d.LoRA) != 24 {
		t.Fatalf("%d LoRA", len(d.LoRA))
	}
	checkLoRA(t, d.LoRA[0], "model.decoder.layers.0.self_attn.v_proj.weight", []int64{8, 768}, []int64{768, 8}, 1, false, false)

	a = load(t, "adapters/peft_ia3_mt0-large_seq2seq_bin")
	d = delta(t, a)
	if d.Method != "ia3" || len(d.IA3) != 192 || len(d.LoRA) != 0 {
		t.Fatalf("%s: %d IA3", d.Method, len(d.IA3))
	}
	v := d.IA3[0]
	if v.Target != "encoder.block.0.layer.0.SelfAttention.k.weight" || v.FeedForward || !format.ShapeEqual(v.Vector.Shape, []int64{1024, 1}) {
		t.Errorf("IA3[0] = %s ff %v %v", v.Target, v.FeedForward, v.Vector.Shape)
	}
	// A trained IA3 vector starts at ones and moves: values near 1, not all 1.
	vals, _ := v.Vector.Float32s()
	moved := false
	for _, x := range vals {
		if math.Abs(float64(x)-1) > 0.5 {
			t.Fatalf("IA3 value %v far from 1", x)
		}
		moved = moved || x != 1
	}
	if !moved {
		t.Error("IA3 vector is all ones")
	}

	d = delta(t, load(t, "adapters/peft_regression_0.6.1_bin/lora_mlp"))
	checkLoRA(t, d.LoRA[0], "lin0.weight", []int64{8, 10}, []int64{20, 8}, 1, false, false)

	d = delta(t, load(t, "adapters/peft_regression_0.6.1_bin/lora_emb_conv1d"))
	if len(d.LoRA) != 2 {
		t.Fatalf("%d LoRA", len(d.LoRA))
	}
	// Embedding: A [r, num_embeddings], B [dim, r]; fan_in_fan_out applies
	// to the Conv1D only.
	checkLoRA(t, d.LoRA[0], "emb.weight", []int64{8, 100}, []int64{5, 8}, 1, false, true)
	checkLoRA(t, d.LoRA[1], "conv1d.weight", []int64{8, 5}, []int64{1, 8}, 1, true, false)

	d = delta(t, load(t, "adapters/peft_regression_0.6.1_bin/lora_conv2d"))
	checkLoRA(t, d.LoRA[0], "conv2d.weight", []int64{8, 5, 3, 3}, []int64{10, 8, 1, 1}, 1, false, false)
}

func TestNotPEFTAndUnsupported(t *testing.T) {
	_, err := Load(testutil.SharedData(t, "adapters/mlx_lora_minicpm-2b"))
	if !errors.Is(err, ErrNotPEFT) || !strings.Contains(err.Error(), "MLX") {
		t.Errorf("MLX adapter: %v", err)
	}
	_, err = Load(testutil.SharedData(t, "adapters"))
	if !errors.Is(err, ErrNotPEFT) {
		t.Errorf("folder without config: %v", err)
	}

	a := load(t, "adapters/peft_unilora_roberta-base_mrpc")
	if len(a.Tensors) != 1 || a.Tensors[0].Name != "base_model.unilora_theta_d" {
		t.Fatalf("UNILORA tensors: %d", len(a.Tensors))
	}
	_, err = a.Delta()
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `"UNILORA"`) {
		t.Errorf("UNILORA Delta: %v", err)
	}
	s, err := a.Summary()
	if err != nil || !strings.Contains(s.Unsupported, "UNILORA") || s.PeftType != "UNILORA" {
		t.Errorf("UNILORA summary %+v, %v", s, err)
	}
}
