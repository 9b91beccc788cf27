package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
)

// This file checks every supported architecture against a second,
// independent float64 forward pass written with plain loops (one position,
// one head, one element at a time) from the transformers modeling files
// (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)
// and modeling_rope_utils.py; it shares no code with the trainer's layers.
// Its weights make attention sharp (large q/k projections or q/k norm
// weights), and each case also runs the reference with one deliberate
// mistake (a wrong rotation, a missing scaling, the norm after RoPE) to show
// that such a mistake moves the loss by far more than the tolerance.

// archRefMistake is a deliberate error the reference can make.
type archRefMistake int

const (
	archRefExact         archRefMistake = iota
	archRefInterleaved                  // rotate adjacent pairs (GPT-J) instead of halves
	archRefNoScaling                    // ignore rope_scaling
	archRefNormAfterRoPE                // Qwen3 q/k norm applied after the rotation
)

// archRefInvFreq computes RoPE inverse frequencies in float64. The llama3
// rule is written as Meta's reference apply_scaling states it, per
// frequency: keep high frequencies, divide low ones by the factor, and blend
// linearly in between by how many original contexts one wavelength spans.
func archRefInvFreq(c Config, mistake archRefMistake) []float64 {
	hd := c.HeadDim
	out := make([]float64, hd/2)
	for i := range out {
		freq := 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(hd))
		rs := c.RopeScaling
		if rs != nil && mistake != archRefNoScaling {
			switch rs.Type {
			case "linear":
				freq /= rs.Factor
			case "llama3":
				ctxLen := float64(rs.OriginalMaxPositions)
				wavelen := 2 * math.Pi / freq
				if wavelen > ctxLen/rs.LowFreqFactor {
					freq /= rs.Factor
				} else if wavelen >= ctxLen/rs.HighFreqFactor {
					smooth := (ctxLen/wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
					freq = (1-smooth)*freq/rs.Factor + smooth*freq
				}
			}
		}
		out[i] = freq
	}
	return out
}

// archRefRotate applies the rotary embedding at position pos to one head.
func archRefRotate(v, inv []float64, pos int, mistake archRefMistake) {
	half := len(v) / 2
	for i := 0; i < half; i++ {
		c, s := math.Cos(float64(pos)*inv[i]), math.Sin(float64(pos)*inv[i])
		a, b := i, i+half
		if mistake == archRefInterleaved {
			a, b = 2*i, 2*i+1
		}
		x, y := v[a], v[b]
		v[a], v[b] = x*c-y*s, y*c+x*s
	}
}

// archRefNorm is RMSNorm of x with weight w.
func archRefNorm(x, w []float64, eps float64) []float64 {
	var ms float64
	for _, v := range x {
		ms += v * v / float64(len(x))
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v / math.Sqrt(ms+eps) * w[i]
	}
	return out
}

// archRefProj is W·x + b for W [len(b) or rows, len(x)].
func archRefProj(w, b, x []float64) []float64 {
	rows := len(w) / len(x)
	out := make([]float64, rows)
	for r := range out {
		for i, v := range x {
			out[r] += w[r*len(x)+i] * v
		}
		if b != nil {
			out[r] += b[r]
		}
	}
	return out
}

