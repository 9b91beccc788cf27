package store_test

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"testing"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/deltactl/deltactl/registry/store/storetest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// benchSize is the object size for the S3 throughput benchmarks.
const benchSize = 256 << 20

// BenchmarkS3 compares the s3 backend's Put and Get with raw minio-go
// PutObject/GetObject of the same bytes on the same server, to show what
// the backend's conditional header, retry wrapper and resumable reader cost.
func BenchmarkS3(b *testing.B) {
	opt, ok, reason := storetest.S3Config()
	if !ok {
		b.Skip(reason)
	}
	ctx := context.Background()
	data := storetest.Payload(benchSize, 1)
	be := storetest.NewS3(b, nil)
	u, _ := url.Parse(opt.Endpoint)
	raw, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""), Region: "us-east-1"})
	if err != nil {
		b.Fatal(err)
	}
	prefix := storetest.RandomPrefix() + "/"
	b.Cleanup(func() {
		for oi := range raw.ListObjects(ctx, opt.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			_ = raw.RemoveObject(ctx, opt.Bucket, oi.Key, minio.RemoveObjectOptions{}) // best effort cleanup of a random prefix
		}
	})
	n := 0
	b.Run("put/backend", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			n++
			key := "bench/" + string(rune('a'+n%26)) + storetest.RandomPrefix()
			if err := be.Put(ctx, key, bytes.NewReader(data), benchSize); err != nil {
				b.Fatal(err)
			}
			if err := be.Delete(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("put/minio-go", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			key := prefix + storetest.RandomPrefix()
			if _, err := raw.PutObject(ctx, opt.Bucket, key, bytes.NewReader(data), benchSize, minio.PutObjectOptions{}); err != nil {
				b.Fatal(err)
			}
			if err := raw.RemoveObject(ctx, opt.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	if err := be.Put(ctx, "bench/get", bytes.NewReader(data), benchSize); err != nil {
		b.Fatal(err)
	}
	if _, err := raw.PutObject(ctx, opt.Bucket, prefix+"get", bytes.NewReader(data), benchSize, minio.PutObjectOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Run("get/backend", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			rc, err := be.Get(ctx, "bench/get", 0, -1)
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, rc); err != nil || n != benchSize {
				b.Fatal(n, err)
			}
			_ = rc.Close() // read only, and read to the end
		}
	})
	b.Run("get/minio-go", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			obj, err := raw.GetObject(ctx, opt.Bucket, prefix+"get", minio.GetObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, obj); err != nil || n != benchSize {
				b.Fatal(n, err)
			}
			_ = obj.Close() // read only, and read to the end
		}
	})
	_ = store.ErrExists
}
