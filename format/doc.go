// Package format is deltactl's in-memory model of weights and deltas: dtypes,
// tensors, models and the deltas (LoRA, IA3, bottleneck adapters, exact full
// differences) that turn one model into another. Its subpackages read and write
// the file formats users have: safetensors, Hugging Face model folders, PEFT
// adapter folders and legacy torch pickles.
//
// format knows nothing of registries or arithmetic beyond dtype conversion,
// which it delegates to package kernels.
package format
