package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Open returns the backend a registry URL names:
//
//   - "PATH" or "file://PATH": a folder (NewFS), created if missing;
//   - "s3://BUCKET[/PREFIX]": an S3 bucket (NewS3). The endpoint comes from
//     DELTACTL_S3_ENDPOINT, else AWS_ENDPOINT_URL ("http://..." means no
//     TLS); credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the
//     optional AWS_SESSION_TOKEN; AWS_REGION (default us-east-1). A missing
//     bucket is created.
//
// Other schemes are refused. Errors never contain credentials.
func Open(ctx context.Context, url string) (Backend, error) {
	return openWith(ctx, url, os.Getenv)
}

func openWith(ctx context.Context, url string, getenv func(string) string) (Backend, error) {
	switch {
	case url == "":
		return nil, errors.New("store: empty registry URL")
	case strings.HasPrefix(url, "file://"):
		p := strings.TrimPrefix(url, "file://")
		if p == "" {
			return nil, fmt.Errorf("store: %q: no path after file://", url)
		}
		return NewFS(p)
	case strings.HasPrefix(url, "s3://"):
		rest := strings.TrimPrefix(url, "s3://")
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, fmt.Errorf("store: %q: no bucket after s3://", url)
		}
		ep := getenv("DELTACTL_S3_ENDPOINT")
		if ep == "" {
			ep = getenv("AWS_ENDPOINT_URL")
		}
		opt := S3Options{
			Endpoint:     ep,
			Bucket:       bucket,
			Prefix:       prefix,
			AccessKey:    getenv("AWS_ACCESS_KEY_ID"),
			SecretKey:    getenv("AWS_SECRET_ACCESS_KEY"),
			SessionToken: getenv("AWS_SESSION_TOKEN"),
			Region:       getenv("AWS_REGION"),
			CreateBucket: true,
		}
		if opt.AccessKey == "" || opt.SecretKey == "" {
			return nil, fmt.Errorf("store: %s: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set", url)
		}
		return NewS3(ctx, opt)
	}
	if i := strings.Index(url, "://"); i > 0 && !strings.ContainsAny(url[:i], "/\\") {
		return nil, fmt.Errorf("store: %q: unsupported scheme %q (want a path, file://PATH or s3://BUCKET[/PREFIX])", url, url[:i])
	}
	return NewFS(url)
}
