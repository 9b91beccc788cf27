package registry

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
)

// TestAdaptersShareBase: a GPT-2-shaped base and the two real checkpoints
// of one TRL KTO LoRA run. The base is stored once, du is close to base plus
// adapters, pulls are byte-identical, show gives the lineage.
func TestAdaptersShareBase(t *testing.T) {
	ck500 := testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_ckpt500")
	final := testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_final")
	baseDir := t.TempDir()
	gpt2Base(t, baseDir, -1)
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 4<<20)
			base, err := r.Push(bg, "gpt2/base:v1", baseDir, PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			baseOnly, err := r.DiskUsage(bg)
			if err != nil {
				t.Fatal(err)
			}
			var adapters int64
			for _, tc := range []struct{ ref, dir string }{{"gpt2/kto:ckpt500", ck500}, {"gpt2/kto:final", final}} {
				res, err := r.Push(bg, tc.ref, tc.dir, PushOptions{Base: "gpt2/base:v1"})
				if err != nil {
					t.Fatal(err)
				}
				if res.Kind != KindDelta || res.Method != MethodLoRA || res.Base != base.Digest {
					t.Fatalf("%s: %+v", tc.ref, res)
				}
				adapters += res.LogicalBytes
				out := filepath.Join(t.TempDir(), "pulled")
				if _, err := r.Pull(bg, tc.ref, out); err != nil {
					t.Fatal(err)
				}
				sameTree(t, tc.dir, out)
			}
			u, err := r.DiskUsage(bg)
			if err != nil {
				t.Fatal(err)
			}
			// The base is stored once: all growth is the two adapters
			// (plus two manifests and refs), within 10%.
			growth := u.StoredBytes - baseOnly.StoredBytes
			if growth > adapters*11/10 || growth < adapters/2 {
				t.Fatalf("stored grew by %d bytes for %d bytes of adapters (du %+v)", growth, adapters, u)
			}
			if u.Refs != 3 || u.Manifests != 3 {
				t.Fatalf("du %+v", u)
			}
			t.Logf("%s: base %d logical -> %d stored; adapters %d logical -> %d stored; du %+v",
				name, base.LogicalBytes, baseOnly.StoredBytes, adapters, growth, u)

			sh, err := r.Show(bg, "gpt2/kto:final")
			if err != nil {
				t.Fatal(err)
			}
			if len(sh.Lineage) != 2 || sh.Lineage[1].Digest != base.Digest || sh.Lineage[1].Refs[0] != "gpt2/base:v1" {
				t.Fatalf("lineage %+v", sh.Lineage)
			}
			cfg, _ := sh.Manifest.Config.(map[string]any)
			if cfg["peft_type"] != "LORA" {
				t.Fatalf("config not kept: %v", sh.Manifest.Config)
			}
			if sh.Manifest.Provenance == nil {
				t.Fatal("no provenance (safetensors __metadata__ expected)")
			}
		})
	}
}

