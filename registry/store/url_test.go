package store

import (
	"context"
	"errors"
	"os"
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
		b, err := openWith(ctx, u, OpenOptions{}, getenv)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		fs, ok := b.(*FS)
		if !ok || !filepath.IsAbs(fs.Location()) {
			t.Fatalf("%s: got %T at %q", u, b, b.Location())
		}
	}
	for _, u := range []string{"", "file://", "s3://", "http://example.com/x", "gs://bucket"} {
		if _, err := openWith(ctx, u, OpenOptions{}, getenv); err == nil {
			t.Errorf("%q: opened", u)
		}
	}
	// s3 without credentials or endpoint: clear errors, no network needed.
	if _, err := openWith(ctx, "s3://bucket/prefix", OpenOptions{}, getenv); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("s3 without credentials: %v", err)
	}
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "AKIDEXAMPLE", "s3cr3t-never-printed"
	if _, err := openWith(ctx, "s3://bucket/prefix", OpenOptions{}, getenv); err == nil || !strings.Contains(err.Error(), "DELTACTL_S3_ENDPOINT") {
		t.Errorf("s3 without endpoint: %v", err)
	}
	env["AWS_ENDPOINT_URL"] = "http://user:s3cr3t-never-printed@127.0.0.1:1"
	_, err := openWith(ctx, "s3://bucket/prefix", OpenOptions{}, getenv)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("endpoint with credentials: %v", err)
	}
	env["AWS_ENDPOINT_URL"] = "ftp://127.0.0.1:1"
	if _, err := openWith(ctx, "s3://bucket", OpenOptions{}, getenv); err == nil {
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

// TestCredentialsInURLNeverEchoed: a registry URL carrying KEY:SECRET@ is
// refused with the credentials redacted, whatever characters the secret holds.
func TestCredentialsInURLNeverEchoed(t *testing.T) {
	ctx := context.Background()
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "envsecret", "DELTACTL_S3_ENDPOINT": "http://127.0.0.1:1"}
	getenv := func(k string) string { return env[k] }
	for _, u := range []string{
		"s3://AKIDLEAK:zz9pw@bucket",
		"s3://AKIDLEAK:zz9/pw@bucket/prefix",
		"s3://AKIDLEAK:zz9@pw@bucket",
		"s3://AKIDLEAK@bucket",
		"file://AKIDLEAK:zz9pw@host/path",
	} {
		_, err := openWith(ctx, u, OpenOptions{}, getenv)
		if err == nil {
			t.Errorf("%s: accepted", RedactURL(u))
			continue
		}
		for _, s := range []string{"AKIDLEAK", "zz9", "pw@"} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error echoes credentials: %v", err)
			}
		}
		if !strings.Contains(err.Error(), "REDACTED@") {
			t.Errorf("error does not say what was redacted: %v", err)
		}
	}
	for u, want := range map[string]string{
		"s3://bucket/pre@fix":      "s3://bucket/pre@fix",
		"/plain/path@x":            "/plain/path@x",
		"s3://k:s@bucket/p":        "s3://REDACTED@bucket/p",
		"https://u:p@host:9000/xx": "https://REDACTED@host:9000/xx",
	} {
		if got := RedactURL(u); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", u, got, want)
		}
	}
}

// TestFSMissingRoot: reading a registry folder that does not exist is
// ErrNoRegistry and creates nothing; the first write creates it; Create
// makes it at once.
func TestFSMissingRoot(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "a", "reg")
	b, err := OpenWith(ctx, root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Stat(ctx, "refs/x")
	if !errors.Is(err, ErrNoRegistry) || !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), root) {
		t.Fatalf("stat in a missing registry: %v", err)
	}
	if _, err := b.Get(ctx, "refs/x", 0, -1); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("get in a missing registry: %v", err)
	}
	if err := b.List(ctx, "refs/", func(Info) error { return nil }); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("list in a missing registry: %v", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read created the registry folder: %v", err)
	}
	if err := b.Put(ctx, "blobs/k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	if err := b.List(ctx, "refs/", func(Info) error { return nil }); err != nil {
		t.Fatalf("list after the first write: %v", err)
	}
	other := filepath.Join(t.TempDir(), "made")
	if _, err := OpenWith(ctx, other, OpenOptions{Create: true}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(other); err != nil || !fi.IsDir() {
		t.Fatalf("Create did not make the folder: %v", err)
	}
}
