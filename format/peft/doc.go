// Package peft reads and writes Hugging Face PEFT adapter folders:
// adapter_config.json plus adapter_model.safetensors (or the legacy
// adapter_model.bin torch pickle), and turns them into a format.Delta keyed
// by base-model weight names.
//
// Semantics follow PEFT exactly (research/peft_mergekit.md 2.1, 2.11):
//
//   - scale = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora;
//   - r and lora_alpha per module come from rank_pattern / alpha_pattern:
//     the first key, in the file's dict order, for which the Python regex
//     (.*\.)?(KEY)$ matches the module name from its start wins
//     (peft.utils.other.get_pattern_key); otherwise the config's r / alpha;
//   - target_modules as a string is a regex that must match the whole
//     module name; as a list it matches a name equal to an entry or ending
//     in "." + entry;
//   - key mapping: strip "base_model.model.", then ".lora_A.weight",
//     ".lora_B.weight", ".lora_embedding_A", ".lora_embedding_B",
//     ".lora_magnitude_vector" and ".ia3_l" name the module whose
//     "<module>.weight" is the target; an adapter name left in a key
//     (".lora_A.default.weight") is dropped; other keys are full
//     replacement tensors (modules_to_save, trained biases).
package peft