// archRefLoss is the summed next-token cross-entropy of seq (predicting
// seq[1:] from seq[:-1]) under HF semantics, and the number of predictions.
func archRefLoss(c Config, w map[string][]float64, seq []int32, mistake archRefMistake) (float64, int) {
	T, D, hd := len(seq)-1, c.HiddenSize, c.HeadDim
	inv := archRefInvFreq(c, mistake)
	h := make([][]float64, T)
	for t := range h {
		h[t] = append([]float64(nil), w["model.embed_tokens.weight"][int(seq[t])*D:][:D]...)
	}
	for l := 0; l < c.NumLayers; l++ {
		pre := fmt.Sprintf("model.layers.%d.", l)
		W := func(n string) []float64 { return w[pre+n] }
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := 0; t < T; t++ {
			x := archRefNorm(h[t], W("input_layernorm.weight"), c.RMSNormEps)
			qs[t] = archRefProj(W("self_attn.q_proj.weight"), W("self_attn.q_proj.bias"), x)
			ks[t] = archRefProj(W("self_attn.k_proj.weight"), W("self_attn.k_proj.bias"), x)
			vs[t] = archRefProj(W("self_attn.v_proj.weight"), W("self_attn.v_proj.bias"), x)
			for _, side := range []struct {
				v     []float64
				heads int
				norm  string
			}{{qs[t], c.NumHeads, "self_attn.q_norm.weight"}, {ks[t], c.NumKVHeads, "self_attn.k_norm.weight"}} {
				for hh := 0; hh < side.heads; hh++ {
					head := side.v[hh*hd : (hh+1)*hd]
					if c.QKNorm && mistake != archRefNormAfterRoPE {
						copy(head, archRefNorm(head, W(side.norm), c.RMSNormEps))
					}
					archRefRotate(head, inv, t, mistake)
					if c.QKNorm && mistake == archRefNormAfterRoPE {
						copy(head, archRefNorm(head, W(side.norm), c.RMSNormEps))
					}
				}
			}
		}
		for t := 0; t < T; t++ {
			att := make([]float64, c.NumHeads*hd)
			for hh := 0; hh < c.NumHeads; hh++ {
				kv := hh * c.NumKVHeads / c.NumHeads
				var weights []float64
				var z, top float64 = 0, math.Inf(-1)
				first := 0
				if c.SlidingWindow > 0 {
					first = max(0, t-c.SlidingWindow+1)
				}
				for j := first; j <= t; j++ {
					var s float64
					for i := 0; i < hd; i++ {
						s += qs[t][hh*hd+i] * ks[j][kv*hd+i]
					}
					s /= math.Sqrt(float64(hd))
					weights = append(weights, s)
					top = math.Max(top, s)
				}
				for j := range weights {
					weights[j] = math.Exp(weights[j] - top)
					z += weights[j]
				}
				for j, p := range weights {
					for i := 0; i < hd; i++ {
						att[hh*hd+i] += p / z * vs[first+j][kv*hd+i]
					}
				}
			}
			o := archRefProj(W("self_attn.o_proj.weight"), W("self_attn.o_proj.bias"), att)
			for i := range h[t] {
				h[t][i] += o[i]
			}
			x := archRefNorm(h[t], W("post_attention_layernorm.weight"), c.RMSNormEps)
			gate := archRefProj(W("mlp.gate_proj.weight"), nil, x)
			up := archRefProj(W("mlp.up_proj.weight"), nil, x)
			for i, g := range gate {
				gate[i] = g / (1 + math.Exp(-g)) * up[i]
			}
			down := archRefProj(W("mlp.down_proj.weight"), nil, gate)
			for i := range h[t] {
				h[t][i] += down[i]
			}
		}
	}
	head := w["lm_head.weight"]
	if c.TieWordEmbeddings {
		head = w["model.embed_tokens.weight"]
	}
	var loss float64
	for t := 0; t < T; t++ {
		logits := archRefProj(head, nil, archRefNorm(h[t], w["model.norm.weight"], c.RMSNormEps))
		top := math.Inf(-1)
		for _, v := range logits {
			top = math.Max(top, v)
		}
		var z float64
		for _, v := range logits {
			z += math.Exp(v - top)
		}
		loss += top + math.Log(z) - logits[seq[t+1]]
	}
	return loss, T
}

// archBase is a small model with every dimension distinct enough that a
// transposed index would show: GQA 4/2, 2 layers, vocab 61.
func archBase() Config {
	return Config{ModelType: "llama", HiddenSize: 32, IntermediateSize: 48, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, HeadDim: 8, VocabSize: 61, MaxPositions: 256,
		RMSNormEps: 1e-6, RopeTheta: 10000, InitializerRange: 0.15}
}

// archCase is one architecture to check.
type archCase struct {
	name    string
	cfg     Config
	bias    bool           // Qwen2: q/k/v biases
	mistake archRefMistake // a mistake that must show in the loss
}

