package train

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// tinyConfig is a model small enough for finite differences in float64 yet
// with every feature: GQA (4 query heads on 2 key/value heads), odd sizes.
func tinyConfig(tied bool) Config {
	return Config{ModelType: "llama", HiddenSize: 12, IntermediateSize: 20, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, HeadDim: 4, VocabSize: 19, MaxPositions: 64,
		RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: tied, InitializerRange: 0.3}
}

// perturbModel makes the norm weights differ from one (so their gradients
// are tested in general position) and, with withBias, adds q/k/v biases.
func perturbModel(m *Model, withBias bool) {
	i := uint64(7)
	for name, v := range m.Weights {
		if len(name) > 11 && name[len(name)-11:] == "norm.weight" {
			for j := range v {
				i++
				v[j] = float32(1 + 0.3*normal(99, i))
			}
		}
	}
	if withBias {
		c := m.Config
		for l := 0; l < c.NumLayers; l++ {
			for _, p := range []struct {
				n string
				d int
			}{{"q_proj", c.qDim()}, {"k_proj", c.kvDim()}, {"v_proj", c.kvDim()}} {
				v := make([]float32, p.d)
				for j := range v {
					i++
					v[j] = float32(0.2 * normal(5, i))
				}
				m.Weights[fmt.Sprintf("model.layers.%d.self_attn.%s.bias", l, p.n)] = v
			}
		}
	}
}

func testBatch(B, T, V int) (tokens, targets []int32) {
	tokens = make([]int32, B*T)
	targets = make([]int32, B*T)
	for i := range tokens {
		tokens[i] = int32(splitmix64(uint64(i)) % uint64(V))
		targets[i] = int32(splitmix64(uint64(i)+1000) % uint64(V))
	}
	targets[1] = ignoreIndex // a masked position
	return
}

// lossOf runs forward + cross-entropy (mean) and, if grads, backward.
func lossOf(nt *net[float64], tokens, targets []int32, grads bool) float64 {
	return lossKeyed(nt, tokens, targets, grads, 0, grads)
}

// lossKeyed is lossOf with the forward pass in training mode (LoRA dropout
// on) under key when train is set.
func lossKeyed(nt *net[float64], tokens, targets []int32, train bool, key uint64, grads bool) float64 {
	nt.forwardHidden(tokens, train, key)
	count := 0
	for _, t := range targets {
		if t != ignoreIndex {
			count++
		}
	}
	gs := 0.0
	if grads {
		gs = 1 / float64(count)
	}
	s, _ := nt.headLoss(targets, gs, nil)
	if grads {
		nt.backward(tokens)
	}
	return s / float64(count)
}

// checkParams compares every parameter's analytic gradient with central
// finite differences on a sample of its entries.
func checkParams(t *testing.T, nt *net[float64], tokens, targets []int32) {
	t.Helper()
	checkGrads(t, nt, 7, func(grads bool) float64 { return lossOf(nt, tokens, targets, grads) })
}

// checkGrads compares the gradient loss(true) leaves in every parameter
// with central finite differences of loss(false) on every len/samples-th
// entry.
func checkGrads(t *testing.T, nt *net[float64], samples int, loss func(grads bool) float64) {
	t.Helper()
	nt.zeroGrads()
	loss(true)
	if len(nt.params) == 0 {
		t.Fatal("no parameters")
	}
	for _, p := range nt.params {
		g := append([]float64(nil), p.g...)
		for i := 0; i < len(p.w); i += max(1, len(p.w)/samples) {
			const h = 1e-6
			old := p.w[i]
			p.w[i] = old + h
			lp := loss(false)
			p.w[i] = old - h
			lm := loss(false)
			p.w[i] = old
			fd := (lp - lm) / (2 * h)
			if d := math.Abs(fd - g[i]); d > 1e-6*max(1, math.Abs(fd)) {
				t.Errorf("%s[%d]: analytic %.10g, finite difference %.10g", p.name, i, g[i], fd)
			}
		}
	}
}

func TestGradFull(t *testing.T) {
	for _, tied := range []bool{false, true} {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("tied=%v/threads=%d", tied, threads), func(t *testing.T) {
				m := NewRandomModel(tinyConfig(tied), nil, 1, "test")
				perturbModel(m, true)
				nt, err := newNet[float64](m, netSpec{B: 2, T: 5, threads: threads, grads: true, full: true}, goSgemm)
				if err != nil {
					t.Fatal(err)
				}
				tok, tgt := testBatch(2, 5, m.Config.VocabSize)
				checkParams(t, nt, tok, tgt)
			})
		}
	}
}

