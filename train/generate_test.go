package train

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/kernels"
)

// testLoRA is a delta with a rank-2 LoRA on every q_proj and down_proj of
// m, large enough to change what the model predicts.
func testLoRA(t *testing.T, m *Model, seed uint64, scale float64) *format.Delta {
	t.Helper()
	c := m.Config
	d := &format.Delta{Method: format.MethodLoRA}
	for l := 0; l < c.NumLayers; l++ {
		for k, tg := range []struct {
			name    string
			out, in int
		}{{"self_attn.q_proj", c.qDim(), c.HiddenSize}, {"mlp.down_proj", c.HiddenSize, c.IntermediateSize}} {
			a, b := make([]float32, 2*tg.in), make([]float32, tg.out*2)
			kaimingUniform(a, tg.in, seed+uint64(10*l+k))
			kaimingUniform(b, 2, seed+uint64(500+10*l+k))
			target := "model.layers." + string(rune('0'+l)) + "." + tg.name + ".weight"
			at, err := format.FromFloat32(target+".A", format.F32, []int64{2, int64(tg.in)}, a)
			if err != nil {
				t.Fatal(err)
			}
			bt, err := format.FromFloat32(target+".B", format.F32, []int64{int64(tg.out), 2}, b)
			if err != nil {
				t.Fatal(err)
			}
			d.LoRA = append(d.LoRA, &format.LoRA{Target: target, A: at, B: bt, Scale: scale})
		}
	}
	return d
}

// testAdapters is a delta with bottleneck adapters after the attention of
// layer 0 and the MLP of layer 1.
func testAdapters(t *testing.T, m *Model) *format.Delta {
	t.Helper()
	D, M := m.Config.HiddenSize, 6
	d := &format.Delta{Method: format.MethodAdapter}
	for i, place := range []string{"model.layers.0." + placeAttn, "model.layers.1." + placeMLP} {
		vals := [][]float32{make([]float32, M*D), make([]float32, M), make([]float32, D*M), make([]float32, D)}
		shapes := [][]int64{{int64(M), int64(D)}, {int64(M)}, {int64(D), int64(M)}, {int64(D)}}
		ts := make([]*format.Tensor, 4)
		for k, v := range vals {
			kaimingUniform(v, 4, uint64(100*i+k))
			var err error
			if ts[k], err = format.FromFloat32(place, format.F32, shapes[k], v); err != nil {
				t.Fatal(err)
			}
		}
		d.Adapters = append(d.Adapters, &format.Adapter{Placement: place, Down: ts[0], DownBias: ts[1], Up: ts[2], UpBias: ts[3], Act: "gelu"})
	}
	return d
}

