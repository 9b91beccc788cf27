package merge

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/deltactl/deltactl/kernels"
)

// roundRef rounds x to nearest even in dtype d, chosen among neighbouring
// candidates by exact float64 distance (independent of encode's rounding).
func roundRef(x float64, d format.DType) float32 {
	if d == format.F32 {
		return float32(x) // Go's conversion is round-to-nearest-even
	}
	var cands []float32
	switch d {
	case format.BF16:
		t := math.Float32bits(float32(x)) &^ 0xffff
		for _, b := range []uint32{t - 0x10000, t, t + 0x10000} {
			cands = append(cands, math.Float32frombits(b))
		}
	case format.F16:
		h := kernels.F16FromF32(float32(x))
		for _, b := range []uint16{h - 1, h, h + 1} {
			cands = append(cands, kernels.F32FromF16(b))
		}
	}
	best := cands[1]
	for _, c := range cands {
		dc, db := math.Abs(float64(c)-x), math.Abs(float64(best)-x)
		if dc < db || (dc == db && evenIn(c, d) && !evenIn(best, d)) {
			best = c
		}
	}
	return best
}

func evenIn(v float32, d format.DType) bool {
	if d == format.BF16 {
		return (math.Float32bits(v)>>16)&1 == 0
	}
	return kernels.F16FromF32(v)&1 == 0
}

func randVals(n int, scale float64, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	return v
}

func tensorOf(t *testing.T, name string, dt format.DType, shape []int64, v []float32) *format.Tensor {
	t.Helper()
	x := &format.Tensor{Name: name, DType: dt, Shape: shape, Data: make([]byte, len(v)*dt.Size())}
	if err := encode(x.Data, v, dt); err != nil {
		t.Fatal(err)
	}
	return x
}

