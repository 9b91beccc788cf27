package train

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/kernels"
)

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru) // cannot fail for RUSAGE_SELF
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// smolLM2Config is the shape of SmolLM2-135M (HuggingFaceTB/SmolLM2-135M
// config.json): hidden 576, MLP 1536, 30 layers, 9 heads on 3 key/value
// heads of 64, vocab 49152, tied embeddings, theta 100000.
var smolLM2Config = Config{ModelType: "llama", HiddenSize: 576, IntermediateSize: 1536, NumLayers: 30,
	NumHeads: 9, NumKVHeads: 3, HeadDim: 64, VocabSize: 49152, MaxPositions: 8192,
	RMSNormEps: 1e-5, RopeTheta: 100000, TieWordEmbeddings: true, InitializerRange: 0.041666666666666664}

// BenchmarkGenerateSmolLM2 decodes 64 tokens greedily after a 32-token
// prompt on the SmolLM2-135M shape with random weights (float32, 2
// threads) and reports the decoding rate (one-token forward passes over
// the cache, as GenerateResult.TokensPerSecond), the prompt's rate, and
// the process CPU time per generated token (prompt included), which the
// load of other processes on a shared machine disturbs less than wall time.
//
// Measured 2026-12-07 on the shared 2-core machine. At a load average of
// ~1.5: 19.6 tokens/s decoding, 320 prompt tokens/s, 72 CPU ms per
// generated token; without the cache (BenchmarkGenerateSmolLM2NoCache)
// 2.8 tokens/s. At a load of ~15 (six engineers' tests): 6.9-9.8 tokens/s.
// Peak RSS 911 MiB: the float32 weights (540 MB) and their packed copy.
// Decoding reads every weight once per token, so it is bound by memory
// bandwidth (540 MB × 19.6/s ≈ 10.6 GB/s).
//
// Against llama.cpp on the same weights, scripts/bench-generate.sh (the
// same shape with a 32000-token vocabulary, F32 GGUF from deltactl export,
// llama.cpp through node-llama-cpp 3.21.1's prebuilt CPU build, load
// ~1.6): llama.cpp 23.2-23.9 tokens/s on 1 thread and 28.7-29.6 on 2,
// deltactl 17.7-18.5 and 20.8-20.9, with the same 41 greedy ids. PyTorch
// is not installed on this machine.
//
//	go test -run '^$' -bench GenerateSmolLM2 -benchtime 3x ./train/
func BenchmarkGenerateSmolLM2(b *testing.B) {
	benchGenerate(b, NewRandomModel(smolLM2Config, nil, 1, "smollm2-shape"))
}

// BenchmarkGenerateSmolLM2BF16 is BenchmarkGenerateSmolLM2 with the weights
// held as BF16 bits, as a BF16 model folder loads: one-token products by
// kernels.GemvB16, no float32 copy. It reads half the bytes per token.
// Measured 2026-12-07 (load ~3): 22 tokens/s with the first GemvB16
// kernel, 24 with prefetching. `deltactl generate` on the SmolLM2-135M
// BF16 shape with the final kernel: 25-26 CPU ms per decoded token on one
// thread (61 with the packed float32 copy; llama.cpp on the BF16 GGUF 29),
// 315 MiB peak RSS (1,027 MiB).
func BenchmarkGenerateSmolLM2BF16(b *testing.B) {
	m := NewRandomModel(smolLM2Config, nil, 1, "smollm2-shape")
	m.Weights16 = map[string]Bits16{}
	for name, v := range m.Weights {
		if strings.HasSuffix(name, "norm.weight") {
			continue
		}
		h := Bits16{DType: format.BF16, Bits: make([]uint16, len(v))}
		kernels.F32ToBF16(h.Bits, v)
		m.Weights16[name] = h
		delete(m.Weights, name)
	}
	benchGenerate(b, m)
}

func benchGenerate(b *testing.B, m *Model) {
	g, err := NewGenerator(m, nil, 2)
	if err != nil {
		b.Fatal(err)
	}
	prompt := make([]int, 32)
	for i := range prompt {
		prompt[i] = int(splitmix64(uint64(i)) % uint64(smolLM2Config.VocabSize))
	}
	var tps, pps float64
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		c0 := cpuTime()
		r, err := g.Generate(context.Background(), prompt, GenerateOptions{MaxNewTokens: 64})
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		tps += r.TokensPerSecond
		pps += float64(len(prompt)) / r.Prefill.Seconds()
	}
	b.ReportMetric(tps/float64(b.N), "tok/s")
	b.ReportMetric(pps/float64(b.N), "prompt-tok/s")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(64*b.N), "cpu-ms/tok")
}

// BenchmarkGenerateSmolLM2NoCache is the same greedy generation without the
// cache: every new token reruns the full forward pass (Evaluate's) over the
// prompt and the tokens so far, and takes the argmax of its last row. It is
// what the cache saves.
func BenchmarkGenerateSmolLM2NoCache(b *testing.B) {
	m := NewRandomModel(smolLM2Config, nil, 1, "smollm2-shape")
	V := smolLM2Config.VocabSize
	var tps float64
	b.ResetTimer()
	for range b.N {
		toks := make([]int32, 32, 96)
		for i := range toks {
			toks[i] = int32(splitmix64(uint64(i)) % uint64(V))
		}
		start := time.Now()
		for range 64 {
			nt, err := newNet[float32](m, netSpec{B: 1, T: len(toks), threads: 2}, kernels.SgemmThreads)
			if err != nil {
				b.Fatal(err)
			}
			nt.forward(toks, false, 0)
			last := nt.logits[(len(toks)-1)*V:]
			best := 0
			for i, v := range last {
				if v > last[best] {
					best = i
				}
			}
			toks = append(toks, int32(best))
		}
		tps += 64 / time.Since(start).Seconds()
	}
	b.ReportMetric(tps/float64(b.N), "tok/s")
}
