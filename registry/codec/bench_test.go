package codec

import (
	"sync"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user+system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru) // RUSAGE_SELF with a valid pointer cannot fail
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs fn b.N times and also reports MB/s per CPU-second ("cpuMB/s"),
// which stays meaningful when the machine is shared and wall time is not.
func loop(b *testing.B, bytes int, fn func()) {
	b.SetBytes(int64(bytes))
	c0 := cpuTime()
	n := 0
	for b.Loop() {
		fn()
		n++
	}
	if cpu := cpuTime() - c0; cpu > 0 {
		b.ReportMetric(float64(bytes)*float64(n)/1e6/cpu.Seconds(), "cpuMB/s")
	}
}

// benchMiB is the size of the benchmark weights, as in the issue (64 MiB).
const benchMiB = 64

var benchData = sync.OnceValues(func() (bf16, f32 []byte) {
	return bf16Weights(benchMiB<<20/2, 0), f32Weights(benchMiB<<20/4, 0)
})

// BenchmarkCodec compares plain zstd (levels 1, 3 and 7 of klauspost/zstd)
// with the byte-grouped encoding on 64 MiB of N(0, 0.02) weights in bf16
// (as bench_io.py makes them) and f32. It reports encode or decode speed
// (MB/s of raw bytes, one goroutine) and ratio = frame size / raw size.
// The zstd CLI at -1 reaches 0.7798 of raw on the bf16 data (BASELINES g).
func BenchmarkCodec(b *testing.B) {
	bf16, f32 := benchData()
	c := newCodec(b)
	type cand struct {
		name  string
		h     Header
		level int
	}
	for _, in := range []struct {
		name string
		data []byte
		elem int
	}{{"bf16", bf16, 2}, {"f32", f32, 4}} {
		for _, cd := range []cand{
			{"zstd1", Header{Encoding: Zstd}, 1},
			{"zstd3", Header{Encoding: Zstd}, 3},
			{"zstd7", Header{Encoding: Zstd}, 7},
			{"bytegroup", Header{Encoding: ByteGrouped, ElemSize: in.elem, Rotated: true}, 1},
		} {
			enc, err := c.encoder(cd.level)
			if err != nil {
				b.Fatal(err)
			}
			var frame []byte
			b.Run(in.name+"/"+cd.name+"/encode", func(b *testing.B) {
				loop(b, len(in.data), func() {
					frame, err = c.encodeAs(enc, cd.h, in.data, nil)
					if err != nil {
						b.Fatal(err)
					}
				})
				b.ReportMetric(float64(len(frame))/float64(len(in.data)), "ratio")
			})
			if frame == nil {
				frame, _ = c.encodeAs(enc, cd.h, in.data, nil)
			}
			b.Run(in.name+"/"+cd.name+"/decode", func(b *testing.B) {
				loop(b, len(in.data), func() {
					if _, err := c.Decode(frame, nil); err != nil {
						b.Fatal(err)
					}
				})
				b.ReportMetric(float64(len(frame))/float64(len(in.data)), "ratio")
			})
		}
	}
}

// BenchmarkEncodeAuto is Encode as the registry calls it: choose on a
// sample, then encode once.
func BenchmarkEncodeAuto(b *testing.B) {
	bf16, _ := benchData()
	c := newCodec(b)
	var frame []byte
	loop(b, len(bf16), func() {
		var err error
		if frame, err = c.Encode(bf16, EncodeOptions{ElemSize: 2}); err != nil {
			b.Fatal(err)
		}
	})
	b.ReportMetric(float64(len(frame))/float64(len(bf16)), "ratio")
}