func archCases() []archCase {
	var cs []archCase
	add := func(name string, bias bool, mistake archRefMistake, edit func(*Config)) {
		c := archBase()
		edit(&c)
		cs = append(cs, archCase{name, c, bias, mistake})
	}
	add("llama-untied", false, archRefInterleaved, func(c *Config) {})
	add("llama-tied", false, archRefInterleaved, func(c *Config) { c.TieWordEmbeddings = true })
	// head_dim 16, theta 10000: wavelengths 6.3 ... 3.5e3 against
	// original_max 32 with factors 1 and 4 (bands at 8 and 32): two high,
	// one smoothed, five low frequencies; positions reach 63.
	add("llama3-scaling", false, archRefNoScaling, func(c *Config) {
		c.HeadDim = 16
		c.RopeScaling = &RopeScaling{Type: "llama3", Factor: 4, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 32}
	})
	add("linear-scaling", false, archRefNoScaling, func(c *Config) {
		c.RopeScaling = &RopeScaling{Type: "linear", Factor: 2.5}
	})
	add("qwen2-bias", true, archRefInterleaved, func(c *Config) { c.ModelType = "qwen2"; c.TieWordEmbeddings = true })
	// head_dim 12 while hidden/heads is 8.
	add("qwen3-qknorm", false, archRefNormAfterRoPE, func(c *Config) {
		c.ModelType, c.QKNorm, c.HeadDim, c.TieWordEmbeddings = "qwen3", true, 12, true
		c.RopeTheta = 1e6
	})
	add("mistral-window", false, archRefInterleaved, func(c *Config) { c.ModelType = "mistral"; c.SlidingWindow = 64 })
	return cs
}

// archModel builds the case's model with sharp attention: q/k projections
// scaled up (or, with q/k norms, the norm weights), other norms perturbed,
// Qwen2's biases added. Every value is a function of the weight's name and
// index, so the model is the same on every run (perturbModel's depends on
// map order).
func archModel(ac archCase) *Model {
	m := NewRandomModel(ac.cfg, nil, 11, ac.name)
	key := func(name string) uint64 {
		var h uint64 = 1469598103934665603
		for i := 0; i < len(name); i++ {
			h = (h ^ uint64(name[i])) * 1099511628211
		}
		return h
	}
	if ac.bias {
		c := ac.cfg
		for l := 0; l < c.NumLayers; l++ {
			for _, p := range []struct {
				n string
				d int
			}{{"q_proj", c.qDim()}, {"k_proj", c.kvDim()}, {"v_proj", c.kvDim()}} {
				m.Weights[fmt.Sprintf("model.layers.%d.self_attn.%s.bias", l, p.n)] = make([]float32, p.d)
			}
		}
	}
	for name, v := range m.Weights {
		k := key(name)
		switch {
		case strings.HasSuffix(name, "q_norm.weight"), strings.HasSuffix(name, "k_norm.weight"):
			for i := range v {
				v[i] = float32(2.5 + 0.5*normal(k, uint64(i)))
			}
		case strings.HasSuffix(name, "norm.weight"):
			for i := range v {
				v[i] = float32(1 + 0.3*normal(k, uint64(i)))
			}
		case strings.HasSuffix(name, ".bias"):
			for i := range v {
				v[i] = float32(0.2 * normal(k, uint64(i)))
			}
		case !ac.cfg.QKNorm && (strings.HasSuffix(name, "q_proj.weight") || strings.HasSuffix(name, "k_proj.weight")):
			for i := range v {
				v[i] *= 2
			}
		case name == "lm_head.weight" || (ac.cfg.TieWordEmbeddings && name == "model.embed_tokens.weight"):
			// Confident predictions, so that what attention reads shows
			// in the loss.
			for i := range v {
				v[i] *= 4
			}
		}
	}
	return m
}

func archTokens(n, vocab int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(splitmix64(uint64(i)*7+3) % uint64(vocab))
	}
	return out
}

