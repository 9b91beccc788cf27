package peft

import (
	"errors"
	"testing"

	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/internal/testutil"
)

func TestParseKey(t *testing.T) {
	cases := []struct {
		key     string
		kind    keyKind
		target  string
		adapter string
	}{
		{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", kindLoraA, "model.layers.0.self_attn.q_proj.weight", ""},
		{"base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight", kindLoraB, "model.layers.0.self_attn.q_proj.weight", "default"},
		{"base_model.model.q.lora_B.bias", kindLoraBBias, "q.weight", ""},
		{"base_model.model.emb.lora_embedding_A", kindEmbA, "emb.weight", ""},
		{"base_model.model.emb.lora_embedding_B.default", kindEmbB, "emb.weight", "default"},
		{"base_model.model.q.lora_magnitude_vector", kindMagnitude, "q.weight", ""},
		{"base_model.model.q.lora_magnitude_vector.weight", kindMagnitude, "q.weight", ""},
		{"base_model.model.q.lora_magnitude_vector.default.weight", kindMagnitude, "q.weight", "default"},
		{"base_model.model.encoder.block.0.layer.0.SelfAttention.k.ia3_l", kindIA3, "encoder.block.0.layer.0.SelfAttention.k.weight", ""},
		{"base_model.model.classifier.modules_to_save.default.dense.weight", kindReplace, "classifier.dense.weight", "default"},
		{"base_model.model.classifier.dense.bias", kindReplace, "classifier.dense.bias", ""},
		{"base_model.model.h.0.attn.c_attn.base_layer.bias", kindReplace, "h.0.attn.c_attn.bias", ""},
		{"model.layers.0.q.lora_A.weight", kindLoraA, "model.layers.0.q.weight", ""}, // no base_model.model. prefix
	}
	for _, c := range cases {
		got, err := parseKey(c.key)
		if err != nil || got.kind != c.kind || got.target != c.target || got.adapter != c.adapter {
			t.Errorf("%s: %+v %v; want kind %d target %s adapter %q", c.key, got, err, c.kind, c.target, c.adapter)
		}
	}
	for _, bad := range []string{"base_model.model.q.lora_A.bias", "base_model.model.q.lora_A.a.b.weight", "base_model.model.q.ia3_l.a.b"} {
		if _, err := parseKey(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", bad, err)
		}
	}
}

// The tiny GPT2Model checkpoint has no "transformer." wrapper: a LoRA for
// GPT2LMHeadModel names transformer.h.0.attn.c_attn.weight.
func TestResolveTarget(t *testing.T) {
	f, err := safetensors.Open(testutil.SharedData(t, "models/lm-buddy-tiny_gpt2/model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	has := func(n string) bool { _, ok := f.Info(n); return ok }
	cases := map[string]string{
		"h.0.attn.c_attn.weight":                     "h.0.attn.c_attn.weight",
		"transformer.h.0.attn.c_attn.weight":         "h.0.attn.c_attn.weight",
		"base_model.transformer.h.0.mlp.c_fc.weight": "h.0.mlp.c_fc.weight",
		"transformer.wte.weight":                     "wte.weight",
		"transformer.h.1.attn.c_attn.weight":         "", // no layer 1: must not fall back to layer 0
		"transformer.h.0.attn.c_attn.weight.x":       "",
	}
	for in, want := range cases {
		got, ok := ResolveTarget(in, has)
		if got != want || ok != (want != "") {
			t.Errorf("ResolveTarget(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	// Adding a wrapper: a base with "model." names.
	base := map[string]bool{"model.layers.0.self_attn.q_proj.weight": true, "language_model.model.layers.0.mlp.up_proj.weight": true}
	has = func(n string) bool { return base[n] }
	for in, want := range map[string]string{
		"layers.0.self_attn.q_proj.weight":             "model.layers.0.self_attn.q_proj.weight",
		"model.layers.0.mlp.up_proj.weight":            "language_model.model.layers.0.mlp.up_proj.weight",
		"transformer.layers.0.self_attn.q_proj.weight": "model.layers.0.self_attn.q_proj.weight",
	} {
		if got, ok := ResolveTarget(in, has); got != want || !ok {
			t.Errorf("ResolveTarget(%q) = %q, want %q", in, got, want)
		}
	}
}
