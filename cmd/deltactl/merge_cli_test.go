package main

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/internal/testutil"
)

func f32T(t *testing.T, name string, shape []int64, seed uint64, scale float64) *format.Tensor {
	t.Helper()
	n := 1
	for _, s := range shape {
		n *= int(s)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	x := &format.Tensor{Name: name, DType: format.F32, Shape: shape, Data: make([]byte, 4*n)}
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(x.Data[4*i:], math.Float32bits(float32(scale*rng.NormFloat64())))
	}
	return x
}

// cliFixtures writes a small base model and two PEFT LoRA adapters
// (ranks 4 and 6) through format/peft, as a user's files would be.
func cliFixtures(t *testing.T) (base, a1, a2 string) {
	dir := t.TempDir()
	base = filepath.Join(dir, "base")
	os.MkdirAll(base, 0o755)
	ts := []*format.Tensor{
		f32T(t, "model.layers.0.q_proj.weight", []int64{32, 24}, 1, 0.05),
		f32T(t, "model.layers.0.v_proj.weight", []int64{32, 24}, 2, 0.05),
		f32T(t, "model.norm.weight", []int64{24}, 3, 1),
	}
	if err := safetensors.WriteFile(context.Background(), filepath.Join(base, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base, "config.json"), []byte(`{"model_type": "llama"}`), 0o644)
	adapter := func(name string, r int64, seed uint64) string {
		d := &format.Delta{Method: "lora"}
		for i, m := range []string{"model.layers.0.q_proj", "model.layers.0.v_proj"} {
			d.LoRA = append(d.LoRA, &format.LoRA{Target: m + ".weight", Scale: 2,
				A: f32T(t, "a", []int64{r, 24}, seed+uint64(i), 0.1), B: f32T(t, "b", []int64{32, r}, seed+10+uint64(i), 0.1)})
		}
		cfg, tensors, err := peft.FromDelta(d, "base")
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := peft.Write(context.Background(), p, cfg, tensors, true); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return base, adapter("a1", 4, 100), adapter("a2", 6, 200)
}

type moduleJSON struct {
	Target string  `json:"target"`
	Rank   int     `json:"rank"`
	RelErr float64 `json:"rel_err"`
}

func TestMergeCommandsCLI(t *testing.T) {
	base, a1, a2 := cliFixtures(t)
	out := t.TempDir()
	M, U := filepath.Join(out, "merged"), filepath.Join(out, "unmerged")

	var mrep struct {
		Merged     []string `json:"merged"`
		Tensors    int      `json:"tensors"`
		Correction string   `json:"correction"`
	}
	cliJSON(t, 0, &mrep, "merge", "--base", base, "--delta", a1, "--correction", "--out", M)
	if mrep.Tensors != 3 || len(mrep.Merged) != 2 || mrep.Correction == "" {
		t.Fatalf("merge JSON %+v", mrep)
	}
	var urep struct {
		Exact bool `json:"exact"`
	}
	cliJSON(t, 0, &urep, "unmerge", "--merged", M, "--delta", a1, "--out", U)
	a, _ := os.ReadFile(filepath.Join(base, "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(U, "model.safetensors"))
	if !urep.Exact || string(a) != string(b) {
		t.Fatalf("unmerge with correction is not bit-exact (exact=%v)", urep.Exact)
	}

	var srep struct {
		Modules []moduleJSON `json:"modules"`
	}
	S := filepath.Join(out, "stacked")
	cliJSON(t, 0, &srep, "stack", "--delta", a1, "--delta", a2, "--weight", "0.5", "--weight", "1.5", "--method", "cat", "--out", S)
	if len(srep.Modules) != 2 || srep.Modules[0].Rank != 10 {
		t.Fatalf("stack JSON %+v", srep)
	}
	ad, err := peft.Load(S)
	if err != nil {
		t.Fatalf("stack output is not a PEFT folder: %v", err)
	}
	d, err := ad.Delta()
	if err != nil || len(d.LoRA) != 2 || d.LoRA[0].Rank() != 10 || d.LoRA[0].Scale != 1 || ad.Config.LoraAlpha != 10 {
		t.Fatalf("stacked adapter: %v %+v alpha %v", err, d, ad.Config.LoraAlpha)
	}
	ad.Close()

	R := filepath.Join(out, "reduced")
	cliJSON(t, 0, &srep, "reduce", "--delta", S, "--rank", "3", "--out", R)
	for _, m := range srep.Modules {
		if m.Rank != 3 || !(m.RelErr > 0 && m.RelErr < 1) {
			t.Errorf("reduce module %+v", m)
		}
	}

	// The merged model minus the base is exactly the rank-4 update (up to
	// float32 rounding): extract at rank 4 recovers it.
	E := filepath.Join(out, "extracted")
	cliJSON(t, 0, &srep, "extract", "--base", base, "--tuned", M, "--rank", "4", "--out", E)
	if len(srep.Modules) != 2 {
		t.Fatalf("extract JSON %+v", srep)
	}
	for _, m := range srep.Modules {
		if m.Rank != 4 || m.RelErr > 1e-5 {
			t.Errorf("extract module %+v", m)
		}
	}
	if _, err := peft.Load(E); err != nil {
		t.Errorf("extract output: %v", err)
	}

	// Human output names the modules.
	if code, stdout, _ := cliRun(t, "reduce", "--delta", S, "--energy", "0.9", "--out", filepath.Join(out, "r2")); code != 0 || !strings.Contains(stdout, "q_proj") {
		t.Errorf("reduce --energy: %d %q", code, stdout)
	}
}

func TestMergeCommandsCLIErrors(t *testing.T) {
	base, a1, a2 := cliFixtures(t)
	out := t.TempDir()
	noOut := func(p string) {
		t.Helper()
		if _, err := os.Stat(p); err == nil {
			t.Errorf("failed command left %s", p)
		}
		ents, _ := os.ReadDir(filepath.Dir(p))
		for _, e := range ents {
			if strings.Contains(e.Name(), ".tmp") {
				t.Errorf("failed command left %s", e.Name())
			}
		}
	}
	usage := [][]string{
		{"merge", "--base", base, "--delta", a1},                                                        // no --out
		{"merge", "--base", base, "--delta", a1, "--dtype", "I8", "--out", out + "/x"},                  // bad dtype
		{"merge", "--base", base, "--delta", a1, "--weight", "1", "--weight", "2", "--out", out + "/x"}, // weights != deltas
		{"stack", "--delta", a1, "--method", "cat", "--out", out + "/x"},                                // one delta
		{"stack", "--delta", a1, "--delta", a2, "--method", "mean", "--out", out + "/x"},                // unknown method
		{"stack", "--delta", a1, "--delta", a2, "--method", "ties", "--out", out + "/x"},                // no density
		{"reduce", "--delta", a1, "--rank", "2", "--energy", "0.5", "--out", out + "/x"},                // both rules
		{"reduce", "--delta", a1, "--out", out + "/x"},                                                  // no rule
		{"extract", "--base", base, "--tuned", base, "--energy", "2", "--out", out + "/x"},              // energy > 1
		{"extract", "--base", base, "--tuned", base, "--rank", "2", "--power-iters", "-1", "--out", out + "/x"},
	}
	for _, args := range usage {
		if code, _, errOut := cliRun(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
		noOut(out + "/x")
	}

	// The real GPT-2 LoRA does not fit the tiny GPT-2: exit 1, the message
	// names the tensor and both shapes, and no output folder appears.
	gpt2 := testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_final")
	tiny := testutil.SharedData(t, "models/lm-buddy-tiny_gpt2")
	dst := filepath.Join(out, "gpt2-merged")
	code, _, errOut := cliRun(t, "merge", "--base", tiny, "--delta", gpt2, "--out", dst)
	if code != 1 {
		t.Fatalf("mismatched merge: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"h.0.attn.c_attn.weight", "[2,6]", "[768,2304]"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("message %q lacks %q", errOut, want)
		}
	}
	noOut(dst)

	// Failures after flag parsing: exit 1 (4 for a missing input), one
	// JSON error line under --json, nothing written.
	code, _, errOut = cliRun(t, "reduce", "--delta", filepath.Join(out, "missing"), "--rank", "2", "--out", out+"/y", "--json")
	if code != exitNotFound || !strings.HasPrefix(errOut, `{"error":{"code":"not_found"`) {
		t.Errorf("reduce of a missing delta: exit %d, want 4 (%s)", code, errOut)
	}
	noOut(out + "/y")
	fails := [][]string{
		{"merge", "--base", base, "--delta", base, "--out", out + "/y"},   // a model is not an adapter
		{"unmerge", "--merged", tiny, "--delta", a1, "--out", out + "/y"}, // targets not in the model
		{"extract", "--base", base, "--tuned", tiny, "--rank", "2", "--out", out + "/y"},
	}
	for _, args := range fails {
		code, _, errOut := cliRun(t, append(args, "--json")...)
		if code != 1 || !strings.HasPrefix(errOut, `{"error":{"code":"failure","exit_code":1,"message":`) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, want 1 (%s)", args, code, errOut)
		}
		noOut(out + "/y")
	}
	// An existing output is never overwritten.
	os.MkdirAll(out+"/z", 0o755)
	os.WriteFile(out+"/z/keep", []byte("x"), 0o644)
	if code, _, _ := cliRun(t, "merge", "--base", base, "--delta", a1, "--out", out+"/z"); code != 1 {
		t.Errorf("merge into an existing folder: exit %d", code)
	}
	if b, _ := os.ReadFile(out + "/z/keep"); string(b) != "x" {
		t.Error("existing output touched")
	}
}
