package registry

import (
	"strings"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/opencontainers/go-digest"
)

// TestVerifyDetects: a flipped byte in a blob, a missing blob and a missing
// base are each named with the refs they break.
func TestVerifyDetects(t *testing.T) {
	ck := testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_ckpt500")
	final := testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_final")
	baseDir := t.TempDir()
	gpt2Base(t, baseDir, -1)
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 8<<20)
			base, err := r.Push(bg, "gpt2/base:v1", baseDir, PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Tag(bg, "gpt2/base:v1", "gpt2/base:stable"); err != nil {
				t.Fatal(err)
			}
			d500, err := r.Push(bg, "gpt2/kto:ckpt500", ck, PushOptions{Base: "gpt2/base:v1"})
			if err != nil {
				t.Fatal(err)
			}
			dfin, err := r.Push(bg, "gpt2/kto:final", final, PushOptions{Base: "gpt2/base:v1"})
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.Verify(bg, nil)
			if err != nil || !v.OK || v.CheckedBlobs == 0 {
				t.Fatalf("clean registry: %+v %v", v, err)
			}

			// 1. Flip a byte in one of the base's tensor blobs.
			bm, _ := r.Manifest(bg, base.Digest)
			flipped := bm.Files[1].Safetensors.Tensors[4].Chunks[0].Digest
			flipByte(t, b, blobKey(flipped))
			// 2. Delete a blob only ckpt500 holds.
			m500, _ := r.Manifest(bg, d500.Digest)
			gone := m500.Files[1].Safetensors.Tensors[0].Chunks[0].Digest
			if err := b.Delete(bg, blobKey(gone)); err != nil {
				t.Fatal(err)
			}
			v, err = r.Verify(bg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || len(v.Problems) != 2 {
				t.Fatalf("want 2 problems: %+v", v)
			}
			byObj := map[string]Problem{}
			for _, p := range v.Problems {
				byObj[p.Object] = p
			}
			p := byObj[blobKey(flipped)]
			if !strings.HasPrefix(p.Problem, "corrupt") || p.Kind != ProblemCorrupt || strings.Join(p.Refs, ",") != "gpt2/base:stable,gpt2/base:v1,gpt2/kto:ckpt500,gpt2/kto:final" {
				t.Fatalf("flipped byte: %+v", p)
			}
			p = byObj[blobKey(gone)]
			if p.Problem != "missing blob" || p.Kind != ProblemMissing || strings.Join(p.Refs, ",") != "gpt2/kto:ckpt500" {
				t.Fatalf("missing blob: %+v", p)
			}
			// Verifying one ref only reports what breaks it.
			v, _ = r.Verify(bg, []string{"gpt2/kto:ckpt500"})
			if len(v.Problems) != 2 {
				t.Fatalf("verify one ref: %+v", v)
			}
			// A corrupt payload still has a readable frame header, so gc
			// runs, and must not delete anything reachable.
			if g, err := r.GC(bg, GCOptions{Grace: -1}); err != nil || g.DeletedBlobs != 0 {
				t.Fatalf("gc on damaged registry: %+v %v", g, err)
			}

			// 3. Delete the base manifest: both deltas and both base tags break.
			if err := b.Delete(bg, manifestKey(base.Digest)); err != nil {
				t.Fatal(err)
			}
			v, _ = r.Verify(bg, []string{"gpt2/kto:final"})
			if v.OK || len(v.Problems) != 1 {
				t.Fatalf("missing base: %+v", v)
			}
			p = v.Problems[0]
			if p.Object != manifestKey(base.Digest) || !strings.HasPrefix(p.Problem, "missing base manifest") || p.Kind != ProblemMissing ||
				strings.Join(p.Refs, ",") != "gpt2/kto:final" {
				t.Fatalf("missing base: %+v", p)
			}
			_ = dfin
			v, _ = r.Verify(bg, nil)
			p = Problem{}
			for _, q := range v.Problems {
				if q.Object == manifestKey(base.Digest) {
					p = q
				}
			}
			if len(p.Refs) != 4 {
				t.Fatalf("missing base should break 4 refs: %+v", v.Problems)
			}
			// A missing ref asked for by name is a problem too.
			v, _ = r.Verify(bg, []string{"nope:v1"})
			if v.OK || v.Problems[0].Problem != "missing ref" || v.Problems[0].Kind != ProblemMissing {
				t.Fatalf("missing ref: %+v", v)
			}
		})
	}
}

// TestVerifyChecksEveryManifestsSize: two manifests name one blob, one with
// a wrong size. Verify blames that manifest (and its ref), whichever
// manifest the walk meets first, and not the healthy ref or the blob.
func TestVerifyChecksEveryManifestsSize(t *testing.T) {
	for _, order := range []string{"a-good", "z-good"} {
		t.Run(order, func(t *testing.T) {
			r := newFSReg(t)
			raw := []byte("shared blob content")
			d := digest.FromBytes(raw)
			if _, err := r.putBlob(bg, d, raw, 1, "", nil); err != nil {
				t.Fatal(err)
			}
			n := int64(len(raw))
			good := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: []File{{Path: "f", Size: n, Chunks: []Chunk{{d, n}}}}}
			bad := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: []File{{Path: "g", Size: n + 1, Chunks: []Chunk{{d, n + 1}}}}}
			goodRef, badRef := "v/"+order+":v1", "v/m-bad:v1"
			plantManifest(t, r, goodRef, marshalRaw(t, good))
			bd := plantManifest(t, r, badRef, marshalRaw(t, bad))
			v, err := r.Verify(bg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || len(v.Problems) != 1 {
				t.Fatalf("want one problem: %+v", v)
			}
			p := v.Problems[0]
			if p.Object != manifestKey(bd) || len(p.Refs) != 1 || p.Refs[0] != badRef {
				t.Fatalf("blamed %s (refs %v), want the bad manifest and %s", p.Object, p.Refs, badRef)
			}
		})
	}
}