func valsOf(t *testing.T, x *format.Tensor) []float32 {
	t.Helper()
	v, err := tensorF32(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// writeModel writes tensors as a 2-shard HF folder with an index and a config.
func writeModel(t *testing.T, dir string, shards [][]*format.Tensor) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wm := map[string]string{}
	for i, ts := range shards {
		name := "model-0000" + string(rune('1'+i)) + "-of-0000" + string(rune('0'+len(shards))) + ".safetensors"
		if err := safetensors.WriteFile(context.Background(), filepath.Join(dir, name), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		for _, x := range ts {
			wm[x.Name] = name
		}
	}
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": wm})
	if err := os.WriteFile(filepath.Join(dir, hf.IndexName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"test"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The synthetic model: out×inF linear layers, a 50-entry embedding, rank r.
const synthOut, synthCols, synthRank = 24, 40, 4

// synthetic builds a base in dtype dt and a delta exercising every update
// kind, and returns the float64 reference of the merged values.
func synthetic(t *testing.T, dt format.DType, w float64) (shards [][]*format.Tensor, in Input, ref map[string][]float64) {
	shards, ref = syntheticBase(t, dt)
	v := newSynthVals()
	v.addTo(ref, w)
	return shards, Input{Name: "synthetic", Delta: v.delta(t), Weight: w}, ref
}

// syntheticBase returns the base's shards in dtype dt and their stored
// values in float64.
func syntheticBase(t *testing.T, dt format.DType) (shards [][]*format.Tensor, ref map[string][]float64) {
	const out, inF = synthOut, synthCols
	base := map[string][]float32{
		"lin.weight":  randVals(out*inF, 0.5, 1),
		"lin.bias":    randVals(out, 0.5, 2),
		"conv.weight": randVals(inF*out, 0.5, 3), // fan_in_fan_out: [in, out]
		"emb.weight":  randVals(50*out, 1, 4),    // [num_emb, dim]
		"ia3.weight":  randVals(out*inF, 0.5, 5),
		"ia3.bias":    randVals(out, 0.5, 6),
		"ff.weight":   randVals(out*inF, 0.5, 7),
		"dora.weight": randVals(out*inF, 0.5, 8),
		"head.weight": randVals(3*out, 0.5, 9),
		"norm.weight": randVals(out, 0.5, 10),
	}
	shapes := map[string][]int64{
		"lin.weight": {out, inF}, "lin.bias": {out}, "conv.weight": {inF, out}, "emb.weight": {50, out},
		"ia3.weight": {out, inF}, "ia3.bias": {out}, "ff.weight": {out, inF}, "dora.weight": {out, inF},
		"head.weight": {3, out}, "norm.weight": {out},
	}
	order := [][]string{{"lin.weight", "lin.bias", "conv.weight", "emb.weight", "norm.weight"}, {"ia3.weight", "ia3.bias", "ff.weight", "dora.weight", "head.weight"}}
	stored := map[string][]float64{}
	for si, names := range order {
		shards = append(shards, nil)
		for _, n := range names {
			x := tensorOf(t, n, dt, shapes[n], base[n])
			shards[si] = append(shards[si], x)
			v := valsOf(t, x)
			stored[n] = make([]float64, len(v))
			for i := range v {
				stored[n][i] = float64(v[i])
			}
		}
	}
	ref = map[string][]float64{}
	for n, v := range stored {
		ref[n] = append([]float64(nil), v...)
	}
	return shards, ref
}

// synthVals are the delta's values.
type synthVals struct {
	la, lb, lbias []float32 // plain LoRA with bias
	ca, cb        []float32 // fan_in_fan_out LoRA: A [r, in], B [out, r], W stored [in, out]
	ea, eb        []float32 // embedding: A [r, num_emb], B [dim, r], W [num_emb, dim]
	da, db, dm    []float32 // DoRA
	ia3v, ffv     []float32 // IA3 on outputs, on inputs (feed-forward)
	head          []float32 // modules_to_save
}

func newSynthVals() *synthVals {
	const out, inF, r = synthOut, synthCols, synthRank
	v := &synthVals{
		la: randVals(r*inF, 0.3, 11), lb: randVals(out*r, 0.3, 12), lbias: randVals(out, 0.3, 13),
		ca: randVals(r*inF, 0.3, 14), cb: randVals(out*r, 0.3, 15),
		ea: randVals(r*50, 0.3, 16), eb: randVals(out*r, 0.3, 17),
		da: randVals(r*inF, 0.3, 18), db: randVals(out*r, 0.3, 19), dm: randVals(out, 1, 20),
		ia3v: randVals(out, 0.2, 21), ffv: randVals(inF, 0.2, 22),
		head: randVals(3*out, 0.5, 23),
	}
	for i := range v.dm {
		v.dm[i] = float32(math.Abs(float64(v.dm[i]))) + 0.5
	}
	for i := range v.ia3v {
		v.ia3v[i] += 1
	}
	for i := range v.ffv {
		v.ffv[i] += 1
	}
	return v
}

// synthScale is the LoRA scale s of the synthetic delta.
const synthScale = 0.75

// delta is the synthetic delta.
func (v *synthVals) delta(t *testing.T) *format.Delta {
	const out, inF, r, s = synthOut, synthCols, synthRank, synthScale
	f32 := func(name string, shape []int64, x []float32) *format.Tensor {
		return tensorOf(t, name, format.F32, shape, x)
	}
	return &format.Delta{Method: format.MethodLoRA,
		LoRA: []*format.LoRA{
			{Target: "lin.weight", A: f32("a", []int64{r, inF}, v.la), B: f32("b", []int64{out, r}, v.lb), Bias: f32("bias", []int64{out}, v.lbias), Scale: s},
			{Target: "conv.weight", A: f32("a", []int64{r, inF}, v.ca), B: f32("b", []int64{out, r}, v.cb), Scale: s, FanInFanOut: true},
			{Target: "emb.weight", A: f32("a", []int64{r, 50}, v.ea), B: f32("b", []int64{out, r}, v.eb), Scale: s, Embedding: true},
			{Target: "dora.weight", A: f32("a", []int64{r, inF}, v.da), B: f32("b", []int64{out, r}, v.db), Scale: s, Magnitude: f32("m", []int64{out}, v.dm)},
		},
		IA3: []*format.IA3{
			{Target: "ia3.weight", Vector: f32("l", []int64{out, 1}, v.ia3v)},
			{Target: "ff.weight", Vector: f32("l", []int64{1, inF}, v.ffv), FeedForward: true},
		},
		Replace: []*format.Tensor{f32("head.weight", []int64{3, out}, v.head)},
	}
}

// addTo applies the delta with weight w to the float64 reference ref.
func (v *synthVals) addTo(ref map[string][]float64, w float64) {
	const out, inF, r, s = synthOut, synthCols, synthRank, synthScale
	la, lb, lbias, ca, cb, ea, eb := v.la, v.lb, v.lbias, v.ca, v.cb, v.ea, v.eb
	db, da, dm, ia3v, ffv, head := v.db, v.da, v.dm, v.ia3v, v.ffv, v.head
	ba := func(b, a []float32, o, i, k int) func(p, q int) float64 { // (B·A)[p][q]
		return func(p, q int) float64 {
			var sum float64
			for t := 0; t < k; t++ {
				sum += float64(b[p*k+t]) * float64(a[t*i+q])
			}
			return sum
		}
	}
	c := w * s
	lin := ba(lb, la, out, inF, r)
	for p := 0; p < out; p++ {
		for q := 0; q < inF; q++ {
			ref["lin.weight"][p*inF+q] += c * lin(p, q)
		}
		ref["lin.bias"][p] += c * float64(lbias[p])
	}
	conv := ba(cb, ca, out, inF, r)
	for q := 0; q < inF; q++ {
		for p := 0; p < out; p++ {
			ref["conv.weight"][q*out+p] += c * conv(p, q)
		}
	}
	emb := ba(eb, ea, out, 50, r)
	for e := 0; e < 50; e++ {
		for p := 0; p < out; p++ {
			ref["emb.weight"][e*out+p] += c * emb(p, e)
		}
	}
	dora := ba(db, da, out, inF, r)
	for p := 0; p < out; p++ {
		var nn float64
		for q := 0; q < inF; q++ {
			ref["dora.weight"][p*inF+q] += c * dora(p, q)
			nn += ref["dora.weight"][p*inF+q] * ref["dora.weight"][p*inF+q]
		}
		for q := 0; q < inF; q++ {
			ref["dora.weight"][p*inF+q] *= float64(dm[p]) / math.Sqrt(nn)
		}
	}
	for p := 0; p < out; p++ {
		l := 1 + w*(float64(ia3v[p])-1)
		for q := 0; q < inF; q++ {
			ref["ia3.weight"][p*inF+q] *= l
			ref["ff.weight"][p*inF+q] *= 1 + w*(float64(ffv[q])-1)
		}
		ref["ia3.bias"][p] *= l
	}
	for i := range head {
		h := float64(float32(head[i]))
		ref["head.weight"][i] += w * (h - ref["head.weight"][i])
	}
}

func ulpDiff(a, b float32, d format.DType) int {
	enc := func(v float32) int64 {
		var bits int64
		switch d {
		case format.F32:
			bits = int64(math.Float32bits(v))
			if bits&(1<<31) != 0 {
				bits = -(bits &^ (1 << 31))
			}
		case format.BF16:
			bits = int64(math.Float32bits(v) >> 16)
			if bits&(1<<15) != 0 {
				bits = -(bits &^ (1 << 15))
			}
		case format.F16:
			bits = int64(kernels.F16FromF32(v))
			if bits&(1<<15) != 0 {
				bits = -(bits &^ (1 << 15))
			}
		}
		return bits
	}
	x := enc(a) - enc(b)
	if x < 0 {
		x = -x
	}
	return int(x)
}

func TestMergeMatchesFloat64AndUnmergeIsExact(t *testing.T) {
	for _, dt := range []format.DType{format.BF16, format.F16, format.F32} {
		for _, w := range []float64{1, 0.6} {
			t.Run(dt.String(), func(t *testing.T) {
				dir := t.TempDir()
				shards, in, ref := synthetic(t, dt, w)
				writeModel(t, filepath.Join(dir, "base"), shards)
				base, err := OpenFolder(filepath.Join(dir, "base"))
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = base.Close() }() // read-only mapping
				rep, err := Merge(context.Background(), base, []Input{in}, filepath.Join(dir, "merged"), MergeOptions{Correction: true})
				if err != nil {
					t.Fatal(err)
				}
				if rep.Shards != 2 || len(rep.Files) != 1 || len(rep.Merged) != 9 {
					t.Errorf("report %+v", rep)
				}
				m, err := OpenFolder(filepath.Join(dir, "merged"))
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = m.Close() }() // read-only mapping
				total, off := 0, 0
				for name, want := range ref {
					x, err := m.Tensor(name)
					if err != nil {
						t.Fatal(err)
					}
					if x.DType != dt {
						t.Fatalf("%s: dtype %s", name, x.DType)
					}
					got := valsOf(t, x)
					big := 0.0
					for _, v := range want {
						big = math.Max(big, math.Abs(v))
					}
					for i := range got {
						total++
						if dt == format.F32 {
							// f32 accumulation: error relative to the tensor's scale
							if e := math.Abs(float64(got[i]) - want[i]); e > 1e-6*big {
								t.Fatalf("%s[%d]: got %g, want %g", name, i, got[i], want[i])
							}
							continue
						}
						u := ulpDiff(got[i], roundRef(want[i], dt), dt)
						if u > 1 {
							t.Fatalf("%s[%d]: got %g, want %g (%d ulp)", name, i, got[i], want[i], u)
						}
						if u != 0 {
							off++
						}
					}
				}
				if dt != format.F32 && float64(off) > 0.01*float64(total) {
					t.Errorf("%d of %d elements differ from RNE of the exact result", off, total)
				}
				// exact unmerge
				urep, err := Unmerge(context.Background(), m, []Input{in}, filepath.Join(dir, "unmerged"))
				if err != nil {
					t.Fatal(err)
				}
				if !urep.Exact {
					t.Error("not reported exact")
				}
				for _, ts := range shards {
					for _, x := range ts {
						u, err := OpenFolder(filepath.Join(dir, "unmerged"))
						if err != nil {
							t.Fatal(err)
						}
						y, err := u.Tensor(x.Name)
						if err != nil {
							t.Fatal(err)
						}
						if y.DType != x.DType || string(y.Data) != string(x.Data) {
							t.Errorf("%s: unmerge is not bit-identical", x.Name)
						}
						_ = u.Close() // read-only mapping
					}
				}
				// a different weight must not use this correction
				in2 := in
				in2.Weight = w + 1
				if _, err := Unmerge(context.Background(), m, []Input{in2}, filepath.Join(dir, "bad")); !errors.Is(err, ErrCorrection) {
					t.Errorf("correction for other weights accepted: %v", err)
				}
				if _, err := os.Stat(filepath.Join(dir, "bad")); err == nil {
					t.Error("failed unmerge left an output folder")
				}
			})
		}
	}
}

func TestUnmergeApproximateBound(t *testing.T) {
	dir := t.TempDir()
	shards, in, _ := synthetic(t, format.BF16, 1)
	// only the additive and IA3 parts: DoRA and replacements need a correction
	d := *in.Delta
	d.LoRA = d.LoRA[:3]
	d.Replace = nil
	in.Delta = &d
	writeModel(t, filepath.Join(dir, "base"), shards)
	base, _ := OpenFolder(filepath.Join(dir, "base"))
	defer func() { _ = base.Close() }() // read-only mapping
	if _, err := Merge(context.Background(), base, []Input{in}, filepath.Join(dir, "merged"), MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	m, _ := OpenFolder(filepath.Join(dir, "merged"))
	defer func() { _ = m.Close() }() // read-only mapping
	rep, err := Unmerge(context.Background(), m, []Input{in}, filepath.Join(dir, "un"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Exact || rep.MaxAbsErr <= 0 {
		t.Fatalf("report %+v", rep)
	}
	u, _ := OpenFolder(filepath.Join(dir, "un"))
	defer func() { _ = u.Close() }() // read-only mapping
	worst := 0.0
	for _, ts := range shards {
		for _, x := range ts {
			y, _ := u.Tensor(x.Name)
			a, b := valsOf(t, x), valsOf(t, y)
			for i := range a {
				worst = math.Max(worst, math.Abs(float64(a[i])-float64(b[i])))
			}
		}
	}
	if worst > rep.MaxAbsErr*1.0001 {
		t.Errorf("measured error %g exceeds the reported bound %g", worst, rep.MaxAbsErr)
	}
	// DoRA without correction is refused
	full := synthIn(t)
	if _, err := Unmerge(context.Background(), m, []Input{full}, filepath.Join(dir, "x")); !errors.Is(err, ErrCorrection) {
		t.Errorf("DoRA unmerge without correction: %v", err)
	}
}

func synthIn(t *testing.T) Input {
	_, in, _ := synthetic(t, format.BF16, 1)
	return in
}

func TestMergeRefusals(t *testing.T) {
	dir := t.TempDir()
	shards, in, _ := synthetic(t, format.BF16, 1)
	writeModel(t, filepath.Join(dir, "base"), shards)
	base, _ := OpenFolder(filepath.Join(dir, "base"))
	defer func() { _ = base.Close() }() // read-only mapping
	bad := Input{Name: "adapters", Weight: 1, Delta: &format.Delta{Adapters: []*format.Adapter{{Placement: "layers.0.mlp"}}}}
	if _, err := Merge(context.Background(), base, []Input{in, bad}, filepath.Join(dir, "o"), MergeOptions{}); !errors.Is(err, ErrNotMergeable) {
		t.Errorf("bottleneck adapter: %v", err)
	}
	wrong := *in.Delta.LoRA[0]
	wrong.A = tensorOf(t, "a", format.F32, []int64{4, 41}, randVals(4*41, 1, 1))
	_, err := Merge(context.Background(), base, []Input{{Name: "w", Weight: 1, Delta: &format.Delta{LoRA: []*format.LoRA{&wrong}}}}, filepath.Join(dir, "o"), MergeOptions{})
	if !errors.Is(err, format.ErrShape) || !strings.Contains(err.Error(), `"lin.weight"`) || !strings.Contains(err.Error(), "[24,40]") || !strings.Contains(err.Error(), "[24,41]") {
		t.Errorf("shape mismatch: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "o")); err == nil {
		t.Error("failed merge left an output folder")
	}
}

// gpt2LoRA reads the real TRL GPT-2 LoRA (fan_in_fan_out, r=16, alpha=16)
// without format/peft: test-only, from its safetensors and config.
func gpt2LoRA(t *testing.T) *format.Delta {
	dir := testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_final")
	var cfg struct {
		R           int     `json:"r"`
		Alpha       float64 `json:"lora_alpha"`
		FanInFanOut bool    `json:"fan_in_fan_out"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() }) // read-only mapping
	d := &format.Delta{Method: format.MethodLoRA}
	for _, ti := range f.Infos() {
		if !strings.HasSuffix(ti.Name, ".lora_A.weight") {
			continue
		}
		mod := strings.TrimSuffix(strings.TrimPrefix(ti.Name, "base_model.model."), ".lora_A.weight")
		a, _ := f.Tensor(ti.Name)
		bb, err := f.Tensor(strings.Replace(ti.Name, "lora_A", "lora_B", 1))
		if err != nil {
			t.Fatal(err)
		}
		d.LoRA = append(d.LoRA, &format.LoRA{Target: mod + ".weight", A: a, B: bb, Scale: cfg.Alpha / float64(cfg.R), FanInFanOut: cfg.FanInFanOut})
	}
	if len(d.LoRA) != 12 || !cfg.FanInFanOut || cfg.R != 16 {
		t.Fatalf("unexpected adapter: %d modules, config %+v", len(d.LoRA), cfg)
	}
	return d
}

func TestMergeRealGPT2LoRA(t *testing.T) {
	d := gpt2LoRA(t)
	dir := t.TempDir()
	var ts []*format.Tensor
	base := map[string][]float32{}
	for n := 0; n < 12; n++ {
		name := "h." + itoa(n) + ".attn.c_attn.weight"
		v := randVals(768*2304, 0.02, uint64(100+n))
		base[name] = v
		ts = append(ts, tensorOf(t, name, format.F32, []int64{768, 2304}, v))
	}
	ts = append(ts, tensorOf(t, "wte.weight", format.F32, []int64{10, 768}, randVals(7680, 0.02, 1)))
	writeModel(t, filepath.Join(dir, "base"), [][]*format.Tensor{ts})
	b, err := OpenFolder(filepath.Join(dir, "base"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }() // read-only mapping
	if _, err := Merge(context.Background(), b, []Input{{Name: "trl_kto_lora_gpt2_final", Delta: d, Weight: 1}}, filepath.Join(dir, "m"), MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	m, _ := OpenFolder(filepath.Join(dir, "m"))
	defer func() { _ = m.Close() }() // read-only mapping
	// float64 reference W + s·(B@A)ᵀ on two layers (every element)
	for _, l := range []*format.LoRA{d.LoRA[0], d.LoRA[11]} {
		name := strings.TrimPrefix(l.Target, "transformer.")
		A, B := valsOf(t, l.A), valsOf(t, l.B)
		x, err := m.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		got := valsOf(t, x)
		w := base[name]
		maxRel := 0.0
		for i := 0; i < 768; i++ {
			for j := 0; j < 2304; j++ {
				var s float64
				var mag float64
				for k := 0; k < 16; k++ {
					p := float64(B[j*16+k]) * float64(A[k*768+i])
					s += p
					mag += math.Abs(p)
				}
				want := float64(w[i*2304+j]) + l.Scale*s
				e := math.Abs(float64(got[i*2304+j]) - want)
				scale := math.Abs(want) + l.Scale*mag
				if e > 4e-7*scale+1e-12 {
					t.Fatalf("%s[%d,%d]: got %g want %g", name, i, j, got[i*2304+j], want)
				}
				maxRel = math.Max(maxRel, e/scale)
			}
		}
		t.Logf("%s: max error / (|W'|+Σ|terms|) = %.2g", name, maxRel)
	}
}

func TestMergeRefusesTinyGPT2(t *testing.T) {
	d := gpt2LoRA(t)
	b, err := OpenFolder(testutil.SharedData(t, "models/lm-buddy-tiny_gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }() // read-only mapping
	out := filepath.Join(t.TempDir(), "m")
	_, err = Merge(context.Background(), b, []Input{{Name: "trl_kto_lora_gpt2_final", Delta: d, Weight: 1}}, out, MergeOptions{})
	if !errors.Is(err, format.ErrShape) {
		t.Fatalf("want a shape error, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"h.0.attn.c_attn.weight", "[2,6]", "[768,2304]"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	t.Log(msg)
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return string(rune('0'+n/10)) + string(rune('0'+n%10))
}
