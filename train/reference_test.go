package train

import (
	"context"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/internal/testutil"
)

// This file is an independent, deliberately naive float64 implementation of
// transformers' LlamaForCausalLM forward pass (with PEFT LoRA and the
// bottleneck adapters), written separately from the trainer's optimised
// layers: plain loops per position, per head, per element. There is no
// PyTorch on this machine, so it stands in for "an independent
// implementation of HF Llama" in the eval-loss check.

type refLoRA struct {
	a, b  []float64 // [r][in], [out][r]
	r     int
	scale float64
}

type refAdapter struct {
	down, bd, up, bu []float64
	m                int
	act              string
}

func f64s(t *testing.T, tn *format.Tensor) []float64 {
	t.Helper()
	if tn == nil {
		return nil
	}
	v, err := tn.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// refLinear computes y = W x (+ b) (+ LoRA) for one position.
func refLinear(w []float64, b []float64, out, in int, x []float64, lr *refLoRA) []float64 {
	y := make([]float64, out)
	for o := 0; o < out; o++ {
		s := 0.0
		for i := 0; i < in; i++ {
			s += w[o*in+i] * x[i]
		}
		if b != nil {
			s += b[o]
		}
		y[o] = s
	}
	if lr != nil {
		ax := make([]float64, lr.r)
		for r := 0; r < lr.r; r++ {
			for i := 0; i < in; i++ {
				ax[r] += lr.a[r*in+i] * x[i]
			}
		}
		for o := 0; o < out; o++ {
			s := 0.0
			for r := 0; r < lr.r; r++ {
				s += lr.b[o*lr.r+r] * ax[r]
			}
			y[o] += lr.scale * s
		}
	}
	return y
}

func refRMSNorm(x, w []float64, eps float64) []float64 {
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	r := 1 / math.Sqrt(ss/float64(len(x))+eps)
	y := make([]float64, len(x))
	for i := range x {
		y[i] = w[i] * x[i] * r
	}
	return y
}

func refAct(act string, x float64) float64 {
	switch act {
	case "relu":
		return math.Max(x, 0)
	case "gelu":
		return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
	}
	return x / (1 + math.Exp(-x))
}

func refApplyAdapter(ad *refAdapter, x []float64) []float64 {
	if ad == nil {
		return x
	}
	d := len(x)
	h := make([]float64, ad.m)
	for j := 0; j < ad.m; j++ {
		s := ad.bd[j]
		for i := 0; i < d; i++ {
			s += ad.down[j*d+i] * x[i]
		}
		h[j] = refAct(ad.act, s)
	}
	y := make([]float64, d)
	for i := 0; i < d; i++ {
		s := ad.bu[i]
		for j := 0; j < ad.m; j++ {
			s += ad.up[i*ad.m+j] * h[j]
		}
		y[i] = x[i] + s
	}
	return y
}

// refRope rotates one head vector at position pos (rotate-half).
func refRope(v []float64, pos int, theta float64) {
	hd := len(v)
	half := hd / 2
	for i := 0; i < half; i++ {
		ang := float64(pos) * math.Pow(theta, -float64(2*i)/float64(hd))
		c, s := math.Cos(ang), math.Sin(ang)
		a, b := v[i], v[i+half]
		v[i] = a*c - b*s
		v[i+half] = b*c + a*s
	}
}

// refSequenceLoss returns the summed cross-entropy of predicting seq[1:]
// from seq[:-1], and the number of predictions.
func refSequenceLoss(c Config, w map[string][]float64, loras map[string]*refLoRA, ads map[string]*refAdapter, seq []int32) (float64, int) {
	T := len(seq) - 1
	D, Fd, hd := c.HiddenSize, c.IntermediateSize, c.HeadDim
	qd, kvd := c.qDim(), c.kvDim()
	x := make([][]float64, T)
	for t := 0; t < T; t++ {
		x[t] = append([]float64(nil), w["model.embed_tokens.weight"][int(seq[t])*D:(int(seq[t])+1)*D]...)
	}
	for l := 0; l < c.NumLayers; l++ {
		p := "model.layers." + strconv.Itoa(l) + "."
		lin := func(name string, out, in int, v []float64) []float64 {
			return refLinear(w[p+name+".weight"], w[p+name+".bias"], out, in, v, loras[p+name])
		}
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := 0; t < T; t++ {
			h := refRMSNorm(x[t], w[p+"input_layernorm.weight"], c.RMSNormEps)
			qs[t], ks[t], vs[t] = lin("self_attn.q_proj", qd, D, h), lin("self_attn.k_proj", kvd, D, h), lin("self_attn.v_proj", kvd, D, h)
			for hh := 0; hh < c.NumHeads; hh++ {
				refRope(qs[t][hh*hd:(hh+1)*hd], t, c.RopeTheta)
			}
			for hh := 0; hh < c.NumKVHeads; hh++ {
				refRope(ks[t][hh*hd:(hh+1)*hd], t, c.RopeTheta)
			}
		}
		for t := 0; t < T; t++ {
			att := make([]float64, qd)
			for hh := 0; hh < c.NumHeads; hh++ {
				g := hh / (c.NumHeads / c.NumKVHeads)
				sc := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := 0; j <= t; j++ {
					s := 0.0
					for i := 0; i < hd; i++ {
						s += qs[t][hh*hd+i] * ks[j][g*hd+i]
					}
					sc[j] = s / math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[j])
				}
				z := 0.0
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					z += sc[j]
				}
				for j := range sc {
					for i := 0; i < hd; i++ {
						att[hh*hd+i] += sc[j] / z * vs[j][g*hd+i]
					}
				}
			}
			o := refApplyAdapter(ads[p+"attn_adapter"], lin("self_attn.o_proj", D, qd, att))
			for i := range x[t] {
				x[t][i] += o[i]
			}
			h := refRMSNorm(x[t], w[p+"post_attention_layernorm.weight"], c.RMSNormEps)
			gt, up := lin("mlp.gate_proj", Fd, D, h), lin("mlp.up_proj", Fd, D, h)
			for i := range gt {
				gt[i] = gt[i] / (1 + math.Exp(-gt[i])) * up[i]
			}
			mo := refApplyAdapter(ads[p+"mlp_adapter"], lin("mlp.down_proj", D, Fd, gt))
			for i := range x[t] {
				x[t][i] += mo[i]
			}
		}
	}
	head := w["lm_head.weight"]
	if c.TieWordEmbeddings {
		head = w["model.embed_tokens.weight"]
	}
	var loss float64
	for t := 0; t < T; t++ {
		h := refRMSNorm(x[t], w["model.norm.weight"], c.RMSNormEps)
		logits := refLinear(head, nil, c.VocabSize, D, h, nil)
		mx := math.Inf(-1)
		for _, v := range logits {
			mx = math.Max(mx, v)
		}
		z := 0.0
		for _, v := range logits {
			z += math.Exp(v - mx)
		}
		loss += mx + math.Log(z) - logits[seq[t+1]]
	}
	return loss, T
}

