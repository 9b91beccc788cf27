package train

import (
	"context"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/deltactl/deltactl/format/safetensors"
	"math"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/kernels"
)

// to16 rounds m's matrices to dt (BF16 or F16) and moves them to
// Weights16, as loading a BF16/F16 model folder leaves them, and returns
// the float32-copy model: the same values widened into Weights.
func to16(t *testing.T, m *Model, dt format.DType) (wide *Model) {
	t.Helper()
	wide = &Model{Config: m.Config, ConfigJSON: m.ConfigJSON, Weights: map[string][]float32{}, DType: dt, Source: m.Source}
	m.DType = dt
	for name, v := range m.Weights {
		shape := []int64{int64(len(v))}
		for _, ws := range m.Config.weightSpecs() {
			if ws.name == name {
				shape = ws.shape
			}
		}
		if !keeps16(name, shape, dt) {
			wide.Weights[name] = v
			continue
		}
		b := Bits16{DType: dt, Bits: make([]uint16, len(v))}
		if dt == format.F16 {
			kernels.F32ToF16(b.Bits, v)
		} else {
			kernels.F32ToBF16(b.Bits, v)
		}
		if m.Weights16 == nil {
			m.Weights16 = map[string]Bits16{}
		}
		m.Weights16[name] = b
		delete(m.Weights, name)
		wide.Weights[name] = b.widen()
	}
	if len(m.Weights16) == 0 {
		t.Fatal("no matrix moved to Weights16")
	}
	return wide
}

// TestFrozen16SameBits checks that a LoRA or adapter step on a model held
// in BF16 or F16 (frozen products through kernels.SgemmB16, no float32
// copy) gives the loss and gradients of the same step on the float32 copy
// of its weights bit for bit, on one and two threads, tied and untied, and
// that the nets hold no float32 copy of a frozen matrix.
func TestFrozen16SameBits(t *testing.T) {
	for _, tied := range []bool{false, true} {
		cfg := Config{ModelType: "llama", HiddenSize: 64, IntermediateSize: 96, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, VocabSize: 256, MaxPositions: 16, RMSNormEps: 1e-5, RopeTheta: 10000, InitializerRange: 0.02, TieWordEmbeddings: tied}
		for _, dt := range []format.DType{format.BF16, format.F16} {
			for _, method := range []format.Method{format.MethodLoRA, format.MethodAdapter} {
				for _, threads := range []int{1, 2} {
					o := DefaultOptions()
					o.Method, o.Batch, o.Seq, o.Threads = method, 4, 16, threads
					o.LoRA = LoRAOptions{Rank: 4, Alpha: 8, Targets: []string{"q_proj", "k_proj", "v_proj", "o_proj", "down_proj"}}
					o.Adapter.Size = 8
					n := o.Batch * o.Seq
					tok, tgt := randomTokens(n, 7), randomTokens(n, 77)
					fill := func(i, j int) float32 { return float32(math.Cos(float64(i*71+j))) * 0.05 }
					m := NewRandomModel(cfg, cfg.JSON(), 5, "test")
					wide := to16(t, m, dt)
					want, lw, _ := replicaStepOn(t, wide, o, fill, tok, tgt, 1/float64(n))
					got, lg, r := replicaStepOn(t, m, o, fill, tok, tgt, 1/float64(n))
					name := string(method) + "/" + dt.String()
					for _, nt := range r.nets {
						if nt.embed != nil || nt.lmHead != nil || nt.embed16.bits == nil || nt.lm16.bits == nil {
							t.Fatalf("%s: embeddings or lm_head held in float32", name)
						}
						for _, b := range nt.blocks {
							for _, l := range []*linear[float32]{&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down} {
								if l.w != nil || &l.h.bits[0] != &m.Weights16[l.name+".weight"].Bits[0] {
									t.Fatalf("%s: %s not held once in %s", name, l.name, dt)
								}
							}
						}
					}
					if math.Float64bits(lg) != math.Float64bits(lw) {
						t.Fatalf("%s/%d threads: loss %v from %s, %v from the float32 copy", name, threads, lg, dt, lw)
					}
					for i := range want {
						for j := range want[i].g {
							if math.Float32bits(got[i].g[j]) != math.Float32bits(want[i].g[j]) {
								t.Fatalf("%s/%d threads: %s[%d]: gradient %v from %s, %v from the float32 copy", name, threads, want[i].name, j, got[i].g[j], dt, want[i].g[j])
							}
						}
					}
				}
			}
		}
	}
}

