package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenURLs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	for _, u := range []string{dir + "/plain", "file://" + dir + "/viafile", "relative-is-a-path-too"} {
		if strings.HasPrefix(u, "relative") {
			t.Chdir(dir)
		}
		b, err := openWith(ctx, u, getenv)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		fs, ok := b.(*FS)
		if !ok || !filepath.IsAbs(fs.Location()) {
			t.Fatalf("%s: got %T at %q", u, b, b.Location())
		}
	}
	for _, u := range []string{"", "file://", "s3://", "http://example.com/x", "gs://bucket"} {
		if _, err := openWith(ctx, u, getenv); err == nil {
			t.Errorf("%q: opened", u)
		}
	}
	// s3 without credentials or endpoint: clear errors, no network needed.
	if _, err := openWith(ctx, "s3://bucket/prefix", getenv); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("s3 without credentials: %v", err)
	}
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "AKIDEXAMPLE", "s3cr3t-never-printed"
	if _, err := openWith(ctx, "s3://bucket/prefix", getenv); err == nil || !strings.Contains(err.Error(), "DELTACTL_S3_ENDPOINT") {
		t.Errorf("s3 without endpoint: %v", err)
	}
	env["AWS_ENDPOINT_URL"] = "http://user:s3cr3t-never-printed@127.0.0.1:1"
	_, err := openWith(ctx, "s3://bucket/prefix", getenv)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("endpoint with credentials: %v", err)
	}
	env["AWS_ENDPOINT_URL"] = "ftp://127.0.0.1:1"
	if _, err := openWith(ctx, "s3://bucket", getenv); err == nil {
		t.Error("ftp endpoint accepted")
	}
}

func TestParseEndpoint(t *testing.T) {
	for ep, want := range map[string]struct {
		host   string
		secure bool
	}{
		"http://127.0.0.1:7070":  {"127.0.0.1:7070", false},
		"https://s3.example.com": {"s3.example.com", true},
		"s3.example.com:9000":    {"s3.example.com:9000", true},
		"http://127.0.0.1:7070/": {"127.0.0.1:7070", false},
	} {
		h, s, err := parseEndpoint(ep)
		if err != nil || h != want.host || s != want.secure {
			t.Errorf("%s: %q %v %v", ep, h, s, err)
		}
	}
	for _, ep := range []string{"", "http://h/path", "http://h/?x=1", "http://u:p@h"} {
		if _, _, err := parseEndpoint(ep); err == nil {
			t.Errorf("%q accepted", ep)
		}
	}
}

func TestValidKey(t *testing.T) {
	good := []string{"a", "blobs/sha256/ab/abcdef", "refs/team/model/v1.0_rc-1", "x/y@sha256:00"}
	bad := []string{"", "/a", "a/", "a//b", "..", "a/..", "../a", "a/./b", ".hidden", "a/.tmp-1", "a\x00b", "a\x7fb", `a\b`, "a\u0085b", string([]byte{0xff}), strings.Repeat("a", 1025)}
	for _, k := range good {
		if err := ValidKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range bad {
		if err := ValidKey(k); !errors.Is(err, ErrBadKey) {
			t.Errorf("%q: %v, want ErrBadKey", k, err)
		}
	}
	for _, p := range []string{"", "a/", "blobs/sha256/a"} {
		if err := ValidPrefix(p); err != nil {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
	for _, p := range []string{"/", "../", "a//"} {
		if err := ValidPrefix(p); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}