func TestDeltaRefusedOnWrongBase(t *testing.T) {
	final := testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_final")
	b := testBackends(t)["fs"]
	r := newReg(t, b, 64<<20)
	bad := t.TempDir()
	gpt2Base(t, bad, 3)
	if _, err := r.Push(bg, "gpt2/bad:v1", bad, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := r.Push(bg, "gpt2/kto:final", final, PushOptions{Base: "gpt2/bad:v1"})
	if !errors.Is(err, ErrBaseMismatch) {
		t.Fatalf("wrong-shape base accepted: %v", err)
	}
	for _, want := range []string{"h.3.attn.c_attn.weight", "[768 2304]", "[768 768]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// The real tiny GPT-2 (n_embd=2) has the weights, far too small.
	tiny := testutil.SharedData(t, "models/lm-buddy-tiny_gpt2")
	if _, err := r.Push(bg, "tiny:v1", tiny, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = r.Push(bg, "gpt2/kto:final", final, PushOptions{Base: "tiny:v1"})
	if !errors.Is(err, ErrBaseMismatch) || !strings.Contains(err.Error(), "[2 6]") {
		t.Fatalf("tiny base: %v", err)
	}
	// A base without the target weights at all.
	other := t.TempDir()
	writeST(t, filepath.Join(other, "model.safetensors"), []stTensor{{name: "wte.weight", dtype: "F32", shape: []int64{4, 2}, data: randF32(1, 8)}}, nil)
	if _, err := r.Push(bg, "other:v1", other, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = r.Push(bg, "gpt2/kto:final", final, PushOptions{Base: "other:v1"})
	if !errors.Is(err, ErrBaseMismatch) || !strings.Contains(err.Error(), "missing from base") {
		t.Fatalf("base without targets: %v", err)
	}
	// No ref was created by the refused pushes.
	if _, err := r.Resolve(bg, "gpt2/kto:final"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused push left a ref: %v", err)
	}
	// An adapter folder without a base, Full without a base, and a base
	// for a folder that is neither an adapter nor marked Full. The errors
	// name the options, not CLI flags (the CLI rewords them).
	if _, err := r.Push(bg, "x:v1", final, PushOptions{}); !errors.Is(err, ErrAdapterWithoutBase) || !strings.Contains(err.Error(), "PushOptions.Base") {
		t.Fatalf("adapter without base: %v", err)
	}
	if _, err := r.Push(bg, "x:v1", tiny, PushOptions{Full: true}); !errors.Is(err, ErrFullWithoutBase) {
		t.Fatalf("Full without base: %v", err)
	}
	if _, err := r.Push(bg, "x:v1", tiny, PushOptions{Base: "tiny:v1"}); !errors.Is(err, ErrNotAdapter) {
		t.Fatalf("base for a non-adapter folder without Full: %v", err)
	}
	for _, e := range []error{ErrAdapterWithoutBase, ErrFullWithoutBase, ErrNotAdapter} {
		if strings.Contains(e.Error(), "--") {
			t.Errorf("library error speaks in CLI flags: %v", e)
		}
	}
}

// TestFullDelta: a full fine-tune that changed 3 of 12 tensors slightly is
// stored for clearly less than its size and pulls back byte-identical.
func TestFullDelta(t *testing.T) {
	baseDir, ftDir := t.TempDir(), t.TempDir()
	gpt2Base(t, baseDir, -1)
	// Fine-tune: same files, tensors 2, 5, 9 nudged by ~0.1% (as a few
	// optimizer steps would), the rest bit-identical.
	data, err := os.ReadFile(filepath.Join(baseDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	hdr := int(binary.LittleEndian.Uint64(data)) + 8
	per := 768 * 2304 * 4
	for _, l := range []int{2, 5, 9} {
		seg := data[hdr+l*per : hdr+(l+1)*per]
		for i := 0; i < len(seg); i += 4 {
			v := math.Float32frombits(binary.LittleEndian.Uint32(seg[i:]))
			binary.LittleEndian.PutUint32(seg[i:], math.Float32bits(v*(1+1e-3*float32((i/4)%7-3))))
		}
	}
	cfg, err := os.ReadFile(filepath.Join(baseDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"model.safetensors":  data,
		"config.json":        cfg,
		"trainer_state.json": []byte(`{"global_step":100,"best_metric":0.25}`),
	} {
		if err := os.WriteFile(filepath.Join(ftDir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 2<<20)
			if _, err := r.Push(bg, "gpt2/base:v1", baseDir, PushOptions{}); err != nil {
				t.Fatal(err)
			}
			res, err := r.Push(bg, "gpt2/ft:v1", ftDir, PushOptions{Base: "gpt2/base:v1", Full: true})
			if err != nil {
				t.Fatal(err)
			}
			changed := int64(3 * per)
			t.Logf("%s: full delta of %d bytes (%d changed) uploaded %d bytes", name, res.LogicalBytes, changed, res.UploadedBytes)
			if res.Kind != KindDelta || res.Method != MethodFull {
				t.Fatalf("%+v", res)
			}
			// Unchanged tensors cost nothing; the changed ones compress
			// against the base well below their raw size.
			if res.UploadedBytes > changed*3/4 {
				t.Fatalf("uploaded %d bytes for %d changed bytes", res.UploadedBytes, changed)
			}
			m, _ := r.Manifest(bg, res.Digest)
			base, _ := r.Manifest(bg, m.Base)
			bi := base.tensorIndex()
			same := 0
			for n, tn := range m.tensorIndex() {
				if tn.Chunks[0].Digest == bi[n].Chunks[0].Digest {
					same++
				}
			}
			if same != 9 {
				t.Fatalf("%d tensors share the base's blobs, want 9", same)
			}
			if m.Provenance["trainer_state.json"] == nil {
				t.Fatalf("provenance %v", m.Provenance)
			}
			out := filepath.Join(t.TempDir(), "ft")
			if _, err := r.Pull(bg, "gpt2/ft:v1", out); err != nil {
				t.Fatal(err)
			}
			sameTree(t, ftDir, out)
			// gc after removing the base ref keeps the XOR bases: the
			// delta still reaches them through its base manifest.
			if _, err := r.Remove(bg, "gpt2/base:v1"); err != nil {
				t.Fatal(err)
			}
			if _, err := r.GC(bg, GCOptions{Grace: -1}); err != nil {
				t.Fatal(err)
			}
			if v, err := r.Verify(bg, nil); err != nil || !v.OK {
				t.Fatalf("verify after gc: %+v %v", v, err)
			}
		})
	}
}
