package peft

import (
	"fmt"
	"slices"
	"strings"
)

// keyKind says what one adapter tensor is.
type keyKind uint8

const (
	kindLoraA keyKind = iota + 1
	kindLoraB
	kindLoraBBias
	kindEmbA
	kindEmbB
	kindMagnitude
	kindIA3
	kindReplace
)

// keyInfo is a parsed adapter key.
type keyInfo struct {
	kind keyKind
	// module is the module path inside the base model
	// ("model.layers.0.self_attn.q_proj"); for kindReplace, target is the
	// full base tensor name and module its parent.
	module string
	target string
	// adapter is the adapter name left in the key ("default"), or "".
	adapter string
}

// basePrefix is what PEFT puts before every module path.
const basePrefix = "base_model.model."

var markers = map[string]keyKind{
	"lora_A":                kindLoraA,
	"lora_B":                kindLoraB,
	"lora_embedding_A":      kindEmbA,
	"lora_embedding_B":      kindEmbB,
	"lora_magnitude_vector": kindMagnitude,
	"ia3_l":                 kindIA3,
}

// parseKey maps a PEFT state-dict key to what it is and which base weight it
// belongs to (../shared/research/peft_mergekit.md 2.11):
//
//	base_model.model.M.lora_A[.ADAPTER].weight        -> LoRA A of M.weight
//	base_model.model.M.lora_B[.ADAPTER].weight|bias   -> LoRA B (or its bias)
//	base_model.model.M.lora_embedding_A|B[.ADAPTER]   -> embedding LoRA
//	base_model.model.M.lora_magnitude_vector[.ADAPTER][.weight] -> DoRA m
//	base_model.model.M.ia3_l[.ADAPTER]                -> IA3 vector
//	base_model.model.M.modules_to_save.ADAPTER.P      -> replacement of M.P
//	base_model.model.P (anything else)                -> replacement of P
//
// A "base_layer." left in a replacement name (a bias of a wrapped layer) is
// removed, since the base model has no such level.
func parseKey(key string) (keyInfo, error) {
	rest := strings.TrimPrefix(key, basePrefix)
	parts := strings.Split(rest, ".")
	if i := slices.Index(parts, "modules_to_save"); i > 0 && i+2 < len(parts) {
		p := append(slices.Clone(parts[:i]), parts[i+2:]...)
		return replaceInfo(p, parts[i+1]), nil
	}
	at := -1
	for i := len(parts) - 1; i >= 1; i-- {
		if _, ok := markers[parts[i]]; ok {
			at = i
			break
		}
	}
	if at < 0 {
		return replaceInfo(parts, ""), nil
	}
	kind := markers[parts[at]]
	info := keyInfo{kind: kind, module: strings.Join(parts[:at], ".")}
	info.target = info.module + ".weight"
	tail := parts[at+1:]
	bad := func() (keyInfo, error) {
		return keyInfo{}, fmt.Errorf("%w: tensor %q: unexpected %q after %s", ErrInvalid, key, strings.Join(tail, "."), parts[at])
	}
	switch kind {
	case kindLoraA, kindLoraB:
		// tail: [weight|bias] or [ADAPTER, weight|bias]
		switch {
		case len(tail) == 2:
			info.adapter, tail = tail[0], tail[1:]
		case len(tail) != 1:
			return bad()
		}
		switch {
		case tail[0] == "weight":
		case tail[0] == "bias" && kind == kindLoraB:
			info.kind = kindLoraBBias
		default:
			return bad()
		}
	case kindEmbA, kindEmbB, kindIA3, kindMagnitude:
		// tail: [] or [ADAPTER]; a magnitude vector may also end in "weight"
		if n := len(tail); kind == kindMagnitude && n > 0 && tail[n-1] == "weight" {
			tail = tail[:n-1]
		}
		switch len(tail) {
		case 0:
		case 1:
			info.adapter = tail[0]
		default:
			return bad()
		}
	}
	return info, nil
}

func replaceInfo(parts []string, adapter string) keyInfo {
	parts = slices.DeleteFunc(slices.Clone(parts), func(s string) bool { return s == "base_layer" })
	target := strings.Join(parts, ".")
	module := ""
	if len(parts) > 1 {
		module = strings.Join(parts[:len(parts)-1], ".")
	}
	return keyInfo{kind: kindReplace, module: module, target: target, adapter: adapter}
}
