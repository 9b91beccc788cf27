package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/deltactl/deltactl/format"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The training benchmarks run the workloads a PyTorch baseline was measured
// on: untied Llama-style decoder, vocab 256, seq 128, batch 8, N(0, 0.02) init,
// LoRA r=8 alpha=16 on q,k,v,o or full fine-tuning, AdamW lr 1e-3 wd 0.01,
// fresh uniform random bytes every step, 2 threads. One step is zero_grad +
// forward + loss + backward + AdamW step. Each case runs in a child process
// (this test binary re-executed) so that its peak RSS (VmHWM) is its own;
// tokens/s = batch·seq / median step time over the timed steps.
//
// PyTorch (OMP_WAIT_POLICY=PASSIVE) on the development machine: LoRA 6130 / 1130 tokens/s, full
// 4877 / 813 tokens/s; peak RSS 498 / 1222 MiB (LoRA), 496 / 1358 (full).

var benchConfigs = map[string]Config{
	"small":  {ModelType: "llama", HiddenSize: 256, IntermediateSize: 768, NumLayers: 4, NumHeads: 4, NumKVHeads: 4, HeadDim: 64, VocabSize: 256, MaxPositions: 128, RMSNormEps: 1e-5, RopeTheta: 10000, InitializerRange: 0.02},
	"medium": {ModelType: "llama", HiddenSize: 512, IntermediateSize: 1536, NumLayers: 8, NumHeads: 8, NumKVHeads: 8, HeadDim: 64, VocabSize: 256, MaxPositions: 128, RMSNormEps: 1e-5, RopeTheta: 10000, InitializerRange: 0.02},
}

const benchChildEnv = "DELTACTL_TRAIN_BENCH_CHILD"

type benchResult struct {
	TokensPerSec float64 `json:"tok_s"`
	StepMS       float64 `json:"step_ms"`
	PeakMiB      float64 `json:"peak_mib"`
	CPUMS        float64 `json:"cpu_ms"` // process CPU time per timed step (less sensitive to other load than wall time)
	FirstLoss    float64 `json:"first_loss"`
	LastLoss     float64 `json:"last_loss"`
}

func runTrainBench(b *testing.B, cfg string, method format.Method) {
	steps := "10"
	if s := os.Getenv("DELTACTL_BENCH_STEPS"); s != "" {
		steps = s
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTrainBenchChild$", "-test.v")
	cmd.Env = append(os.Environ(), benchChildEnv+"="+cfg+":"+string(method)+":"+steps, "GOMAXPROCS=2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child: %v\n%s", err, out)
	}
	var r benchResult
	found := false
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if l, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "RESULT "); ok {
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				b.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		b.Fatalf("no result from child:\n%s", out)
	}
	for i := 0; i < b.N; i++ {
	}
	b.ReportMetric(r.TokensPerSec, "tokens/s")
	b.ReportMetric(r.StepMS, "ms/step")
	b.ReportMetric(r.PeakMiB, "peak-MiB")
	b.ReportMetric(r.CPUMS, "cpu-ms/step")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s %s: %.0f tokens/s, %.1f ms/step (%.1f ms CPU), peak RSS %.0f MiB, loss %.3f -> %.3f", cfg, method, r.TokensPerSec, r.StepMS, r.CPUMS, r.PeakMiB, r.FirstLoss, r.LastLoss)
}

func BenchmarkTrainLoRASmall(b *testing.B)  { runTrainBench(b, "small", format.MethodLoRA) }
func BenchmarkTrainLoRAMedium(b *testing.B) { runTrainBench(b, "medium", format.MethodLoRA) }
func BenchmarkTrainFullSmall(b *testing.B)  { runTrainBench(b, "small", format.MethodFull) }
func BenchmarkTrainFullMedium(b *testing.B) { runTrainBench(b, "medium", format.MethodFull) }

// TestTrainBenchChild is the child half of the benchmarks; it does nothing
// unless started by one.
func TestTrainBenchChild(t *testing.T) {
	spec := os.Getenv(benchChildEnv)
	if spec == "" {
		t.Skip("only run as a benchmark child process")
	}
	parts := strings.Split(spec, ":")
	cfg, method := benchConfigs[parts[0]], format.Method(parts[1])
	steps, _ := strconv.Atoi(parts[2])
	m := NewRandomModel(cfg, cfg.JSON(), 0, "bench")
	o := DefaultOptions()
	o.Method, o.Batch, o.Seq, o.Threads = method, 8, 128, benchThreads()
	o.LoRA = LoRAOptions{Rank: 8, Alpha: 16, Targets: []string{"q_proj", "k_proj", "v_proj", "o_proj"}}
	o.WeightDecay, o.MaxGradNorm = 0.01, 0
	// o.sgemm left nil: prepare picks kernels.SgemmThreads, as Train
	// does. The random model is float32, so its frozen weights go through
	// the float32 GEMM, packed per product.
	if err := o.prepare(cfg); err != nil {
		t.Fatal(err)
	}
	reps, err := newReplicas(m, &o)
	if err != nil {
		t.Fatal(err)
	}
	opt := newAdamW(reps.params(), o.WeightDecay)
	n := o.Batch * o.Seq
	tokens, targets := make([]int32, n), make([]int32, n)
	row := make([]int32, o.Seq+1)
	var times []float64
	var first, last float64
	var cpu0 float64
	for s := 0; s < 3+steps; s++ {
		if s == 3 {
			cpu0 = cpuSeconds()
		}
		for b := 0; b < o.Batch; b++ {
			for i := range row {
				row[i] = int32(splitmix64(uint64(1234+s*1000003+b*7919+i)) % 256)
			}
			copy(tokens[b*o.Seq:], row[:o.Seq])
			copy(targets[b*o.Seq:], row[1:])
		}
		t0 := time.Now()
		reps.zeroGrads()
		sum, cnt := reps.step(tokens, targets, 1/float64(n), 1)
		reps.reduceGrads()
		opt.update(o.Threads, reps.params(), o.LR)
		if s >= 3 {
			times = append(times, time.Since(t0).Seconds())
		}
		if s == 0 {
			first = sum / float64(cnt)
		}
		last = sum / float64(cnt)
	}
	slices.Sort(times)
	med := times[len(times)/2]
	cpu := (cpuSeconds() - cpu0) / float64(steps)
	r := benchResult{TokensPerSec: float64(n) / med, StepMS: med * 1e3, PeakMiB: vmHWM(), CPUMS: cpu * 1e3, FirstLoss: first, LastLoss: last}
	js, _ := json.Marshal(r)
	fmt.Printf("RESULT %s\n", js)
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// vmHWM is the process's peak resident set size in MiB.
func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// benchThreads is the benchmark's thread count: 2 (the workload's), or
// DELTACTL_BENCH_THREADS to see how the step scales.
func benchThreads() int {
	if n, err := strconv.Atoi(os.Getenv("DELTACTL_BENCH_THREADS")); err == nil && n > 0 {
		return n
	}
	return 2
}
