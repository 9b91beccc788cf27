package inspect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/internal/testutil"
)

// Every shared input of each kind inspects, with the tensor counts of ../shared/data/MANIFEST.md.
func TestSharedData(t *testing.T) {
	cases := []struct {
		rel     string
		kind    string
		tensors int
	}{
		{"safetensors/hf-safetensors-samples/overall.safetensors", KindSafetensors, 9},
		{"safetensors/hf-safetensors-samples/e_f16.safetensors", KindSafetensors, 1},
		{"safetensors/fluxml-safetensors-jl/non_sharded/model.safetensors", KindSafetensors, 36},
		{"safetensors/fluxml-safetensors-jl/sharded", KindHFModel, 36},
		{"safetensors/burn/mnist.safetensors", KindSafetensors, 20},
		{"safetensors/syoyo-safetensors-cpp/model_f64.safetensors", KindSafetensors, 2},
		{"models/lm-buddy-tiny_gpt2", KindHFModel, 16},
		{"adapters/trl_kto_lora_gpt2_final", KindPEFT, 24},
		{"adapters/peft_lora_roberta-base_mrpc_ckpt460", KindPEFT, 52},
		{"adapters/peft_lora_opt-125m_regression_0.5.0_bin", KindPEFT, 48},
		{"adapters/peft_ia3_mt0-large_seq2seq_bin", KindPEFT, 192},
		{"adapters/peft_unilora_roberta-base_mrpc", KindPEFT, 1},
		{"pytorch_pickle/burn/state_dict.pt", KindTorch, 4},
		{"pytorch_pickle/burn/simple_legacy.pt", KindTorch, -1},
		{"pytorch_pickle/burn/bfloat16.pt", KindTorch, 1},
	}
	for _, c := range cases {
		t.Run(c.rel, func(t *testing.T) {
			r, err := Path(testutil.SharedData(t, c.rel))
			if err != nil {
				t.Fatal(err)
			}
			if r.Format != c.kind {
				t.Errorf("format %q, want %q", r.Format, c.kind)
			}
			if c.tensors >= 0 && len(r.Tensors) != c.tensors {
				t.Errorf("%d tensors, want %d", len(r.Tensors), c.tensors)
			}
			var params, bytes int64
			for _, ts := range r.Tensors {
				n, _ := format.NumElements(ts.Shape)
				params += n
				bytes += n * int64(ts.DType.Size())
			}
			if params != r.Parameters || bytes != r.Bytes {
				t.Errorf("parameters %d bytes %d, tensors add up to %d and %d", r.Parameters, r.Bytes, params, bytes)
			}
			if (c.kind == KindPEFT) != (r.Adapter != nil) {
				t.Errorf("adapter summary present: %v", r.Adapter != nil)
			}
		})
	}
}

func TestTorchFolder(t *testing.T) {
	dir := t.TempDir()
	src := testutil.SharedData(t, "pytorch_pickle/burn/state_dict.pt")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), b, 0o644)
	r, err := Path(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != KindHFModel || len(r.Tensors) != 4 || r.Parameters != 21 {
		t.Errorf("report %+v", r)
	}
}

func TestAdapterSummary(t *testing.T) {
	r, err := Path(testutil.SharedData(t, "adapters/peft_lora_roberta-base_mrpc_ckpt460"))
	if err != nil {
		t.Fatal(err)
	}
	a := r.Adapter
	if a.PeftType != "LORA" || a.R != 8 || a.LoraAlpha != 16 || a.FanInFanOut || a.UseRSLoRA {
		t.Fatalf("summary %+v", a)
	}
	var lora int
	for _, tg := range a.Targets {
		if tg.Kind == "lora" {
			lora++
			if tg.Scale != 2 {
				t.Errorf("%s: scale %g, want alpha/r = 2", tg.Target, tg.Scale)
			}
		}
	}
	if lora != 24 {
		t.Errorf("%d LoRA targets, want 24 (query, value x 12 layers)", lora)
	}
	if r.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", r.Metadata)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Path(testutil.SharedData(t, "malformed/syoyo_safetensors_abuse_attempt_1.safetensors")); err == nil || !strings.Contains(err.Error(), "syoyo_safetensors_abuse_attempt_1") {
		t.Errorf("malformed: %v", err)
	}
	if _, err := Path(testutil.SharedData(t, "pytorch_pickle/burn/broken.pt")); err == nil {
		t.Error("broken.pt inspected")
	}
	if _, err := Path(testutil.SharedData(t, "adapters/mlx_lora_minicpm-2b")); !errors.Is(err, peft.ErrNotPEFT) {
		t.Errorf("MLX adapter: %v", err)
	}
	dir := t.TempDir()
	if _, err := Path(dir); !errors.Is(err, ErrUnrecognized) {
		t.Errorf("empty folder: %v", err)
	}
	txt := filepath.Join(dir, "notes.txt")
	os.WriteFile(txt, []byte("hi"), 0o644)
	if _, err := Path(txt); !errors.Is(err, ErrUnrecognized) {
		t.Errorf("text file: %v", err)
	}
}
