package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/gguf/llamacpptest"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/internal/testutil"
)

// writeTinyLoRA writes a random rsLoRA adapter with an alpha_pattern for
// the bundled tiny model (q, k, v projections of every layer).
func writeTinyLoRA(t *testing.T, dir string) {
	t.Helper()
	f, err := safetensors.Open(testutil.Testdata(t, "tinyllama/model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := peft.NewLoRAConfig()
	cfg.R, cfg.LoraAlpha, cfg.UseRSLoRA = 4, 8, true
	cfg.TargetModules = peft.ModuleList("q_proj", "k_proj", "v_proj")
	cfg.AlphaPattern = peft.Patterns{{Key: "v_proj", Value: 20}}
	seed := uint64(1)
	rnd := func(n int64, std float64) []byte {
		b := make([]byte, 4*n)
		for i := int64(0); i < n; i++ {
			seed = seed*6364136223846793005 + 1442695040888963407
			u := float64(seed>>11)/(1<<53) - 0.5
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(u*std*3.46)))
		}
		return b
	}
	var ts []*format.Tensor
	for _, ti := range f.Infos() {
		mod := strings.TrimSuffix(ti.Name, ".weight")
		if !(strings.HasSuffix(mod, "q_proj") || strings.HasSuffix(mod, "k_proj") || strings.HasSuffix(mod, "v_proj")) {
			continue
		}
		out, in := ti.Shape[0], ti.Shape[1]
		ts = append(ts,
			&format.Tensor{Name: "base_model.model." + mod + ".lora_A.weight", DType: format.F32, Shape: []int64{4, in}, Data: rnd(4*in, 1/math.Sqrt(float64(in)))},
			&format.Tensor{Name: "base_model.model." + mod + ".lora_B.weight", DType: format.F32, Shape: []int64{out, 4}, Data: rnd(out*4, 0.2)})
	}
	if err := peft.Write(context.Background(), dir, cfg, ts, true); err != nil {
		t.Fatal(err)
	}
}

// export -> inspect -> convert -> export through the CLI, the adapter
// export, and the refusals.
func TestExportCLI(t *testing.T) {
	tiny := testutil.Testdata(t, "tinyllama")
	tmp := t.TempDir()
	g1 := checkExportRoundTrip(t, tiny, tmp)
	reg := checkExportFromRef(t, tiny, tmp)
	ad, adg := checkExportAdapter(t, tmp, reg, g1)
	checkExportRefusals(t, tiny, tmp, g1)
	checkExportLlamaCpp(t, tiny, tmp, ad, adg)
}

// checkExportRoundTrip exports tiny as F16 with a Modelfile, inspects it,
// converts it back and exports that again: the two GGUFs must be equal.
// It returns the first GGUF's path.
func checkExportRoundTrip(t *testing.T, tiny, tmp string) string {
	t.Helper()
	g1 := filepath.Join(tmp, "tiny.gguf")
	var res struct {
		Kind, Arch, Type, Vocab string
		Tensors                 int
	}
	cliJSON(t, 0, &res, "export", tiny, g1, "--dtype", "f16", "--modelfile", filepath.Join(tmp, "Modelfile"))
	if res.Kind != "model" || res.Arch != "llama" || res.Type != "F16" || res.Vocab != "bytes" || res.Tensors != 39 {
		t.Fatalf("export result %+v", res)
	}
	if mf, err := os.ReadFile(filepath.Join(tmp, "Modelfile")); err != nil || !strings.Contains(string(mf), "\nFROM ./tiny.gguf\n") {
		t.Errorf("Modelfile %q, %v", mf, err)
	}
	var rep struct {
		Format  string
		Tensors []struct {
			Name     string
			DType    string
			GGMLType string `json:"ggml_type"`
		}
	}
	cliJSON(t, 0, &rep, "inspect", g1)
	if rep.Format != "gguf" || len(rep.Tensors) != 39 || rep.Tensors[0].Name != "token_embd.weight" || rep.Tensors[0].GGMLType != "F16" || rep.Tensors[1].GGMLType != "F32" {
		t.Fatalf("inspect %+v", rep)
	}
	back := filepath.Join(tmp, "back")
	if code, _, errOut := cliRun(t, "convert", g1, back); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, errOut)
	}
	g2 := filepath.Join(tmp, "again.gguf")
	if code, _, errOut := cliRun(t, "export", back, g2); code != 0 {
		t.Fatalf("export again: exit %d: %s", code, errOut)
	}
	a, _ := os.ReadFile(g1)
	b, _ := os.ReadFile(g2)
	if !bytes.Equal(a, b) {
		t.Errorf("export -> convert -> export changed the GGUF (%d vs %d bytes)", len(a), len(b))
	}
	return g1
}

