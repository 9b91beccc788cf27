package peft

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
)

// bottleneckTensors is a two-layer adapter set of size m on hidden size d,
// in the order the trainer writes it.
func bottleneckTensors(layers, m, d int, places ...string) []*format.Tensor {
	var ts []*format.Tensor
	for l := range layers {
		for pi, p := range places {
			pre := "model.layers." + string(rune('0'+l)) + "." + p
			seed := float32(l*2 + pi + 1)
			ts = append(ts,
				f32Tensor(pre+".down.weight", []int64{int64(m), int64(d)}, func(i int) float32 { return seed * float32(i%5) / 7 }),
				f32Tensor(pre+".down.bias", []int64{int64(m)}, func(i int) float32 { return -seed / float32(i+3) }),
				f32Tensor(pre+".up.weight", []int64{int64(d), int64(m)}, func(i int) float32 { return float32(i%3) / seed }),
				f32Tensor(pre+".up.bias", []int64{int64(d)}, func(i int) float32 { return seed / 100 }))
		}
	}
	return ts
}

func writeBottleneck(t *testing.T, bc BottleneckConfig, ts []*format.Tensor) string {
	t.Helper()
	cfg, err := NewBottleneckConfig(bc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TaskType, cfg.BaseModelNameOrPath = "CAUSAL_LM", "testdata/tinyllama"
	dir := filepath.Join(t.TempDir(), "ad")
	if err := Write(t.Context(), dir, cfg, ts, true); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A folder written with NewBottleneckConfig + Write loads back as one
// format.Adapter per placement, with the tensors' bytes, the activation
// and the placements intact, and a Summary naming each adapter.
func TestBottleneckRoundTrip(t *testing.T) {
	ts := bottleneckTensors(2, 3, 8, PlacementAttn, PlacementMLP)
	bc := BottleneckConfig{Size: 3, Act: "gelu", Placements: []string{PlacementAttn, PlacementMLP}, HiddenSize: 8, NumLayers: 2}
	dir := writeBottleneck(t, bc, ts)
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m["peft_type"] != PeftTypeBottleneck || m["adapter_size"] != 3.0 || m["adapter_act"] != "gelu" || m["hidden_size"] != 8.0 {
		t.Fatalf("config: %s", raw)
	}
	for _, k := range []string{"r", "lora_alpha", "target_modules"} {
		if _, ok := m[k]; ok {
			t.Errorf("bottleneck config carries LoRA field %q: %s", k, raw)
		}
	}
	// The same config renders to the same bytes (the trainer's output must
	// be deterministic).
	again, _ := os.ReadFile(filepath.Join(writeBottleneck(t, bc, ts), ConfigFile))
	if !bytes.Equal(raw, again) {
		t.Errorf("config bytes differ between two writes:\n%s\n%s", raw, again)
	}

	a := loadDir(t, dir)
	got, err := a.Config.Bottleneck()
	if err != nil || got.Size != 3 || got.Act != "gelu" || len(got.Placements) != 2 || got.NumLayers != 2 {
		t.Fatalf("Bottleneck() = %+v, %v", got, err)
	}
	d := delta(t, a)
	if d.Method != "adapter" || len(d.Adapters) != 4 || len(d.LoRA)+len(d.IA3)+len(d.Replace) != 0 {
		t.Fatalf("delta %+v", d)
	}
	want := []string{"model.layers.0.attn_adapter", "model.layers.0.mlp_adapter", "model.layers.1.attn_adapter", "model.layers.1.mlp_adapter"}
	for i, ad := range d.Adapters {
		if ad.Placement != want[i] || ad.Act != "gelu" {
			t.Errorf("adapter %d: %q %q", i, ad.Placement, ad.Act)
		}
		for j, x := range []*format.Tensor{ad.Down, ad.DownBias, ad.Up, ad.UpBias} {
			if x == nil || !bytes.Equal(x.Data, ts[4*i+j].Data) || !format.ShapeEqual(x.Shape, ts[4*i+j].Shape) {
				t.Errorf("adapter %s: tensor %d differs from %s", ad.Placement, j, ts[4*i+j].Name)
			}
		}
	}
	s, err := a.Summary()
	if err != nil {
		t.Fatal(err)
	}
	if s.PeftType != PeftTypeBottleneck || s.AdapterSize != 3 || s.AdapterAct != "gelu" || s.Unsupported != "" || len(s.Targets) != 4 {
		t.Fatalf("summary %+v", s)
	}
	if tg := s.Targets[3]; tg.Kind != "adapter" || tg.Target != want[3] || tg.Rank != 3 {
		t.Errorf("summary target %+v", tg)
	}
	// An adapter delta has no PEFT form.
	if _, _, err := FromDelta(d, "x"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("FromDelta(adapter delta) = %v, want ErrUnsupported", err)
	}
}

// Biases are optional, a PEFT-style prefix is accepted, and a config
// without "placements" means both.
func TestBottleneckOptionalParts(t *testing.T) {
	ts := bottleneckTensors(1, 2, 4, PlacementMLP)
	ts = []*format.Tensor{ts[0], ts[2]} // down.weight, up.weight only
	ts[0].Name = basePrefix + ts[0].Name
	cfg, err := ParseConfig([]byte(`{"peft_type":"BOTTLENECK","adapter_size":2,"adapter_act":"relu"}`))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ad")
	if err := Write(t.Context(), dir, cfg, ts, true); err != nil {
		t.Fatal(err)
	}
	d := delta(t, loadDir(t, dir))
	if len(d.Adapters) != 1 || d.Adapters[0].Placement != "model.layers.0.mlp_adapter" || d.Adapters[0].DownBias != nil || d.Adapters[0].UpBias != nil || d.Adapters[0].Act != "relu" {
		t.Fatalf("adapters %+v", d.Adapters)
	}
}

// Every way a bottleneck folder can be wrong is refused with ErrInvalid
// and a message naming the tensor or field at fault.
func TestBottleneckErrors(t *testing.T) {
	base := BottleneckConfig{Size: 2, Act: "silu", Placements: []string{PlacementAttn, PlacementMLP}, HiddenSize: 4}
	good := func() []*format.Tensor { return bottleneckTensors(1, 2, 4, PlacementAttn) }
	cases := []struct {
		name string
		bc   BottleneckConfig
		edit func([]*format.Tensor) []*format.Tensor
		want string
	}{
		{"size mismatch", BottleneckConfig{Size: 3, Act: "silu"}, nil, "adapter_size is 3"},
		{"hidden mismatch", BottleneckConfig{Size: 2, Act: "silu", HiddenSize: 5}, nil, "hidden_size is 5"},
		{"placement not configured", BottleneckConfig{Size: 2, Act: "silu", Placements: []string{PlacementMLP}}, nil, "placement"},
		{"missing up", base, func(ts []*format.Tensor) []*format.Tensor { return ts[:2] }, "has no up.weight"},
		{"missing down", base, func(ts []*format.Tensor) []*format.Tensor { return ts[1:] }, "has no down.weight"},
		{"up shape", base, func(ts []*format.Tensor) []*format.Tensor {
			ts[2] = f32Tensor(ts[2].Name, []int64{2, 4}, func(int) float32 { return 0 })
			return ts
		}, "up.weight"},
		{"bias shape", base, func(ts []*format.Tensor) []*format.Tensor {
			ts[3] = f32Tensor(ts[3].Name, []int64{2}, func(int) float32 { return 0 })
			return ts
		}, "up.bias"},
		{"down 1-D", base, func(ts []*format.Tensor) []*format.Tensor {
			ts[0] = f32Tensor(ts[0].Name, []int64{8}, func(int) float32 { return 0 })
			return ts
		}, "down.weight"},
		{"foreign key", base, func(ts []*format.Tensor) []*format.Tensor {
			return append(ts, f32Tensor("model.layers.0.self_attn.q_proj.weight", []int64{4, 4}, func(int) float32 { return 0 }))
		}, "not a bottleneck adapter tensor"},
		{"int dtype", base, func(ts []*format.Tensor) []*format.Tensor {
			ts[1] = &format.Tensor{Name: ts[1].Name, DType: format.I32, Shape: []int64{2}, Data: make([]byte, 8)}
			return ts
		}, "want a float"},
		{"no tensors", base, func([]*format.Tensor) []*format.Tensor { return nil }, "no adapter tensors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := good()
			if c.edit != nil {
				ts = c.edit(ts)
			}
			// Written through a raw config so the invalid ones can be built.
			raw, _ := json.Marshal(map[string]any{"peft_type": "BOTTLENECK", "adapter_size": c.bc.Size, "adapter_act": c.bc.Act,
				"hidden_size": c.bc.HiddenSize, "placements": c.bc.Placements})
			if c.bc.Placements == nil {
				raw, _ = json.Marshal(map[string]any{"peft_type": "BOTTLENECK", "adapter_size": c.bc.Size, "adapter_act": c.bc.Act, "hidden_size": c.bc.HiddenSize})
			}
			cfg, err := ParseConfig(raw)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "ad")
			if err := Write(t.Context(), dir, cfg, ts, true); err != nil {
				t.Fatal(err)
			}
			a := loadDir(t, dir)
			_, err = a.Delta()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Delta() = %v, want ErrInvalid mentioning %q", err, c.want)
			}
			if _, err := a.Summary(); err == nil {
				t.Errorf("Summary of an invalid adapter succeeded")
			}
		})
	}
	for _, bc := range []BottleneckConfig{{Size: 2, Act: "tanh"}, {Size: 0, Act: "relu"}, {Size: 2, Act: "relu", Placements: []string{"mlp"}}} {
		if _, err := NewBottleneckConfig(bc); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewBottleneckConfig(%+v) = %v, want ErrInvalid", bc, err)
		}
	}
	lora := NewLoRAConfig()
	if _, err := lora.Bottleneck(); !errors.Is(err, ErrInvalid) {
		t.Errorf("LoRA config Bottleneck() = %v", err)
	}
}

