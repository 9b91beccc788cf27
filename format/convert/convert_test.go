package convert

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/format/torchpickle"
	"github.com/deltactl/deltactl/internal/testutil"
)

func TestTorchFileToSafetensors(t *testing.T) {
	for _, name := range []string{"float32.pt", "float16.pt", "bfloat16.pt", "state_dict.pt", "simple_legacy.pt"} {
		t.Run(name, func(t *testing.T) {
			src := testutil.SharedData(t, "pytorch_pickle/burn/"+name)
			dst := filepath.Join(t.TempDir(), "out.safetensors")
			if _, err := Path(context.Background(), src, dst, Options{}); err != nil {
				t.Fatal(err)
			}
			want, err := torchpickle.Load(src)
			if err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Open(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := f.Tensors()
			if err != nil {
				t.Fatal(err)
			}
			sameTensors(t, got, want.Tensors)
		})
	}
}

func TestLegacyPEFTFolder(t *testing.T) {
	src := testutil.SharedData(t, "adapters/peft_lora_opt-125m_regression_0.5.0_bin")
	dst := filepath.Join(t.TempDir(), "adapter")
	if _, err := Path(context.Background(), src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, peft.BinFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output still has %s (err %v)", peft.BinFile, err)
	}
	cfgIn, _ := os.ReadFile(filepath.Join(src, peft.ConfigFile))
	cfgOut, _ := os.ReadFile(filepath.Join(dst, peft.ConfigFile))
	if !bytes.Equal(cfgIn, cfgOut) {
		t.Error("adapter_config.json changed on the way")
	}
	in, err := peft.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	out, err := peft.Load(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if out.WeightsFile != peft.SafetensorsFile {
		t.Fatalf("output weights %s", out.WeightsFile)
	}
	sameTensors(t, out.Tensors, in.Tensors)
	// The converted adapter means the same thing: same targets and scales.
	dIn, err := in.Delta()
	if err != nil {
		t.Fatal(err)
	}
	dOut, err := out.Delta()
	if err != nil {
		t.Fatal(err)
	}
	if len(dIn.LoRA) != 24 || len(dOut.LoRA) != len(dIn.LoRA) {
		t.Fatalf("LoRA modules: in %d, out %d, want 24", len(dIn.LoRA), len(dOut.LoRA))
	}
	for i := range dIn.LoRA {
		if dIn.LoRA[i].Target != dOut.LoRA[i].Target || dIn.LoRA[i].Scale != dOut.LoRA[i].Scale {
			t.Errorf("module %d: %s/%g vs %s/%g", i, dIn.LoRA[i].Target, dIn.LoRA[i].Scale, dOut.LoRA[i].Target, dOut.LoRA[i].Scale)
		}
	}
}

func TestDTypeAndReshard(t *testing.T) {
	src := testutil.SharedData(t, "safetensors/fluxml-safetensors-jl/sharded")
	dst := filepath.Join(t.TempDir(), "bf16")
	if _, err := Path(context.Background(), src, dst, Options{DType: format.BF16, ShardSize: 1500}); err != nil {
		t.Fatal(err)
	}
	in, err := hf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := hf.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if len(out.Shards()) < 2 {
		t.Errorf("shards %v, want several of at most 1500 bytes", out.Shards())
	}
	for _, name := range in.Names() {
		a, _ := in.Tensor(name)
		b, err := out.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if !format.ShapeEqual(a.Shape, b.Shape) {
			t.Fatalf("%s: shape %v -> %v", name, a.Shape, b.Shape)
		}
		if !a.DType.IsFloat() {
			if b.DType != a.DType || !bytes.Equal(a.Data, b.Data) {
				t.Errorf("%s: non-float tensor changed (%s -> %s)", name, a.DType, b.DType)
			}
			continue
		}
		if b.DType != format.BF16 {
			t.Errorf("%s: dtype %s, want BF16", name, b.DType)
		}
		want, err := format.Convert(a, format.BF16)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want.Data, b.Data) {
			t.Errorf("%s: BF16 bytes differ from format.Convert", name)
		}
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good := testutil.SharedData(t, "pytorch_pickle/burn/float32.pt")

	existing := filepath.Join(dir, "exists.safetensors")
	os.WriteFile(existing, []byte("keep me"), 0o644)
	if _, err := Path(ctx, good, existing, Options{}); err == nil {
		t.Error("overwrote an existing file")
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Error("existing file changed")
	}
	if _, err := Path(ctx, good, filepath.Join(dir, "out.bin"), Options{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("non-safetensors destination: %v", err)
	}
	if _, err := Path(ctx, good, filepath.Join(dir, "x.safetensors"), Options{DType: format.I8}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("integer dtype: %v", err)
	}
	// A broken source leaves nothing behind.
	broken := testutil.SharedData(t, "pytorch_pickle/burn/broken.pt")
	dst := filepath.Join(dir, "broken.safetensors")
	if _, err := Path(ctx, broken, dst, Options{}); !errors.Is(err, torchpickle.ErrNotTorch) {
		t.Errorf("broken.pt: %v", err)
	}
	malformed := testutil.SharedData(t, "malformed/syoyo_safetensors_abuse_attempt_1.safetensors")
	if _, err := Path(ctx, malformed, dst, Options{DType: format.F16}); !errors.Is(err, safetensors.ErrInvalid) {
		t.Errorf("malformed: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}

func sameTensors(t *testing.T, got, want []*format.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.DType != w.DType || !format.ShapeEqual(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("tensor %d: got %s %s %v, want %s %s %v (data equal %v)", i, g.Name, g.DType, g.Shape, w.Name, w.DType, w.Shape, bytes.Equal(g.Data, w.Data))
		}
	}
}