// TestArchitecturesMatchReference: Evaluate (float32) equals the float64
// reference to 1e-5 relative on two windows of 64 positions, for every
// supported family; the trainer's float64 network equals it to 1e-7.
func TestArchitecturesMatchReference(t *testing.T) {
	const T, windows = 64, 2
	for _, ac := range archCases() {
		t.Run(ac.name, func(t *testing.T) {
			m := archModel(ac)
			w := map[string][]float64{}
			for k, v := range m.Weights {
				w[k] = make([]float64, len(v))
				for i, x := range v {
					w[k][i] = float64(x)
				}
			}
			stream := archTokens(windows*T+1, ac.cfg.VocabSize)
			var sum, wrong float64
			var n int
			for o := 0; o+1 < len(stream); o += T {
				s, c := archRefLoss(ac.cfg, w, stream[o:min(o+T+1, len(stream))], archRefExact)
				sw, _ := archRefLoss(ac.cfg, w, stream[o:min(o+T+1, len(stream))], ac.mistake)
				sum, wrong, n = sum+s, wrong+sw, n+c
			}
			want := sum / float64(n)
			ds := &Dataset{Path: ac.name, Kind: "text", Stream: stream}
			got, err := Evaluate(context.Background(), m, nil, ds, EvalOptions{Threads: 2, Batch: 2, Seq: T})
			if err != nil {
				t.Fatal(err)
			}
			if got.Tokens != int64(n) {
				t.Fatalf("tokens: eval %d, reference %d", got.Tokens, n)
			}
			rel := math.Abs(got.Loss-want) / want
			if rel > 1e-5 {
				t.Errorf("eval loss %.9f, reference %.9f (rel %.2g)", got.Loss, want, rel)
			}
			// The same network in float64, for a tighter bound.
			nt, err := newNet[float64](m, netSpec{B: windows, T: T, threads: 2}, goSgemm)
			if err != nil {
				t.Fatal(err)
			}
			r64, err := evalNet(context.Background(), nt, ds, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Not closer: the network rounds the angles position·inv_freq
			// to float32, as transformers does.
			if rel64 := math.Abs(r64.Loss-want) / want; rel64 > 1e-7 {
				t.Errorf("float64 network loss %.12f, reference %.12f (rel %.2g)", r64.Loss, want, rel64)
			}
			// The mistake must be visible far above the tolerance.
			if d := math.Abs(wrong/float64(n)-want) / want; d < 1e-3 {
				t.Errorf("mistake %d moves the reference loss by only %.2g relative: attention not sharp enough", ac.mistake, d)
			}
			t.Logf("eval %.8f reference %.8f (rel %.1e); with mistake %.6f", got.Loss, want, rel, wrong/float64(n))
		})
	}
}

// TestRopeScalingBands pins the llama3 rule on the Llama 3.1 parameters
// (theta 500000, head_dim 128, factor 8, low 1, high 4, original 8192):
// the highest frequency is kept, the lowest divided by 8, and one in the
// smoothed band lies strictly between.
func TestRopeScalingBands(t *testing.T) {
	c := Config{HeadDim: 128, RopeTheta: 500000, RopeScaling: &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}}
	got := ropeInvFreq(c)
	c0 := c
	c0.RopeScaling = nil
	plain := ropeInvFreq(c0)
	if got[0] != plain[0] || math.Abs(got[63]-plain[63]/8) > 1e-7*plain[63] {
		t.Fatalf("inv_freq[0] %g (plain %g), inv_freq[63] %g (plain/8 %g)", got[0], plain[0], got[63], plain[63]/8)
	}
	smoothed := 0
	for i := range got {
		wave := 2 * math.Pi / plain[i]
		if wave >= 2048 && wave <= 8192 {
			smoothed++
			if !(got[i] < plain[i] && got[i] > plain[i]/8) {
				t.Errorf("inv_freq[%d] (wavelength %.0f) = %g, want strictly between %g and %g", i, wave, got[i], plain[i]/8, plain[i])
			}
		}
	}
	if smoothed == 0 {
		t.Fatal("no frequency in the smoothed band")
	}
	ref := archRefInvFreq(c, archRefExact)
	for i := range got {
		if math.Abs(got[i]-ref[i]) > 1e-7*ref[i] {
			t.Errorf("inv_freq[%d] = %g, reference %g", i, got[i], ref[i])
		}
	}
}

