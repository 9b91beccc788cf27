package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/deltactl/deltactl/registry/store/storetest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sys/unix"
)

// benchBytes is the model size of the transfer benchmarks:
// $DELTACTL_BENCH_BYTES, default 256 MiB (2147483648 for the 2 GB figure).
func benchBytes(b *testing.B) int64 {
	if v := os.Getenv("DELTACTL_BENCH_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("DELTACTL_BENCH_BYTES=%q", v)
		}
		return n
	}
	return 256 << 20
}

// benchModel writes a model folder of about size bytes: F32 weights
// ~N(0, 0.02) in 64 MiB tensors (a real checkpoint's statistics, so the
// codec's byte grouping has its usual effect), and returns its path.
func benchModel(b *testing.B, size int64) string {
	b.Helper()
	dir := b.TempDir()
	var ts []stTensor
	const per = 64 << 20
	for i := 0; int64(i)*per < size; i++ {
		n := min(per, size-int64(i)*per) / 4
		ts = append(ts, stTensor{name: fmt.Sprintf("layers.%d.weight", i), dtype: "F32", shape: []int64{n}, data: randF32(uint64(i), int(n))})
	}
	writeST(b, filepath.Join(dir, "model.safetensors"), ts, nil)
	// An mtime in the past, as for any model not being written right now.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "model.safetensors"), old, old); err != nil {
		b.Fatal(err)
	}
	return dir
}

// rawClient is a plain minio-go client on the test server.
func rawClient(b *testing.B) (*minio.Client, string) {
	opt, ok, reason := storetest.S3Config()
	if !ok {
		b.Skip("s3 benchmark skipped: " + reason)
	}
	u, err := url.Parse(opt.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(opt.AccessKey, opt.SecretKey, ""), Secure: u.Scheme == "https", Region: opt.Region})
	if err != nil {
		b.Fatal(err)
	}
	return c, opt.Bucket
}

// benchChunk is the registry chunk size of the transfer benchmarks:
// $DELTACTL_BENCH_CHUNK, default DefaultChunkSize.
func benchChunk(b *testing.B) int64 {
	if v := os.Getenv("DELTACTL_BENCH_CHUNK"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("DELTACTL_BENCH_CHUNK=%q", v)
		}
		return n
	}
	return DefaultChunkSize
}

