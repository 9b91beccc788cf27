package train

import (
	"github.com/deltactl/deltactl/format"
	"math"
	"testing"
)

// TestReplicasMatchOneNet checks that a step split over data-parallel
// replicas gives the loss and summed gradients of one network on the whole
// batch (up to float32 summation order), that the replicas share parameter
// values, and that repeating the step gives identical bits.
func TestReplicasMatchOneNet(t *testing.T) {
	cfg := Config{ModelType: "llama", HiddenSize: 32, IntermediateSize: 64, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 8, VocabSize: 256, MaxPositions: 16, RMSNormEps: 1e-5, RopeTheta: 10000, InitializerRange: 0.02}
	for _, method := range []format.Method{format.MethodLoRA, format.MethodAdapter, format.MethodFull} {
		t.Run(string(method), func(t *testing.T) {
			run := func(threads int) ([]param[float32], float64, *replicas) {
				o := DefaultOptions()
				o.Method, o.Batch, o.Seq, o.Threads = method, 5, 16, threads
				o.LoRA = LoRAOptions{Rank: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj", "o_proj", "up_proj"}}
				o.Adapter.Size = 8
				n := o.Batch * o.Seq
				tok, tgt := randomTokens(n, 0), randomTokens(n, 999)
				tgt[7] = ignoreIndex
				fill := func(i, j int) float32 { return float32(math.Sin(float64(i*131+j))) * 0.05 }
				return replicaStep(t, cfg, o, 3, fill, tok, tgt, 1/float64(n-1))
			}
			one, l1, _ := run(1)
			two, l2, r2 := run(2)
			if len(r2.nets) != 2 {
				t.Fatalf("%d replicas for 2 threads, want 2", len(r2.nets))
			}
			for i := range r2.nets[1].params {
				if &r2.nets[1].params[i].w[0] != &r2.nets[0].params[i].w[0] {
					t.Fatalf("replica 1 parameter %s does not share replica 0's values", r2.nets[1].params[i].name)
				}
			}
			if math.Abs(l1-l2) > 1e-6*math.Abs(l1) {
				t.Fatalf("loss %v on one net, %v on two replicas", l1, l2)
			}
			for i := range one {
				var num, den float64
				for j := range one[i].g {
					d := float64(one[i].g[j] - two[i].g[j])
					num += d * d
					den += float64(one[i].g[j]) * float64(one[i].g[j])
				}
				if den == 0 || math.Sqrt(num/den) > 1e-4 {
					t.Fatalf("%s: gradient differs between one net and two replicas: rel %g (norm² %g)", one[i].name, math.Sqrt(num/max(den, 1e-300)), den)
				}
			}
			again, l3, _ := run(2)
			if l3 != l2 {
				t.Fatalf("loss not reproducible: %v then %v", l2, l3)
			}
			for i := range again {
				for j := range again[i].g {
					if math.Float32bits(again[i].g[j]) != math.Float32bits(two[i].g[j]) {
						t.Fatalf("%s[%d]: gradient not reproducible", again[i].name, j)
					}
				}
			}
		})
	}
}

// replicaStep builds o's replicas on a random model of cfg drawn with
// modelSeed, sets every zero parameter (LoRA B, adapter up) to fill(i, j)
// so that every gradient is exercised, and runs one step of tok and tgt
// with the loss scaled by scale. It returns the parameters with their
// summed gradients, the mean loss and the replicas.
func replicaStep(t *testing.T, cfg Config, o Options, modelSeed uint64, fill func(i, j int) float32, tok, tgt []int32, scale float64) ([]param[float32], float64, *replicas) {
	t.Helper()
	return replicaStepOn(t, NewRandomModel(cfg, cfg.JSON(), modelSeed, "test"), o, fill, tok, tgt, scale)
}

// replicaStepOn is replicaStep on the model m.
func replicaStepOn(t *testing.T, m *Model, o Options, fill func(i, j int) float32, tok, tgt []int32, scale float64) ([]param[float32], float64, *replicas) {
	t.Helper()
	cfg := m.Config
	if err := o.prepare(cfg); err != nil {
		t.Fatal(err)
	}
	r, err := newReplicas(m, &o)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range r.params() {
		for j := range p.w {
			if p.w[j] == 0 {
				p.w[j] = fill(i, j)
			}
		}
	}
	r.zeroGrads()
	s, c := r.step(tok, tgt, scale, 1)
	r.reduceGrads()
	return r.params(), s / float64(c), r
}

// randomTokens is n byte tokens drawn from key.
func randomTokens(n int, key uint64) []int32 {
	v := make([]int32, n)
	for i := range v {
		v[i] = int32(splitmix64(uint64(i)+key) % 256)
	}
	return v
}