func TestParseConfigArchitectures(t *testing.T) {
	base := `"hidden_size":32,"intermediate_size":48,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":61,"max_position_embeddings":4096`
	parse := func(extra string) (Config, error) { return ParseConfig([]byte("{" + base + "," + extra + "}")) }

	c, err := parse(`"model_type":"qwen3","head_dim":12,"attention_bias":false,"sliding_window":4096,"use_sliding_window":false,"tie_word_embeddings":true`)
	if err != nil || !c.QKNorm || c.HeadDim != 12 || c.qDim() != 48 || c.SlidingWindow != 0 {
		t.Fatalf("qwen3: %+v, %v", c, err)
	}
	c, err = parse(`"model_type":"llama","rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,"original_max_position_embeddings":8192,"rope_type":"llama3"}`)
	if err != nil || c.RopeScaling == nil || *c.RopeScaling != (RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}) {
		t.Fatalf("llama3: %+v, %v", c.RopeScaling, err)
	}
	c, err = parse(`"model_type":"llama","rope_scaling":{"type":"linear","factor":2.0}`)
	if err != nil || c.RopeScaling == nil || c.RopeScaling.Type != "linear" || c.RopeScaling.Factor != 2 {
		t.Fatalf("linear: %+v, %v", c.RopeScaling, err)
	}
	// transformers v5 writes rope_parameters (with rope_theta inside).
	c, err = parse(`"model_type":"llama","rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":8.0,"high_freq_factor":4.0,"low_freq_factor":1.0,"original_max_position_embeddings":8192}`)
	if err != nil || c.RopeScaling == nil || c.RopeScaling.Factor != 8 || c.RopeTheta != 500000 {
		t.Fatalf("rope_parameters: %+v, %v", c.RopeScaling, err)
	}
	c, err = parse(`"model_type":"mistral","sliding_window":64`)
	if err != nil || c.SlidingWindow != 64 {
		t.Fatalf("mistral: %+v, %v", c, err)
	}
	if err := c.CheckSeq(64); err != nil {
		t.Fatalf("mistral seq 64 within window 64: %v", err)
	}
	if err := c.CheckSeq(65); err == nil || !strings.Contains(err.Error(), "sliding_window 64") || !strings.Contains(err.Error(), "65") {
		t.Fatalf("mistral seq 65: %v", err)
	}
	// A Mistral evaluated beyond its window is refused with the same words.
	m := NewRandomModel(c, nil, 1, "mistral")
	ds := &Dataset{Path: "x", Kind: "text", Stream: archTokens(200, 61)}
	if _, err := Evaluate(context.Background(), m, nil, ds, EvalOptions{Seq: 100}); err == nil || !strings.Contains(err.Error(), "sliding_window") {
		t.Fatalf("eval beyond the window: %v", err)
	}
	// Training beyond the window is refused as an option error on Seq.
	o := DefaultOptions()
	o.Method, o.Steps, o.Batch, o.Seq, o.Out = format.MethodLoRA, 1, 1, 100, t.TempDir()+"/out"
	var oe *OptionError
	if _, err := Train(context.Background(), m, ds, nil, o); !errors.As(err, &oe) || oe.Option != "Seq" || !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "sliding_window 64") {
		t.Fatalf("training a window-64 model with seq 100: %v", err)
	}
	for _, tc := range []struct{ extra, want string }{
		{`"model_type":"gemma2"`, `"gemma2"`},
		{`"model_type":"phi3"`, `"phi3"`},
		{`"model_type":"mixtral"`, `"mixtral"`},
		{`"model_type":"qwen2_moe"`, `"qwen2_moe"`},
		{`"model_type":"qwen3_moe"`, `"qwen3_moe"`},
		{`"model_type":"falcon"`, `"falcon"`},
		{`"model_type":"llama","rope_scaling":{"rope_type":"yarn","factor":4}`, `"yarn"`},
		{`"model_type":"llama","rope_scaling":{"rope_type":"dynamic","factor":4}`, `"dynamic"`},
		{`"model_type":"qwen3","attention_bias":true`, "attention_bias"},
		{`"model_type":"qwen2","use_sliding_window":true`, "use_sliding_window"},
		{`"model_type":"qwen3","head_dim":16,"partial_rotary_factor":0.5`, "partial_rotary_factor"},
		{`"model_type":"llama","rope_parameters":{"rope_type":"default","rope_theta":10000.0,"partial_rotary_factor":0.25}`, "partial_rotary_factor"},
		{`"model_type":"qwen3","layer_types":["full_attention","sliding_attention"]`, "sliding_attention"},
	} {
		_, err := parse(tc.extra)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrUnsupported naming %s", tc.extra, err, tc.want)
		}
	}
	for _, extra := range []string{
		`"model_type":"llama","rope_scaling":{"rope_type":"llama3","factor":8}`,
		`"model_type":"llama","rope_scaling":{"rope_type":"linear"}`,
		`"model_type":"llama","rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":4,"high_freq_factor":1,"original_max_position_embeddings":8192}`,
	} {
		if _, err := parse(extra); err == nil || !strings.Contains(err.Error(), "rope_scaling") {
			t.Errorf("%s: %v, want an error naming rope_scaling", extra, err)
		}
	}
	// Configs shaped like the published Qwen3-0.6B and Llama-3.2-1B
	// config.json files (their keys and values, typed in for this test).
	c, err = ParseConfig([]byte(`{"architectures":["Qwen3ForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"bos_token_id":151643,"eos_token_id":151645,"head_dim":128,"hidden_act":"silu","hidden_size":1024,"initializer_range":0.02,"intermediate_size":3072,"max_position_embeddings":40960,"max_window_layers":28,"model_type":"qwen3","num_attention_heads":16,"num_hidden_layers":28,"num_key_value_heads":8,"rms_norm_eps":1e-06,"rope_scaling":null,"rope_theta":1000000,"sliding_window":null,"tie_word_embeddings":true,"torch_dtype":"bfloat16","transformers_version":"4.51.0","use_cache":true,"use_sliding_window":false,"vocab_size":151936}`))
	if err != nil || !c.QKNorm || c.HeadDim != 128 || c.qDim() != 2048 || c.RopeTheta != 1e6 || !c.TieWordEmbeddings {
		t.Fatalf("Qwen3-0.6B-shaped config: %+v, %v", c, err)
	}
	c, err = ParseConfig([]byte(`{"architectures":["LlamaForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"bos_token_id":128000,"eos_token_id":128001,"head_dim":64,"hidden_act":"silu","hidden_size":2048,"initializer_range":0.02,"intermediate_size":8192,"max_position_embeddings":131072,"mlp_bias":false,"model_type":"llama","num_attention_heads":32,"num_hidden_layers":16,"num_key_value_heads":8,"pretraining_tp":1,"rms_norm_eps":1e-05,"rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,"original_max_position_embeddings":8192,"rope_type":"llama3"},"rope_theta":500000.0,"tie_word_embeddings":true,"torch_dtype":"bfloat16","transformers_version":"4.45.0.dev0","use_cache":true,"vocab_size":128256}`))
	if err != nil || c.RopeScaling == nil || c.RopeScaling.Factor != 32 || c.RopeScaling.OriginalMaxPositions != 8192 || c.RopeTheta != 500000 {
		t.Fatalf("Llama-3.2-1B-shaped config: %+v, %v", c, err)
	}
	// A config written by Config.JSON parses back to the same architecture.
	for _, ac := range archCases() {
		back, err := ParseConfig(ac.cfg.JSON())
		if err != nil {
			t.Fatalf("%s: %v", ac.name, err)
		}
		want := ac.cfg
		if (back.RopeScaling != nil) != (want.RopeScaling != nil) || (back.RopeScaling != nil && *back.RopeScaling != *want.RopeScaling) {
			t.Errorf("%s: JSON round trip rope_scaling %+v, want %+v", ac.name, back.RopeScaling, want.RopeScaling)
		}
		back.RopeScaling, want.RopeScaling = nil, nil
		if back != want {
			t.Errorf("%s: JSON round trip %+v, want %+v", ac.name, back, ac.cfg)
		}
	}
}

