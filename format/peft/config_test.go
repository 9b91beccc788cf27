package peft

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
)

// Every real PEFT config survives ParseConfig + Marshal byte for byte:
// unknown fields, nulls and number spellings included.
func TestConfigRoundTripBytes(t *testing.T) {
	root := testutil.SharedData(t, "adapters")
	files, _ := filepath.Glob(filepath.Join(root, "*", ConfigFile))
	more, _ := filepath.Glob(filepath.Join(root, "*", "*", ConfigFile))
	n := 0
	for _, p := range append(files, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseConfig(b)
		if errors.Is(err, ErrNotPEFT) && strings.Contains(p, "mlx") {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, b) {
			t.Errorf("%s: round trip differs:\n%s", p, out)
		}
		n++
	}
	if n < 8 {
		t.Fatalf("only %d configs checked", n)
	}
}

// Changing a typed field rewrites only that field; unknown fields and
// nulls of the modern RoBERTa config stay.
func TestConfigEditKeepsUnknown(t *testing.T) {
	b, _ := os.ReadFile(filepath.Join(testutil.SharedData(t, "adapters/peft_lora_roberta-base_mrpc_ckpt460"), ConfigFile))
	c, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	c.R = 4
	c.RankPattern = Patterns{{"query", 2}}
	c.UseRSLoRA = true
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]any
	json.Unmarshal(b, &before)
	json.Unmarshal(out, &after)
	for k, v := range before {
		switch k {
		case "r", "rank_pattern", "use_rslora":
			continue
		}
		if vb, _ := json.Marshal(v); string(vb) != mustJSON(after[k]) {
			t.Errorf("field %s changed: %s -> %s", k, vb, mustJSON(after[k]))
		}
	}
	if after["r"] != 4.0 || after["use_rslora"] != true || mustJSON(after["rank_pattern"]) != `{"query":2}` {
		t.Errorf("edited fields: r=%v rslora=%v rank_pattern=%s", after["r"], after["use_rslora"], mustJSON(after["rank_pattern"]))
	}
	for _, k := range []string{"use_bdlora", "monteclora_config", "alora_invocation_tokens", "arrow_config"} {
		if v, ok := after[k]; !ok || v != nil {
			t.Errorf("unknown null field %s lost: %v %v", k, v, ok)
		}
	}
	if after["megatron_core"] != "megatron.core" || after["qalora_group_size"] != 16.0 {
		t.Errorf("unknown fields lost")
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestConfigErrors(t *testing.T) {
	cases := map[string]string{
		`[1,2]`:                                             "adapter_config.json",
		`{"peft_type": "LORA", "r": "8"}`:                   `field "r"`,
		`{"peft_type": "LORA", "r": 8.5}`:                   `field "r"`,
		`{"peft_type": "LORA", "target_modules": 3}`:        `field "target_modules"`,
		`{"peft_type": "LORA", "rank_pattern": {"q": "x"}}`: `field "rank_pattern"`,
		`{"peft_type": "LORA", "init_lora_weights": 3}`:     `field "init_lora_weights"`,
		`{"peft_type": 7}`:                                  `field "peft_type"`,
	}
	for in, want := range cases {
		_, err := ParseConfig([]byte(in))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrInvalid mentioning %s", in, err, want)
		}
	}
	if _, err := ParseConfig([]byte(`{"r": 8}`)); !errors.Is(err, ErrNotPEFT) {
		t.Errorf("no peft_type: %v", err)
	}
	// Defaults when absent are PEFT's: r=8, lora_alpha=8, bias none.
	c, err := ParseConfig([]byte(`{"peft_type": "LORA"}`))
	if err != nil || c.R != 8 || c.LoraAlpha != 8 || c.Bias != "none" || c.InitLoraWeights != true {
		t.Errorf("defaults: %+v %v", c, err)
	}
	if out, _ := c.Marshal(); string(out) != "{\n  \"peft_type\": \"LORA\"\n}" {
		t.Errorf("minimal config marshals as %s", out)
	}
}