// BenchmarkS3PushPullVsRaw pushes and pulls a model through the registry
// to the S3 test server, and PutObject/GetObject the same file's bytes with
// plain minio-go in the same run. Metrics: MB/s of each (of the model's
// logical bytes) and the ratios registry/raw (time of raw / time of
// registry; 1 means as fast as raw), plus stored/logical (what du counts).
// Run with -benchtime=1x.
//
// The comparison is deliberately unfavourable to the registry. Raw
// PutObject only sends the file. Push also reads and sha256-hashes every
// chunk, checks whether it is stored, chooses an encoding and compresses,
// and writes a manifest, a ref and a lock. Raw GetObject only writes the
// bytes into a file. Pull also decodes, re-hashes every byte against its
// digest, fsyncs each file and renames the folder into place; the raw copy
// is not fsynced. Every timed phase starts after sync(2), so no phase pays
// for the disk write-back of the one before it (the server writes what is
// uploaded to the same disk).
func BenchmarkS3PushPullVsRaw(b *testing.B) {
	cli, bucket := rawClient(b)
	size := benchBytes(b)
	dir := benchModel(b, size)
	file := filepath.Join(dir, "model.safetensors")
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var tPush, tPull, tPut, tGet time.Duration
	var cPush, cPull, cPut, cGet time.Duration
	var uploaded int64
	// timed adds fn's wall time to d and the CPU time this process spent
	// in it (user+system) to c: on a shared machine the CPU time says what
	// the registry's extra work costs even when the wall times are noisy.
	timed := func(d, c *time.Duration, fn func()) {
		unix.Sync()
		c0 := cpuTime()
		t0 := time.Now()
		fn()
		*d += time.Since(t0)
		*c += cpuTime() - c0
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Opening the registry's backend first creates the bucket.
		s3b := storetest.NewS3(b, nil)
		r := newReg(b, s3b, benchChunk(b))
		r.opt.NoCache = true
		key := storetest.RandomPrefix() + "/raw"
		timed(&tPut, &cPut, func() {
			if _, err := cli.FPutObject(ctx, bucket, key, file, minio.PutObjectOptions{}); err != nil {
				b.Fatal(err)
			}
		})
		timed(&tPush, &cPush, func() {
			res, err := r.Push(ctx, "bench/model:v1", dir, PushOptions{})
			if err != nil {
				b.Fatal(err)
			}
			uploaded = res.UploadedBytes
		})
		rawOut := filepath.Join(b.TempDir(), "raw")
		timed(&tGet, &cGet, func() {
			obj, err := cli.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			sink, err := os.Create(rawOut)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(sink, obj); err != nil {
				b.Fatal(err)
			}
			if err := sink.Close(); err != nil { // written: a failed close is a failed write
				b.Fatal(err)
			}
			_ = obj.Close() // read only
		})
		out := filepath.Join(b.TempDir(), "pulled")
		timed(&tPull, &cPull, func() {
			if _, err := r.Pull(ctx, "bench/model:v1", out); err != nil {
				b.Fatal(err)
			}
		})
		if err := cli.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
			b.Fatal(err)
		}
		pulled, err := os.ReadFile(filepath.Join(out, "model.safetensors"))
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(pulled, data) {
			b.Fatal("pull differs")
		}
	}
	mbps := func(d time.Duration) float64 { return float64(len(data)) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(tPush), "push_MB/s")
	b.ReportMetric(mbps(tPut), "rawput_MB/s")
	b.ReportMetric(tPut.Seconds()/tPush.Seconds(), "push/raw")
	b.ReportMetric(mbps(tPull), "pull_MB/s")
	b.ReportMetric(mbps(tGet), "rawget_MB/s")
	b.ReportMetric(tGet.Seconds()/tPull.Seconds(), "pull/raw")
	b.ReportMetric(float64(uploaded)/float64(len(data)), "stored/logical")
	b.ReportMetric(cPush.Seconds()/cPut.Seconds(), "push_cpu/raw_cpu")
	b.ReportMetric(cPull.Seconds()/cGet.Seconds(), "pull_cpu/raw_cpu")
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRepush: re-pushing an unchanged model (hash cache warm) to fs
// and S3. Target: well under 1 s, 0 bytes uploaded.
func BenchmarkRepush(b *testing.B) {
	size := benchBytes(b)
	dir := benchModel(b, size)
	backends := map[string]func(b *testing.B) store.Backend{
		"fs": func(b *testing.B) store.Backend { return storetest.NewFS(b) },
		"s3": func(b *testing.B) store.Backend { return storetest.NewS3(b, nil) },
	}
	for _, name := range []string{"fs", "s3"} {
		b.Run(name, func(b *testing.B) {
			r := newReg(b, backends[name](b), benchChunk(b))
			if _, err := r.Push(context.Background(), "bench/model:v1", dir, PushOptions{}); err != nil {
				b.Fatal(err)
			}
			var uploaded int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := r.Push(context.Background(), "bench/model:v1", dir, PushOptions{})
				if err != nil {
					b.Fatal(err)
				}
				uploaded += res.UploadedBytes
			}
			b.ReportMetric(float64(uploaded)/float64(b.N), "uploaded_B/op")
			b.ReportMetric(float64(size), "model_B")
		})
	}
}

// BenchmarkFSPushPull: push (fresh registry, no cache) and pull through a
// folder registry, separating codec and hashing costs from the network.
func BenchmarkFSPushPull(b *testing.B) {
	size := benchBytes(b)
	dir := benchModel(b, size)
	ctx := context.Background()
	var tPush, tPull time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := newReg(b, storetest.NewFS(b), benchChunk(b))
		r.opt.NoCache = true
		t0 := time.Now()
		if _, err := r.Push(ctx, "bench/model:v1", dir, PushOptions{}); err != nil {
			b.Fatal(err)
		}
		tPush += time.Since(t0)
		t0 = time.Now()
		if _, err := r.Pull(ctx, "bench/model:v1", filepath.Join(b.TempDir(), "o")); err != nil {
			b.Fatal(err)
		}
		tPull += time.Since(t0)
	}
	b.ReportMetric(float64(size)*float64(b.N)/tPush.Seconds()/1e6, "push_MB/s")
	b.ReportMetric(float64(size)*float64(b.N)/tPull.Seconds()/1e6, "pull_MB/s")
}