// TestQwen3FullRoundTrip trains a Qwen3-shaped model from its config for a
// step, writes it, and loads it back: the folder's config.json says qwen3,
// the q/k norm weights were trained and saved, and the reloaded model
// evaluates to the same loss.
func TestQwen3FullRoundTrip(t *testing.T) {
	ctx := context.Background()
	cfg := archCases()[5].cfg
	if !cfg.QKNorm {
		t.Fatal("case 5 is not qwen3")
	}
	cfg.VocabSize = 256
	dir := t.TempDir()
	cfgPath := dir + "/qwen3.json"
	if err := os.WriteFile(cfgPath, cfg.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(ctx, cfgPath, 3)
	if err != nil {
		t.Fatal(err)
	}
	before := slices.Clone(m.Weights["model.layers.1.self_attn.k_norm.weight"])
	stream := archTokens(2000, 256)
	ds := &Dataset{Path: "x", Kind: "text", Stream: stream}
	o := DefaultOptions()
	o.Method, o.Steps, o.Batch, o.Seq, o.Threads, o.LR = format.MethodFull, 2, 2, 32, 2, 1e-2
	o.Out = dir + "/out"
	if _, err := Train(ctx, m, ds, nil, o); err != nil {
		t.Fatal(err)
	}
	back, err := LoadModel(ctx, o.Out, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Config.QKNorm || back.Config.HeadDim != 12 {
		t.Fatalf("reloaded config %+v", back.Config)
	}
	after := back.Weights["model.layers.1.self_attn.k_norm.weight"]
	if slices.Equal(before, after) {
		t.Fatal("k_norm did not train (or was not saved)")
	}
	ev := &Dataset{Path: "y", Kind: "text", Stream: stream[:129]}
	a, err := Evaluate(ctx, m, nil, ev, EvalOptions{Threads: 2, Batch: 2, Seq: 64})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Evaluate(ctx, back, nil, ev, EvalOptions{Threads: 2, Batch: 2, Seq: 64})
	if err != nil {
		t.Fatal(err)
	}
	if a.Loss != b.Loss {
		t.Fatalf("trained model loss %.9f, reloaded %.9f", a.Loss, b.Loss)
	}
}