// PEFT's get_pattern_key: re.match(rf"(.*\.)?({key})$", module), first key
// in dict order wins; scale alpha/r or alpha/sqrt(r).
func TestScaleRules(t *testing.T) {
	c, err := ParseConfig([]byte(`{"peft_type": "LORA", "r": 8, "lora_alpha": 16,
		"rank_pattern": {"layers\\.0\\..*": 4, "q_proj": 2, "model.layers.1.self_attn.q_proj": 32},
		"alpha_pattern": {"v_proj": 3}}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		module     string
		rank       int
		alpha      float64
		rKey, aKey string
	}{
		{"model.layers.0.self_attn.q_proj", 4, 16, `layers\.0\..*`, ""},
		// "q_proj" comes before the full path in dict order, so it wins.
		{"model.layers.1.self_attn.q_proj", 2, 16, "q_proj", ""},
		{"model.layers.1.self_attn.v_proj", 8, 3, "", "v_proj"},
		{"model.layers.1.self_attn.xq_proj", 8, 16, "", ""},  // no "." before the key
		{"model.layers.10.self_attn.k_proj", 8, 16, "", ""},  // "layers.0." needs the dot after 0... and the start
		{"q_proj", 2, 16, "q_proj", ""},                      // (.*\.)? may be empty
		{"model.layers.1.self_attn.q_proj_x", 8, 16, "", ""}, // anchored at the end
	}
	for _, k := range cases {
		ms, err := c.ScaleOf(k.module)
		if err != nil {
			t.Fatal(err)
		}
		if ms.Rank != k.rank || ms.Alpha != k.alpha || ms.RankKey != k.rKey || ms.AlphaKey != k.aKey || ms.Scale != k.alpha/float64(k.rank) {
			t.Errorf("%s: %+v, want r=%d alpha=%v keys %q %q", k.module, ms, k.rank, k.alpha, k.rKey, k.aKey)
		}
	}
	c.UseRSLoRA = true
	ms, _ := c.ScaleOf("model.layers.0.self_attn.q_proj")
	if ms.Scale != 16/math.Sqrt(4) {
		t.Errorf("rsLoRA scale %v, want 8", ms.Scale)
	}
	c.RankPattern = Patterns{{"(", 1}}
	if _, err := c.ScaleOf("a"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad regex key: %v", err)
	}
	c.RankPattern = Patterns{{"a", 0}}
	if _, err := c.ScaleOf("a"); !errors.Is(err, ErrInvalid) {
		t.Errorf("r=0: %v", err)
	}
}

func TestTargetModulesMatch(t *testing.T) {
	list := ModuleList("q_proj", "self_attn.v_proj")
	re := Modules{Set: true, IsRegex: true, Regex: `.*\.(q|v)_proj`}
	cases := []struct {
		name     string
		list, re bool
	}{
		{"model.layers.0.self_attn.q_proj", true, true},
		{"model.layers.0.self_attn.v_proj", true, true},
		{"q_proj", true, false}, // the regex needs a prefix; fullmatch
		{"model.layers.0.self_attn.xq_proj", false, false},
		{"model.layers.0.mlp.v_proj", false, true},
		{"model.layers.0.self_attn.q_proj.lora", false, false},
	}
	for _, c := range cases {
		l, _ := list.Match(c.name)
		r, _ := re.Match(c.name)
		if l != c.list || r != c.re {
			t.Errorf("%s: list %v regex %v, want %v %v", c.name, l, r, c.list, c.re)
		}
	}
}

func FuzzPEFTConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(testutil.Testdata(f, "peft"), "*.json"))
	if len(files) == 0 {
		f.Fatal("no seed configs in testdata/peft")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"peft_type":"LORA","rank_pattern":{"a":1,"a":2},"layers_to_transform":3,"layers_pattern":"h"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotPEFT) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v", err)
		}
		c2, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		out2, err := c2.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal not stable:\n%s\n%s", out, out2)
		}
		for _, m := range []string{"model.layers.0.q_proj", "a"} {
			c.ScaleOf(m)
			c.TargetModules.Match(m)
		}
	})
}

// The committed seed configs are the real files: they must round-trip too.
func TestSeedConfigsRoundTrip(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testutil.Testdata(t, "peft"), "*.json"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		c, err := ParseConfig(b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if out, _ := c.Marshal(); !bytes.Equal(out, b) {
			t.Errorf("%s: round trip differs", p)
		}
	}
}