func TestGradLoRA(t *testing.T) {
	m := NewRandomModel(tinyConfig(false), nil, 2, "test")
	perturbModel(m, false)
	for _, dropout := range []float64{0, 0.3} {
		t.Run(fmt.Sprintf("dropout=%g", dropout), func(t *testing.T) {
			nt, err := newNet[float64](m, netSpec{B: 2, T: 5, threads: 2, grads: true}, goSgemm)
			if err != nil {
				t.Fatal(err)
			}
			for l := 0; l < 2; l++ {
				for ti, tg := range LoRATargets {
					lin := nt.blocks[l].linearByTarget(tg)
					r := 3
					a, b := make([]float32, r*lin.in), make([]float32, lin.out*r)
					kaimingUniform(a, lin.in, uint64(100*l+ti))
					kaimingUniform(b, r, uint64(1000+100*l+ti)) // nonzero B so A's gradient is not trivially zero
					if err := nt.attachLoRA(lin.name, r, 0.7, dropout, a, b, true); err != nil {
						t.Fatal(err)
					}
				}
			}
			tok, tgt := testBatch(2, 5, m.Config.VocabSize)
			// Dropout masks are fixed by the key; finite differences use the
			// same mask when forward runs in training mode with that key.
			if dropout > 0 {
				checkParamsKeyed(t, nt, tok, tgt, 12345)
			} else {
				checkParams(t, nt, tok, tgt)
			}
		})
	}
}

// checkParamsKeyed is checkParams with dropout active under a fixed key.
func checkParamsKeyed(t *testing.T, nt *net[float64], tokens, targets []int32, key uint64) {
	t.Helper()
	checkGrads(t, nt, 5, func(grads bool) float64 { return lossKeyed(nt, tokens, targets, true, key, grads) })
}

func TestGradAdapter(t *testing.T) {
	for _, act := range []string{"relu", "gelu", "silu"} {
		t.Run(act, func(t *testing.T) {
			m := NewRandomModel(tinyConfig(true), nil, 3, "test")
			perturbModel(m, false)
			nt, err := newNet[float64](m, netSpec{B: 2, T: 5, threads: 2, grads: true}, goSgemm)
			if err != nil {
				t.Fatal(err)
			}
			D, M := m.Config.HiddenSize, 5
			for l := 0; l < 2; l++ {
				for wi, where := range []string{placeAttn, placeMLP} {
					k := uint64(10*l + wi)
					down, up := make([]float32, M*D), make([]float32, D*M)
					bd, bu := make([]float32, M), make([]float32, D)
					kaimingUniform(down, D, k)
					kaimingUniform(up, M, k+100) // nonzero up: otherwise down's gradient is zero
					kaimingUniform(bd, 4, k+200)
					kaimingUniform(bu, 4, k+300)
					if err := nt.attachAdapter(l, where, M, act, down, bd, up, bu, true); err != nil {
						t.Fatal(err)
					}
				}
			}
			tok, tgt := testBatch(2, 5, m.Config.VocabSize)
			checkParams(t, nt, tok, tgt)
		})
	}
}

// archConfigs are tinyConfig variants for the architectures beyond plain
// Llama: Qwen3's q/k norms with a head_dim unrelated to hidden/heads, and
// the two RoPE scalings (with original_max_position_embeddings small enough
// that the test's positions cross every llama3 band).
func archConfigs() map[string]Config {
	qwen3 := tinyConfig(true)
	qwen3.ModelType, qwen3.QKNorm, qwen3.HeadDim = "qwen3", true, 6
	llama3 := tinyConfig(false)
	llama3.HeadDim = 8
	llama3.RopeScaling = &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 16}
	llama3.RopeTheta = 100
	linear := tinyConfig(false)
	linear.RopeScaling = &RopeScaling{Type: "linear", Factor: 4}
	return map[string]Config{"qwen3": qwen3, "llama3": llama3, "linear": linear}
}

func TestGradArch(t *testing.T) {
	for name, cfg := range archConfigs() {
		t.Run(name+"/full", func(t *testing.T) {
			m := NewRandomModel(cfg, nil, 4, "test")
			perturbModel(m, false)
			nt, err := newNet[float64](m, netSpec{B: 2, T: 5, threads: 2, grads: true, full: true}, goSgemm)
			if err != nil {
				t.Fatal(err)
			}
			tok, tgt := testBatch(2, 5, cfg.VocabSize)
			checkParams(t, nt, tok, tgt)
			if cfg.QKNorm {
				n := 0
				for _, p := range nt.params {
					if strings.HasSuffix(p.name, "q_norm.weight") || strings.HasSuffix(p.name, "k_norm.weight") {
						n++
					}
				}
				if n != 2*cfg.NumLayers {
					t.Fatalf("%d q/k norm parameters, want %d", n, 2*cfg.NumLayers)
				}
			}
		})
		t.Run(name+"/lora", func(t *testing.T) {
			m := NewRandomModel(cfg, nil, 5, "test")
			perturbModel(m, false)
			nt, err := newNet[float64](m, netSpec{B: 2, T: 5, threads: 2, grads: true}, goSgemm)
			if err != nil {
				t.Fatal(err)
			}
			for l := 0; l < cfg.NumLayers; l++ {
				for ti, tg := range []string{"q_proj", "k_proj", "v_proj"} {
					lin := nt.blocks[l].linearByTarget(tg)
					a, b := make([]float32, 2*lin.in), make([]float32, lin.out*2)
					kaimingUniform(a, lin.in, uint64(10*l+ti))
					kaimingUniform(b, 2, uint64(500+10*l+ti))
					if err := nt.attachLoRA(lin.name, 2, 0.9, 0, a, b, true); err != nil {
						t.Fatal(err)
					}
				}
			}
			tok, tgt := testBatch(2, 5, cfg.VocabSize)
			checkParams(t, nt, tok, tgt)
		})
	}
}
