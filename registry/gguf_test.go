package registry

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format/gguf"
	"github.com/deltactl/deltactl/internal/testutil"
)

// A fine-tune's GGUF pushed beside its base's stores only the header and the
// tensor that changed, and both pull back byte for byte; a damaged GGUF is
// refused at push.
func TestPushGGUFPerTensor(t *testing.T) {
	dir := t.TempDir()
	baseDir, ftDir := filepath.Join(dir, "base"), filepath.Join(dir, "ft")
	for _, d := range []string{baseDir, ftDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	basePath := filepath.Join(baseDir, "model.gguf")
	if _, err := gguf.ExportModel(context.Background(), testutil.Testdata(t, "tinyllama"), basePath, gguf.Options{Type: gguf.F32}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(basePath)
	if err != nil {
		t.Fatal(err)
	}
	// The "fine-tune": another general.name (a longer header, so every
	// tensor sits at another file offset: fixed-size chunks would all
	// differ) and one byte changed in the middle of the largest tensor.
	ftPath := filepath.Join(ftDir, "model.gguf")
	if _, err := gguf.ExportModel(context.Background(), testutil.Testdata(t, "tinyllama"), ftPath,
		gguf.Options{Type: gguf.F32, Name: "tinyllama fine-tuned on a task whose name is long enough to move the data section"}); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Open(ftPath)
	if err != nil {
		t.Fatal(err)
	}
	big := g.Tensors[0]
	for _, ti := range g.Tensors {
		if ti.Size() > big.Size() {
			big = ti
		}
	}
	at, dataOff := g.DataOffset+big.Offset+big.Size()/2, g.DataOffset
	_ = g.Close() // read only
	ft, err := os.ReadFile(ftPath)
	if err != nil {
		t.Fatal(err)
	}
	ft[at] ^= 0x40
	if err := os.WriteFile(ftPath, ft, 0o644); err != nil {
		t.Fatal(err)
	}
	if gb, err := gguf.Open(basePath); err != nil || gb.DataOffset == dataOff {
		t.Fatalf("the fine-tune's data section must move (base %v, %v; fine-tune %d)", gb, err, dataOff)
	} else {
		_ = gb.Close() // read only
	}

	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 1<<20)
			first, err := r.Push(bg, "tiny/gguf:base", baseDir, PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			second, err := r.Push(bg, "tiny/gguf:ft", ftDir, PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// The changed tensor (at most one 1 MiB chunk of it) and the
			// manifest; never the rest of the file again.
			if limit := min(big.Size(), 1<<20) + 64<<10; second.UploadedBytes > limit || first.UploadedBytes < int64(len(raw))/4 {
				t.Errorf("uploaded %d bytes for the fine-tune (the changed tensor is %d bytes; limit %d), %d for the base of %d",
					second.UploadedBytes, big.Size(), limit, first.UploadedBytes, len(raw))
			}
			for ref, want := range map[string][]byte{"tiny/gguf:base": raw, "tiny/gguf:ft": ft} {
				out := filepath.Join(t.TempDir(), "pulled")
				if _, err := r.Pull(bg, ref, out); err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(out, "model.gguf"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s: pulled GGUF differs from the pushed one", ref)
				}
			}
		})
	}

	bad := filepath.Join(dir, "bad")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "model.gguf"), raw[:len(raw)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	r := newReg(t, testBackends(t)["fs"], 1<<20)
	if _, err := r.Push(bg, "tiny/gguf:bad", bad, PushOptions{}); err == nil {
		t.Error("a truncated GGUF was pushed")
	}
}