// fullLogits runs the full forward pass (as Evaluate does) on ids with
// deltas and returns its logits, one row per position.
func fullLogits(t *testing.T, m *Model, deltas []*format.Delta, ids []int) []float32 {
	t.Helper()
	nt, err := newNet[float32](m, netSpec{B: 1, T: len(ids), threads: 2}, kernels.SgemmThreads)
	if err != nil {
		t.Fatal(err)
	}
	if len(deltas) > 0 {
		d, err := combineDeltas(deltas)
		if err != nil {
			t.Fatal(err)
		}
		if err := applyDelta(nt, d); err != nil {
			t.Fatal(err)
		}
	}
	tok := make([]int32, len(ids))
	for i, id := range ids {
		tok[i] = int32(id)
	}
	nt.forward(tok, false, 0)
	return nt.logits
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// TestGenerateGreedyMatchesFullForward: greedy decoding over the cache
// (prompt longer than one prefill chunk) picks, at every step, the argmax of
// the full forward pass over prompt + generated tokens, and its logits
// agree with the full pass's to float32 rounding, for every architecture,
// with and without a LoRA.
//
// With BF16 and F16 weights (held as their bits, as a loaded BF16/F16
// folder) the one-token products go through kernels.GemvB16 and the prompt
// chunks through kernels.SgemmB16, the full forward through SgemmB16.
func TestGenerateGreedyMatchesFullForward(t *testing.T) {
	for _, ac := range archCases() {
		for _, v := range []struct {
			dt    format.DType
			delta string
		}{{format.F32, ""}, {format.F32, "lora"}, {format.F32, "adapter"}, {format.BF16, ""}, {format.BF16, "lora"}, {format.F16, "adapter"}} {
			t.Run(ac.name+"+"+v.dt.String()+"+"+v.delta, func(t *testing.T) {
				m := archModel(ac)
				if v.dt != format.F32 {
					to16(t, m, v.dt)
				}
				delta := v.delta
				var deltas []*format.Delta
				switch delta {
				case "lora":
					deltas = []*format.Delta{testLoRA(t, m, 7, 0.8)}
				case "adapter":
					deltas = []*format.Delta{testAdapters(t, m)}
				}
				g, err := NewGenerator(m, deltas, 2)
				if err != nil {
					t.Fatal(err)
				}
				prompt := make([]int, 0, 70)
				for _, tk := range archTokens(70, ac.cfg.VocabSize) {
					prompt = append(prompt, int(tk))
				}
				if ac.cfg.SlidingWindow > 0 {
					prompt = prompt[:40] // 40 + 24 new stays within the window of 64
				}
				var streamed []int
				res, err := g.Generate(context.Background(), prompt, GenerateOptions{MaxNewTokens: 25, OnToken: func(id int) error {
					streamed = append(streamed, id)
					return nil
				}})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.IDs) != 25 || !slices.Equal(streamed, res.IDs) || res.PromptTokens != len(prompt) || !(res.TokensPerSecond > 0) {
					t.Fatalf("result %+v, streamed %v", res, streamed)
				}
				all := append(slices.Clone(prompt), res.IDs[:len(res.IDs)-1]...)
				full := fullLogits(t, m, deltas, all)
				V := ac.cfg.VocabSize
				for k, id := range res.IDs {
					row := full[(len(prompt)-1+k)*V : (len(prompt)+k)*V]
					if am := argmax(row); am != id {
						t.Fatalf("step %d: generated %d (full-forward logit %g), full forward's argmax %d (%g)", k, id, row[id], am, row[am])
					}
				}
				// The cached pass's logits themselves, at every step: the
				// prompt in chunks, then one token at a time.
				st := &decodeState{rope: newRopeTable[float32](len(all), m.Config), cache: newKVCache(m.Config.NumLayers, len(all), g.chunk, m.Config.NumKVHeads, m.Config.HeadDim, 2)}
				var worst float64
				for pos := 0; pos < len(all); {
					n := 1
					if pos < len(prompt) {
						n = min(g.chunk, len(prompt)-pos)
					}
					got := g.step(st, all[pos:pos+n], pos)
					pos += n
					want := full[(pos-1)*V : pos*V]
					for i := range got {
						worst = max(worst, math.Abs(float64(got[i]-want[i]))/(1+math.Abs(float64(want[i]))))
					}
				}
				if worst > 1e-4 {
					t.Fatalf("cached logits differ from the full forward's by %.2g", worst)
				}
			})
		}
	}
}