// TestEvalMatchesReference trains a LoRA and an adapter on the bundled tiny
// base with `Train`, reads them back from disk, and checks that Evaluate's
// loss equals the naive float64 reference to 1e-4 relative.
func TestEvalMatchesReference(t *testing.T) {
	ctx := context.Background()
	base := testutil.Testdata(t, "tinyllama")
	text, err := os.ReadFile(testutil.Testdata(t, "tinyllama/heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []format.Method{format.MethodLoRA, format.MethodAdapter} {
		t.Run(string(method), func(t *testing.T) {
			m, err := LoadModel(ctx, base, 0)
			if err != nil {
				t.Fatal(err)
			}
			train := &Dataset{Path: "heldout.txt", Kind: "text", Stream: bytesToTokens(text[:8000])}
			o := DefaultOptions()
			o.Method, o.Steps, o.Batch, o.Seq, o.Threads, o.LR = method, 4, 4, 64, 2, 1e-2
			o.LoRA.Targets = LoRATargets
			o.Adapter.Act = "gelu"
			o.Out = t.TempDir()
			if _, err := Train(ctx, m, train, nil, o); err != nil {
				t.Fatal(err)
			}
			delta, err := ReadDelta(ctx, o.Out)
			if err != nil {
				t.Fatal(err)
			}
			evalText := bytesToTokens(text[10000 : 10000+3*48+1])
			ev := &Dataset{Path: "eval", Kind: "text", Stream: evalText}
			got, err := Evaluate(ctx, m, delta, ev, EvalOptions{Threads: 2, Batch: 2, Seq: 48})
			if err != nil {
				t.Fatal(err)
			}
			// Reference on the same windows, from the weights on disk.
			w := map[string][]float64{}
			names := slices.Collect(maps.Keys(m.Weights))
			for k := range m.Weights16 { // a BF16 base: its matrices are kept in BF16
				names = append(names, k)
			}
			for _, k := range names {
				v, _ := m.Float32s(k)
				f := make([]float64, len(v))
				for i, x := range v {
					f[i] = float64(x)
				}
				w[k] = f
			}
			loras, ads := map[string]*refLoRA{}, map[string]*refAdapter{}
			for _, l := range delta.LoRA {
				loras[strings.TrimSuffix(l.Target, ".weight")] = &refLoRA{a: f64s(t, l.A), b: f64s(t, l.B), r: l.Rank(), scale: l.Scale}
			}
			for _, a := range delta.Adapters {
				ads[a.Placement] = &refAdapter{down: f64s(t, a.Down), bd: f64s(t, a.DownBias), up: f64s(t, a.Up), bu: f64s(t, a.UpBias), m: int(a.Down.Shape[0]), act: a.Act}
			}
			var sum float64
			var n int
			for o := 0; o+1 < len(evalText); o += 48 {
				s, c := refSequenceLoss(m.Config, w, loras, ads, evalText[o:min(o+49, len(evalText))])
				sum += s
				n += c
			}
			want := sum / float64(n)
			if int64(n) != got.Tokens {
				t.Fatalf("tokens: reference %d, eval %d", n, got.Tokens)
			}
			if rel := math.Abs(got.Loss-want) / want; rel > 1e-4 {
				t.Fatalf("eval loss %.8f, reference %.8f (rel %.2g)", got.Loss, want, rel)
			}
			// The delta must matter, or the comparison proves little.
			plain, err := Evaluate(ctx, m, nil, ev, EvalOptions{Threads: 2, Batch: 2, Seq: 48})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(plain.Loss-got.Loss) < 1e-4 {
				t.Fatalf("delta changed the loss only from %.6f to %.6f", plain.Loss, got.Loss)
			}
			t.Logf("%s: eval %.6f reference %.6f base %.6f", method, got.Loss, want, plain.Loss)
		})
	}
}

func bytesToTokens(b []byte) []int32 {
	out := make([]int32, len(b))
	for i, c := range b {
		out[i] = int32(c)
	}
	return out
}
