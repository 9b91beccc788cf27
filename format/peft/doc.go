// Package peft reads and writes Hugging Face PEFT adapter folders:
// adapter_config.json plus adapter_model.safetensors (or the legacy
// adapter_model.bin torch pickle), and turns them into a format.Delta keyed
// by base-model weight names.
//
// Semantics follow PEFT exactly (../shared/research/peft_mergekit.md 2.1, 2.11):
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
//
// # Bottleneck adapters (a deltactl extension)
//
// PEFT has no bottleneck (Houlsby) adapter, so deltactl's trainer writes its
// own in the same folder layout, and Load, Delta and Summary read it:
//
//   - adapter_config.json has "peft_type": "BOTTLENECK" and, beside
//     task_type and base_model_name_or_path, "adapter_size" (m),
//     "adapter_act" ("relu", "gelu" in its exact erf form, or "silu"),
//     "placements" (a subset of ["attn_adapter", "mlp_adapter"]; both when
//     absent), and optionally "hidden_size" and "num_hidden_layers" of the
//     base (see BottleneckConfig, NewBottleneckConfig);
//   - adapter_model.safetensors holds, for every decoder layer N and
//     placement P, model.layers.N.P.down.weight [m, hidden],
//     model.layers.N.P.down.bias [m], model.layers.N.P.up.weight [hidden, m]
//     and model.layers.N.P.up.bias [hidden] (biases optional; a leading
//     "base_model.model." is accepted);
//   - the adapter maps the output y of layer N's attention block
//     (attn_adapter) or MLP (mlp_adapter), before that block's residual
//     add, to y + up(act(down·y + down.bias)) + up.bias.
//
// Delta returns one format.Adapter per placement with Method format.MethodAdapter.
// Such a delta adds layers and a non-linearity, so it cannot be merged into
// the base weights and has no PEFT form (FromDelta refuses it); it is
// evaluated unmerged.
package peft