func TestGenerateSampling(t *testing.T) {
	ac := archCases()[0]
	m := archModel(ac)
	g, err := NewGenerator(m, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	prompt := []int{1, 2, 3, 4, 5}
	run := func(o GenerateOptions) []int {
		t.Helper()
		o.MaxNewTokens = 30
		r, err := g.Generate(context.Background(), prompt, o)
		if err != nil {
			t.Fatal(err)
		}
		return r.IDs
	}
	greedy := run(GenerateOptions{})
	a := run(GenerateOptions{Temperature: 1.5, TopP: 0.95, Seed: 1})
	if b := run(GenerateOptions{Temperature: 1.5, TopP: 0.95, Seed: 1}); !slices.Equal(a, b) {
		t.Fatalf("same seed, different output:\n%v\n%v", a, b)
	}
	if c := run(GenerateOptions{Temperature: 1.5, TopP: 0.95, Seed: 2}); slices.Equal(a, c) {
		t.Fatalf("seeds 1 and 2 gave the same 30 tokens %v", a)
	}
	if slices.Equal(a, greedy) {
		t.Fatalf("sampling at temperature 1.5 reproduced greedy output %v", a)
	}
	// The thread count changes nothing.
	g1, err := NewGenerator(m, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := g1.Generate(context.Background(), prompt, GenerateOptions{MaxNewTokens: 30, Temperature: 1.5, TopP: 0.95, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r1.IDs, a) {
		t.Fatalf("1 thread %v, 2 threads %v", r1.IDs, a)
	}
	// A nucleus of one token is greedy whatever the temperature and seed.
	if n := run(GenerateOptions{Temperature: 3, TopP: 1e-9, Seed: 9}); !slices.Equal(n, greedy) {
		t.Fatalf("top-p 1e-9 gave %v, greedy %v", n, greedy)
	}
	// A vocabulary limit is never crossed, greedy or sampled.
	for _, o := range []GenerateOptions{{VocabLimit: 10}, {VocabLimit: 10, Temperature: 2, Seed: 4}} {
		for _, id := range run(o) {
			if id >= 10 {
				t.Fatalf("%+v: generated id %d", o, id)
			}
		}
	}
	// Stop ends generation at (and including) the stop id.
	stop := greedy[3]
	s, err := g.Generate(context.Background(), prompt, GenerateOptions{MaxNewTokens: 30, Stop: []int{stop}})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(greedy, stop); !slices.Equal(s.IDs, greedy[:i+1]) {
		t.Fatalf("stop at %d: %v, greedy %v", stop, s.IDs, greedy)
	}
}

// TestPickTopP checks the nucleus rule on known probabilities.
func TestPickTopP(t *testing.T) {
	// probabilities 0.5, 0.3, 0.15, 0.05 (ids 2, 0, 3, 1)
	logits := []float32{float32(math.Log(0.3)), float32(math.Log(0.05)), float32(math.Log(0.5)), float32(math.Log(0.15))}
	seen := func(topP float64) map[int]bool {
		rng := rand.New(rand.NewPCG(1, 2))
		s := map[int]bool{}
		for range 2000 {
			s[pick(logits, GenerateOptions{Temperature: 1, TopP: topP}, rng)] = true
		}
		return s
	}
	for _, tc := range []struct {
		p    float64
		want []int
	}{{0.5, []int{2}}, {0.6, []int{2, 0}}, {0.8, []int{2, 0}}, {0.81, []int{2, 0, 3}}, {1, []int{2, 0, 3, 1}}} {
		got := seen(tc.p)
		if len(got) != len(tc.want) {
			t.Errorf("top-p %g: drew %v, want exactly %v", tc.p, got, tc.want)
		}
		for _, id := range tc.want {
			if !got[id] {
				t.Errorf("top-p %g: never drew %d (drew %v)", tc.p, id, got)
			}
		}
	}
}

// TestGenerateCombinedDeltas: two LoRAs on the same weights act as their
// sum (here one delta twice equals it at twice the scale).
func TestGenerateCombinedDeltas(t *testing.T) {
	m := archModel(archCases()[0])
	d := testLoRA(t, m, 3, 0.4)
	ids := []int{5, 9, 2, 11, 40, 7}
	logitsOf := func(ds []*format.Delta) []float32 {
		g, err := NewGenerator(m, ds, 2)
		if err != nil {
			t.Fatal(err)
		}
		st := &decodeState{rope: newRopeTable[float32](len(ids), m.Config), cache: newKVCache(m.Config.NumLayers, len(ids), g.chunk, m.Config.NumKVHeads, m.Config.HeadDim, 2)}
		return slices.Clone(g.step(st, ids, 0))
	}
	twice := logitsOf([]*format.Delta{d, d})
	d2 := testLoRA(t, m, 3, 0.8)
	double := logitsOf([]*format.Delta{d2})
	once := logitsOf([]*format.Delta{d})
	var diff, moved float64
	for i := range twice {
		diff = max(diff, math.Abs(float64(twice[i]-double[i])))
		moved = max(moved, math.Abs(float64(twice[i]-once[i])))
	}
	if diff > 1e-4 || moved < 1e-2 {
		t.Fatalf("two copies vs double scale differ by %g; vs one copy by %g", diff, moved)
	}
}

func TestGenerateErrors(t *testing.T) {
	cases := archCases()
	m := archModel(cases[len(cases)-1]) // mistral, window 64
	g, err := NewGenerator(m, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		prompt []int
		o      GenerateOptions
		want   string
	}{
		{make([]int, 60), GenerateOptions{MaxNewTokens: 10}, "sliding_window 64"},
		{nil, GenerateOptions{MaxNewTokens: 1}, "empty prompt"},
		{[]int{1, 61}, GenerateOptions{MaxNewTokens: 1}, "outside the vocabulary"},
		{[]int{1}, GenerateOptions{MaxNewTokens: 0}, "max new tokens"},
		{[]int{1}, GenerateOptions{MaxNewTokens: 1, Temperature: -1}, "temperature"},
		{[]int{1}, GenerateOptions{MaxNewTokens: 1, TopP: 1.5}, "top-p"},
	} {
		if _, err := g.Generate(ctx, tc.prompt, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %+v: %v, want an error naming %q", len(tc.prompt), tc.o, err, tc.want)
		}
	}
	// Two deltas with an adapter at the same place have no defined order.
	ad := testAdapters(t, m)
	if _, err := NewGenerator(m, []*format.Delta{ad, ad}, 1); err == nil || !strings.Contains(err.Error(), "two adapters at") {
		t.Errorf("two adapters at one place: %v", err)
	}
	// Exactly filling the window is fine: 60 + 5 new, the last never fed back.
	if _, err := g.Generate(ctx, make([]int, 60), GenerateOptions{MaxNewTokens: 5}); err != nil {
		t.Fatal(err)
	}
}

// TestGenerate16SameBitsAsFloat32 checks that generating from a model
// held as BF16 or F16 bits (one-token products by kernels.GemvB16, prompt
// chunks by kernels.SgemmB16, no float32 copy) gives, at every step, the
// logits of generating from the float32 copy of the same weights (every
// product on the packed float32 weights) bit for bit: the prompt in two
// chunks, the last of one row, then one token at a time, for every
// architecture, with and without a LoRA, on 1 and 2 threads.
func TestGenerate16SameBitsAsFloat32(t *testing.T) {
	for _, ac := range archCases() {
		for _, dt := range []format.DType{format.BF16, format.F16} {
			for _, lora := range []bool{false, true} {
				for _, threads := range []int{1, 2} {
					m := archModel(ac)
					wide := to16(t, m, dt)
					var deltas []*format.Delta
					if lora {
						deltas = []*format.Delta{testLoRA(t, m, 3, 0.5)}
					}
					g16, err := NewGenerator(m, deltas, threads)
					if err != nil {
						t.Fatal(err)
					}
					g32, err := NewGenerator(wide, deltas, threads)
					if err != nil {
						t.Fatal(err)
					}
					ids := make([]int, 0, 80)
					for _, tk := range archTokens(80, ac.cfg.VocabSize) {
						ids = append(ids, int(tk))
					}
					if ac.cfg.SlidingWindow > 0 {
						ids = ids[:ac.cfg.SlidingWindow]
					}
					prompt := g16.chunk + 1
					c := m.Config
					newState := func(g *Generator) *decodeState {
						return &decodeState{rope: newRopeTable[float32](len(ids), c), cache: newKVCache(c.NumLayers, len(ids), g.chunk, c.NumKVHeads, c.HeadDim, threads)}
					}
					s16, s32 := newState(g16), newState(g32)
					for pos := 0; pos < len(ids); {
						n := 1
						if pos < prompt {
							n = min(g16.chunk, prompt-pos)
						}
						got := g16.step(s16, ids[pos:pos+n], pos)
						want := g32.step(s32, ids[pos:pos+n], pos)
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s %v lora=%v threads=%d: position %d (%d rows): logit %d = %v from the 16-bit weights, %v from their float32 copy",
									ac.name, dt, lora, threads, pos+n-1, n, i, got[i], want[i])
							}
						}
						pos += n
					}
				}
			}
		}
	}
}