// FuzzBottleneckConfig: any adapter_config.json either fails to parse or
// to validate with an error, or yields a BottleneckConfig that
// NewBottleneckConfig renders back to an equal config.
func FuzzBottleneckConfig(f *testing.F) {
	for _, s := range []string{
		`{"peft_type":"BOTTLENECK","adapter_size":16,"adapter_act":"relu","placements":["attn_adapter","mlp_adapter"],"hidden_size":192,"num_hidden_layers":4}`,
		`{"peft_type":"BOTTLENECK","adapter_size":2,"adapter_act":"gelu"}`,
		`{"peft_type":"BOTTLENECK","adapter_size":-1,"adapter_act":"silu","placements":null}`,
		`{"peft_type":"BOTTLENECK","adapter_size":1.5,"adapter_act":7,"placements":"mlp_adapter"}`,
		`{"peft_type":"LORA","r":8}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		bc, err := c.Bottleneck()
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Bottleneck error %v does not wrap ErrInvalid", err)
			}
			return
		}
		c2, err := NewBottleneckConfig(bc)
		if err != nil {
			t.Fatalf("valid %+v refused by NewBottleneckConfig: %v", bc, err)
		}
		bc2, err := c2.Bottleneck()
		if err != nil || bc2.Size != bc.Size || bc2.Act != bc.Act || !slices.Equal(bc2.Placements, bc.Placements) ||
			bc2.HiddenSize != bc.HiddenSize || bc2.NumLayers != bc.NumLayers {
			t.Fatalf("round trip %+v -> %+v, %v", bc, bc2, err)
		}
	})
}
