package tokenizer

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/deltactl/deltactl/internal/testutil"
)

// benchText is 10 MB of English: tiny-shakespeare repeated.
func benchText(b *testing.B) string {
	raw, err := os.ReadFile(testutil.SharedData(b, "text/tinyshakespeare/input.txt"))
	if err != nil {
		b.Fatal(err)
	}
	const size = 10 << 20
	var sb strings.Builder
	for sb.Len() < size {
		sb.Write(raw)
	}
	return sb.String()[:size]
}

// BenchmarkEncodeLlama3 encodes 10 MB of English line by line with the Llama 3
// tokenizer on one core, and times the JS reference on the same text in the
// same run. It fails below 5 MB/s or below 3x the reference.
func BenchmarkEncodeLlama3(b *testing.B) {
	dir := realModel(b, "llama3")
	tok, err := Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	text := benchText(b)
	lines := strings.Split(text, "\n")
	file := filepath.Join(b.TempDir(), "english.txt")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	var js struct {
		Bytes      int     `json:"bytes"`
		Seconds    float64 `json:"seconds"`
		CPUSeconds float64 `json:"cpu_seconds"`
		Tokens     int     `json:"tokens"`
	}
	runOracle(b, map[string]any{"tokenizer": filepath.Join(dir, TokenizerFile), "config": filepath.Join(dir, ConfigFile), "bench_file": file, "rounds": 2}, &js)

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	start, startCPU := time.Now(), cpuTime()
	tokens := 0
	for range b.N {
		tokens = 0
		for _, l := range lines {
			tokens += len(tok.Encode(l, false))
		}
	}
	wall, cpu := time.Since(start).Seconds(), (cpuTime() - startCPU).Seconds()
	b.StopTimer()
	// Rates per CPU second: other jobs share this machine's cores, and wall
	// time would measure them too.
	mb := float64(len(text)) * float64(b.N) / 1e6
	goCPU, jsCPU := mb/cpu, float64(js.Bytes)/1e6/js.CPUSeconds
	b.ReportMetric(goCPU, "MB/cpu-s")
	b.ReportMetric(mb/wall, "MB/wall-s")
	b.ReportMetric(jsCPU, "js-MB/cpu-s")
	b.ReportMetric(float64(js.Bytes)/1e6/js.Seconds, "js-MB/wall-s")
	b.ReportMetric(goCPU/jsCPU, "x-js")
	if tokens != js.Tokens {
		b.Errorf("%d tokens, the JS reference %d", tokens, js.Tokens)
	}
	if goCPU < 5 || goCPU < 3*jsCPU {
		b.Errorf("%.1f MB per CPU second on one core, the JS reference %.1f: want at least 5 and 3x", goCPU, jsCPU)
	}
}

// BenchmarkEncode encodes 2 MB of English line by line with each real
// tokenizer (Go only), reporting MB per CPU second.
func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"llama3", "qwen3", "llama2"} {
		b.Run(name, func(b *testing.B) {
			tok, err := Load(realModel(b, name))
			if err != nil {
				b.Fatal(err)
			}
			text := benchText(b)[:2<<20]
			lines := strings.Split(text, "\n")
			b.SetBytes(int64(len(text)))
			b.ResetTimer()
			start := cpuTime()
			for range b.N {
				for _, l := range lines {
					tok.Encode(l, false)
				}
			}
			b.ReportMetric(float64(len(text))*float64(b.N)/1e6/(cpuTime()-start).Seconds(), "MB/cpu-s")
		})
	}
}
