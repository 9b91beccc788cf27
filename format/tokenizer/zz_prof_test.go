package tokenizer

import (
	"strings"
	"testing"
)

func BenchmarkProf(b *testing.B) {
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
