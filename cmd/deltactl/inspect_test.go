package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
)

func TestInspectCLI(t *testing.T) {
	var rep struct {
		Path       string            `json:"path"`
		Format     string            `json:"format"`
		Metadata   map[string]string `json:"metadata"`
		Parameters int64             `json:"parameters"`
		Bytes      int64             `json:"bytes"`
		Tensors    []struct {
			Name  string  `json:"name"`
			DType string  `json:"dtype"`
			Shape []int64 `json:"shape"`
		} `json:"tensors"`
		Adapter *struct {
			PeftType      string   `json:"peft_type"`
			R             int      `json:"r"`
			LoraAlpha     float64  `json:"lora_alpha"`
			TargetModules []string `json:"target_modules"`
			UseRSLoRA     *bool    `json:"use_rslora"`
			FanInFanOut   bool     `json:"fan_in_fan_out"`
			Targets       []struct {
				Target string  `json:"target"`
				Scale  float64 `json:"scale"`
			} `json:"targets"`
		} `json:"adapter"`
	}
	cliJSON(t, 0, &rep, "inspect", testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_final"))
	a := rep.Adapter
	if rep.Format != "peft-adapter" || a == nil || a.PeftType != "LORA" || a.R != 16 || a.LoraAlpha != 16 ||
		!a.FanInFanOut || a.UseRSLoRA == nil || len(a.TargetModules) != 1 || a.TargetModules[0] != "c_attn" {
		t.Fatalf("report %+v adapter %+v", rep, a)
	}
	if len(a.Targets) != 12 || a.Targets[0].Scale != 1 || !strings.HasSuffix(a.Targets[0].Target, "attn.c_attn.weight") {
		t.Errorf("targets %+v", a.Targets)
	}
	if rep.Parameters != 12*(16*768+2304*16) || rep.Bytes != 4*rep.Parameters {
		t.Errorf("parameters %d bytes %d", rep.Parameters, rep.Bytes)
	}

	code, out, _ := cliRun(t, "inspect", testutil.SharedData(t, "safetensors/hf-safetensors-samples/overall.safetensors"))
	if code != 0 || !strings.Contains(out, "F16") || !strings.Contains(out, "metadata test") {
		t.Errorf("table output (exit %d):\n%s", code, out)
	}
}

func TestInspectAndConvertErrors(t *testing.T) {
	malformed := testutil.SharedData(t, "malformed/syoyo_safetensors_abuse_attempt_1.safetensors")
	code, out, errOut := cliRun(t, "inspect", malformed)
	if code != exitFailure || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "syoyo_safetensors_abuse_attempt_1.safetensors") {
		t.Errorf("malformed: exit %d stdout %q stderr %q", code, out, errOut)
	}
	if strings.Contains(errOut, "goroutine") {
		t.Errorf("stack trace on bad input: %s", errOut)
	}
	dst := filepath.Join(t.TempDir(), "x.safetensors")
	if code, _, errOut := cliRun(t, "convert", malformed, dst); code != exitFailure || !strings.Contains(errOut, "header length") {
		t.Errorf("convert malformed: exit %d %q", code, errOut)
	}
	if code, _, _ := cliRun(t, "convert", "--dtype", "F8_E4M3", malformed, dst); code != exitUsage {
		t.Errorf("--dtype F8_E4M3: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := cliRun(t, "convert", "--shard-size", "lots", malformed, dst); code != exitUsage {
		t.Errorf("--shard-size lots: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := cliRun(t, "inspect"); code != exitUsage {
		t.Errorf("inspect without PATH: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := cliRun(t, "no-such-command"); code != exitUsage {
		t.Errorf("unknown command: exit %d, want %d", code, exitUsage)
	}
}

func TestConvertCLI(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "adapter")
	var res struct {
		Kind    string `json:"kind"`
		Tensors int    `json:"tensors"`
	}
	cliJSON(t, 0, &res, "convert", testutil.SharedData(t, "adapters/peft_regression_0.6.1_bin/lora_emb_conv1d"), dst)
	if res.Kind != "peft-adapter" || res.Tensors != 4 {
		t.Errorf("result %+v", res)
	}
	cliJSON(t, 0, nil, "inspect", dst)
}
