package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Open returns the backend a registry URL names, with the default options
// (see OpenWith): it never creates a bucket.
func Open(ctx context.Context, url string) (Backend, error) {
	return OpenWith(ctx, url, OpenOptions{})
}

// OpenWith returns the backend a registry URL names:
//
//   - "PATH" or "file://PATH": a folder (NewFS). Reading a folder that does
//     not exist fails with ErrNoRegistry; the first write creates it.
//   - "s3://BUCKET[/PREFIX]": an S3 bucket (NewS3). The endpoint comes from
//     DELTACTL_S3_ENDPOINT, else AWS_ENDPOINT_URL ("http://..." means no
//     TLS); credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the
//     optional AWS_SESSION_TOKEN; AWS_REGION (default us-east-1). A bucket
//     that does not exist is ErrNoRegistry unless opt.Create is set.
//
// Other schemes are refused, and so are credentials inside the URL
// (s3://KEY:SECRET@bucket): they would end up in shell history and process
// lists. Errors never contain credentials (see RedactURL).
func OpenWith(ctx context.Context, url string, opt OpenOptions) (Backend, error) {
	return openWith(ctx, url, opt, os.Getenv)
}

func openWith(ctx context.Context, url string, o OpenOptions, getenv func(string) string) (Backend, error) {
	shown := RedactURL(url)
	switch {
	case url == "":
		return nil, errors.New("store: empty registry URL")
	case shown != url:
		return nil, fmt.Errorf("store: %s: credentials in the registry URL are not accepted; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead", shown)
	case strings.HasPrefix(url, "file://"):
		p := strings.TrimPrefix(url, "file://")
		if p == "" {
			return nil, fmt.Errorf("store: %q: no path after file://", url)
		}
		return NewFSWith(p, FSOptions{Create: o.Create, Notify: o.Notify})
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
			CreateBucket: o.Create,
			Notify:       o.Notify,
		}
		if opt.AccessKey == "" || opt.SecretKey == "" {
			return nil, fmt.Errorf("store: %s: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set", url)
		}
		return NewS3(ctx, opt)
	}
	if i := strings.Index(url, "://"); i > 0 && !strings.ContainsAny(url[:i], "/\\") {
		return nil, fmt.Errorf("store: %q: unsupported scheme %q (want a path, file://PATH or s3://BUCKET[/PREFIX])", url, url[:i])
	}
	return NewFSWith(url, FSOptions{Create: o.Create, Notify: o.Notify})
}

// RedactURL returns url with any user information (KEY:SECRET@ before the
// host or bucket) replaced by "REDACTED@", for messages. A secret may hold
// '/' or '@', so everything up to the last '@' goes when it holds a ':' or
// no '/' (an '@' inside a plain prefix, "s3://bucket/a@b", is kept).
// Anything else is returned unchanged.
func RedactURL(url string) string {
	i := strings.Index(url, "://")
	if i <= 0 || strings.ContainsAny(url[:i], "/\\") {
		return url
	}
	rest := url[i+3:]
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return url
	}
	if user := rest[:at]; strings.Contains(user, ":") || !strings.Contains(user, "/") {
		return url[:i+3] + "REDACTED@" + rest[at+1:]
	}
	return url
}