// TestNewGenerator16NoFloat32Copy checks that a generator on a BF16 model
// multiplies by the model's own 16-bit bits: no projection or LM head is
// packed or widened, each linear layer aliases Model.Weights16, and
// NewGenerator allocates (activations, 14% here) less than a quarter of
// the float32 size of the weights: a float32 copy of the LM head alone is
// a third of it, the packed copy the generator used to make all of it.
func TestNewGenerator16NoFloat32Copy(t *testing.T) {
	c := Config{ModelType: "llama", HiddenSize: 256, IntermediateSize: 768, NumLayers: 3,
		NumHeads: 4, NumKVHeads: 2, HeadDim: 64, VocabSize: 8192, MaxPositions: 256,
		RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: false, InitializerRange: 0.02}
	m := NewRandomModel(c, nil, 1, "bf16-no-copy")
	to16(t, m, format.BF16)
	var elems int
	for _, b := range m.Weights16 {
		elems += len(b.Bits)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g, err := NewGenerator(m, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew, f32 := after.TotalAlloc-before.TotalAlloc, uint64(4*elems); grew > f32/4 {
		t.Errorf("NewGenerator allocated %d bytes, more than a quarter of the weights' float32 size %d", grew, f32)
	}
	nt := g.nt
	if nt.plm != nil || nt.lmHead != nil || nt.lm16.bits == nil || &nt.lm16.bits[0] != &m.Weights16["lm_head.weight"].Bits[0] {
		t.Error("the LM head is not read from Model.Weights16")
	}
	for _, b := range nt.blocks {
		for _, l := range []*linear[float32]{&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down} {
			if l.pw != nil || l.w != nil || len(l.h.bits) == 0 || &l.h.bits[0] != &m.Weights16[l.name+".weight"].Bits[0] {
				t.Errorf("%s: packed %v, float32 %v, not the model's bits", l.name, l.pw != nil, l.w != nil)
			}
		}
	}
	if _, err := g.Generate(context.Background(), []int{1, 2, 3}, GenerateOptions{MaxNewTokens: 3}); err != nil {
		t.Fatal(err)
	}
}
