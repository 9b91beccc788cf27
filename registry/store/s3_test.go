package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/deltactl/deltactl/registry/store/storetest"
)

func TestS3ProbeFindsConditionalWrites(t *testing.T) {
	b := storetest.NewS3(t, nil)
	c, err := b.ConditionalWrites(context.Background())
	if err != nil || !c.Put || !c.Match {
		t.Fatalf("versitygw v1.8.0 honours conditional PUTs, probe says %+v (%v)", c, err)
	}
	t.Logf("conditional writes honoured: %+v", c)
	// The probe leaves nothing a List would show.
	n := 0
	if err := b.List(context.Background(), "", func(store.Info) error { n++; return nil }); err != nil {
		t.Fatalf("list after the probe: %v", err)
	}
	if n != 0 {
		t.Fatalf("probe left %d listed keys", n)
	}
}

// TestS3WithoutConditionalWrites exercises the fallback protocol: Put checks
// before writing, Swap refuses.
func TestS3WithoutConditionalWrites(t *testing.T) {
	ctx := context.Background()
	b := storetest.NewS3(t, func(o *store.S3Options) { o.DisableConditional = true })
	if err := b.Put(ctx, "blobs/x", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "blobs/x", strings.NewReader("y"), 1); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second put: %v", err)
	}
	_, err := b.Swap(ctx, "refs/a/b", "", []byte("sha256:x"))
	if !errors.Is(err, store.ErrUnsupported) || !strings.Contains(err.Error(), "conditional writes") {
		t.Fatalf("swap without conditional writes: %v", err)
	}
}

func TestS3CredentialsNeverInErrors(t *testing.T) {
	opt, ok, reason := storetest.S3Config()
	if !ok {
		t.Skip(reason)
	}
	ctx := context.Background()
	opt.SecretKey = "wrong-secret-0123456789-never-print"
	opt.SessionToken = "session-token-never-print"
	opt.Prefix = storetest.RandomPrefix()
	b, err := store.NewS3(ctx, opt)
	if err == nil {
		// Some servers allow an anonymous HEAD on the bucket; the write must fail.
		err = b.Put(ctx, "blobs/x", strings.NewReader("x"), 1)
	}
	if err == nil {
		t.Fatal("wrong secret accepted")
	}
	for _, s := range []string{opt.SecretKey, opt.SessionToken} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error shows a credential: %v", err)
		}
	}
	t.Logf("error with a wrong secret: %v", err)
}

func TestS3MissingBucket(t *testing.T) {
	opt, ok, reason := storetest.S3Config()
	if !ok {
		t.Skip(reason)
	}
	opt.Bucket = "deltactl-missing-" + strings.TrimPrefix(storetest.RandomPrefix(), "t-")
	opt.CreateBucket = false
	if _, err := store.NewS3(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing bucket without CreateBucket: %v", err)
	}
}

// TestOpenS3 goes through store.Open and the documented variables.
func TestOpenS3(t *testing.T) {
	opt, ok, reason := storetest.S3Config()
	if !ok {
		t.Skip(reason)
	}
	t.Setenv("DELTACTL_S3_ENDPOINT", opt.Endpoint)
	prefix := storetest.RandomPrefix()
	b, err := store.Open(context.Background(), "s3://"+opt.Bucket+"/"+prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storetest.Clear(t, b) })
	if got, want := b.Location(), "s3://"+opt.Bucket+"/"+prefix; got != want {
		t.Fatalf("location %q, want %q", got, want)
	}
	if err := b.Put(context.Background(), "k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	if got := storetest.ReadAll(t, b, "k", 0, -1); string(got) != "v" {
		t.Fatalf("read %q", got)
	}
}