// TestLoadModelKeeps16 checks that LoadModel keeps a BF16 folder's
// matrices as BF16 (norms as float32), that a LoRA run on it writes the
// same bytes as one on the float32 copy of its weights, and that Close
// releases it.
func TestLoadModelKeeps16(t *testing.T) {
	ctx := context.Background()
	src := smallModel(t)
	dir := t.TempDir()
	var ts []*format.Tensor
	for _, ws := range src.Config.weightSpecs() {
		v, ok := src.Weights[ws.name]
		if !ok {
			continue
		}
		tn, err := format.FromFloat32(ws.name, format.BF16, ws.shape, v)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tn)
	}
	if err := safetensors.WriteFile(ctx, filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), src.ConfigJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(ctx, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	matrices := 2 + 7*src.Config.NumLayers // embeddings, lm_head, projections
	if _, ok := m.Weights16["model.layers.1.mlp.down_proj.weight"]; !ok || len(m.Weights16) != matrices {
		t.Fatalf("%d matrices kept as BF16, want %d", len(m.Weights16), matrices)
	}
	if _, ok := m.Weights["model.norm.weight"]; !ok || m.closer == nil {
		t.Fatal("norm not widened, or the folder not kept mapped")
	}
	wide := &Model{Config: m.Config, ConfigJSON: m.ConfigJSON, Weights: map[string][]float32{}, DType: m.DType, Source: m.Source}
	for name := range m.Weights {
		wide.Weights[name], _ = m.Float32s(name)
	}
	for name := range m.Weights16 {
		wide.Weights[name], _ = m.Float32s(name)
	}
	data := shakespeare(t, 20000)
	o := DefaultOptions()
	o.Steps, o.Batch, o.Seq, o.Threads = 3, 4, 32, 2
	o.LoRA.Targets = LoRATargets
	files := map[bool]map[string][]byte{}
	for _, keep := range []bool{true, false} {
		o.Out = filepath.Join(t.TempDir(), "out")
		mm := m
		if !keep {
			mm = wide
		}
		if _, err := Train(ctx, mm, data, data, o); err != nil {
			t.Fatal(err)
		}
		files[keep] = runFiles(t, o.Out)
	}
	sameFiles(t, files[true], files[false], "BF16 held vs float32 copy")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.Weights16 != nil {
		t.Fatal("Close left Weights16 pointing into the unmapped file")
	}
}

// TestBits16Of checks that 16-bit tensor data is aliased only when asked
// and aligned, copied otherwise, with the same values either way.
func TestBits16Of(t *testing.T) {
	buf := make([]byte, 9)
	for i := range buf {
		buf[i] = byte(i*37 + 1)
	}
	for _, tc := range []struct {
		off   int
		alias bool
	}{{0, true}, {1, true}, {0, false}} {
		data := buf[tc.off : tc.off+8]
		ts := &format.Tensor{Name: "w", DType: format.F16, Shape: []int64{2, 2}, Data: data}
		b, err := bits16Of(ts, tc.alias)
		if err != nil {
			t.Fatal(err)
		}
		aliased := &b.Bits[0] == (*uint16)(unsafe.Pointer(&data[0]))
		if want := tc.alias && tc.off == 0 && littleEndian; aliased != want {
			t.Errorf("offset %d, alias %v: aliased %v, want %v", tc.off, tc.alias, aliased, want)
		}
		for i, v := range b.Bits {
			if w := uint16(data[2*i]) | uint16(data[2*i+1])<<8; v != w {
				t.Errorf("offset %d: element %d = %#x, want %#x", tc.off, i, v, w)
			}
		}
		if b.kernelType() != kernels.F16 {
			t.Errorf("F16 tensor multiplies as %v", b.kernelType())
		}
	}
}