// checkExportFromRef pushes tiny to a registry in tmp and exports it by
// ref: the GGUF is named by the ref and equals the folder's export. It
// returns the --registry flag.
func checkExportFromRef(t *testing.T, tiny, tmp string) string {
	t.Helper()
	reg := "--registry=" + filepath.Join(tmp, "registry")
	cliJSON(t, 0, nil, "push", reg, "tiny:v1", tiny)
	fromRef := filepath.Join(tmp, "ref.gguf")
	if code, _, errOut := cliRun(t, "export", reg, "tiny:v1", fromRef, "--dtype", "F16"); code != 0 {
		t.Fatalf("export from a ref: exit %d: %s", code, errOut)
	}
	var refRep struct{ Metadata map[string]string }
	cliJSON(t, 0, &refRep, "inspect", fromRef)
	if n := refRep.Metadata["general.name"]; n != `"tiny:v1"` {
		t.Errorf("general.name of a ref export: %s", n)
	}
	fromDir := filepath.Join(tmp, "dir.gguf")
	cliRun(t, "export", tiny, fromDir, "--dtype", "F16", "--name", "tiny:v1")
	r1, _ := os.ReadFile(fromRef)
	r2, _ := os.ReadFile(fromDir)
	if len(r1) == 0 || !bytes.Equal(r1, r2) {
		t.Errorf("export of the pushed ref differs from the export of the folder (%d vs %d bytes)", len(r1), len(r2))
	}
	return reg
}

// checkExportAdapter exports a tiny rsLoRA with --base given as a ref and a
// Modelfile, after checking that --base is required. It returns the adapter
// folder and its GGUF.
func checkExportAdapter(t *testing.T, tmp, reg, g1 string) (ad, adg string) {
	t.Helper()
	ad = filepath.Join(tmp, "lora")
	writeTinyLoRA(t, ad)
	adg = filepath.Join(tmp, "lora.gguf")
	if code, _, _ := cliRun(t, "export", ad, adg); code != exitUsage {
		t.Errorf("adapter without --base: exit %d, want %d", code, exitUsage)
	}
	if code, _, errOut := cliRun(t, "export", reg, ad, adg, "--base", "tiny:v1", "--modelfile", filepath.Join(tmp, "lora.Modelfile"), "--base-gguf", g1); code != 0 {
		t.Fatalf("adapter export: exit %d: %s", code, errOut)
	}
	if mf, _ := os.ReadFile(filepath.Join(tmp, "lora.Modelfile")); !strings.Contains(string(mf), "FROM ./tiny.gguf\nADAPTER ./lora.gguf\n") {
		t.Errorf("adapter Modelfile %q", mf)
	}
	return ad, adg
}

// checkExportRefusals: an existing output and an output not ending in .gguf.
func checkExportRefusals(t *testing.T, tiny, tmp, g1 string) {
	t.Helper()
	if code, _, errOut := cliRun(t, "export", tiny, g1); code != exitFailure || !strings.Contains(errOut, "already exists") {
		t.Errorf("existing output: exit %d %q", code, errOut)
	}
	if code, _, _ := cliRun(t, "export", tiny, filepath.Join(tmp, "x.bin")); code != exitUsage {
		t.Errorf("output not .gguf: exit %d", code)
	}

}

// checkExportLlamaCpp: llama.cpp runs the exported base + adapter as
// deltactl eval --delta does.
func checkExportLlamaCpp(t *testing.T, tiny, tmp, ad, adg string) {
	t.Helper()
	o := llamacpptest.New(t)
	raw, err := os.ReadFile(filepath.Join(tiny, "heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(tmp, "text.txt")
	if err := os.WriteFile(text, raw[:129], 0o644); err != nil {
		t.Fatal(err)
	}
	var ev struct{ Loss float64 }
	cliJSON(t, 0, &ev, "eval", "--base", tiny, "--delta", ad, "--data", text, "--seq", "64", "--threads", "2")
	var win [][]int32
	for o := 0; o+1 < 129; o += 64 {
		w := make([]int32, 0, 65)
		for _, c := range raw[o:min(o+65, 129)] {
			w = append(w, int32(c))
		}
		win = append(win, w)
	}
	g32 := filepath.Join(tmp, "tiny32.gguf")
	if code, _, errOut := cliRun(t, "export", tiny, g32, "--dtype", "F32"); code != 0 {
		t.Fatalf("export F32: %s", errOut)
	}
	got, _, err := o.Loss(g32, []llamacpptest.Adapter{{Path: adg, Scale: 1}}, win)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tiny + rsLoRA/alpha_pattern adapter: llama.cpp %.7f, deltactl eval --delta %.7f", got, ev.Loss)
	if math.Abs(got-ev.Loss)/ev.Loss > 1e-4 {
		t.Errorf("llama.cpp base+adapter loss %.7f, deltactl eval --delta %.7f", got, ev.Loss)
	}
}
