package peft

import "strings"

// commonPrefixes are the wrapper prefixes that differ between a PEFT key
// and a base checkpoint's names in practice: a task head wrapper
// (GPT2LMHeadModel's "transformer.", LlamaForCausalLM's "model."), and
// multimodal wrappers ("language_model.").
var commonPrefixes = []string{"model.", "transformer.", "language_model.", "model.language_model.", "base_model."}

// ResolveTarget finds the base tensor for a PEFT-derived target name when
// the base checkpoint names it differently, and reports whether it found
// one. The rule, first hit wins:
//
//  1. the name itself;
//  2. the name with 1, 2, ... leading components dropped, keeping at
//     least the module's own name and the parameter, and never dropping a
//     numeric component (a layer index)
//     ("transformer.h.0.attn.c_attn.weight" -> "h.0.attn.c_attn.weight"
//     for a GPT2Model checkpoint without the LM-head wrapper);
//  3. the name with one of the common wrapper prefixes added
//     ("model.", "transformer.", "language_model.",
//     "model.language_model.", "base_model.");
//  4. each name of step 2 with each prefix of step 3 (a wrapper swapped
//     for another).
//
// Dropping is tried before adding, and shallow changes before deep ones,
// so the closest name wins; nothing is guessed from suffixes alone.
func ResolveTarget(target string, has func(name string) bool) (string, bool) {
	if has(target) {
		return target, true
	}
	parts := strings.Split(target, ".")
	var dropped []string
	for i := 1; i <= len(parts)-2; i++ {
		if isIndex(parts[i-1]) {
			break // never drop a layer index: h.0.x and h.1.x must stay apart
		}
		n := strings.Join(parts[i:], ".")
		if has(n) {
			return n, true
		}
		dropped = append(dropped, n)
	}
	for _, p := range commonPrefixes {
		if has(p + target) {
			return p + target, true
		}
	}
	for _, n := range dropped {
		for _, p := range commonPrefixes {
			if has(p + n) {
				return p + n, true
			}
		}
	}
	return "", false
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
