// Package train is deltactl's CPU trainer for Llama-family decoder models.
//
// It loads a Hugging Face model folder (config.json + safetensors) with the
// exact semantics and tensor names of transformers' LlamaForCausalLM
// (RMSNorm, rotate-half RoPE, SwiGLU MLP, grouped-query causal attention,
// tied or untied embeddings, optional q/k/v biases as in Qwen2), and trains
// one of three kinds of delta on it (Options.Method). The same decoder runs
// Llama 3.1/3.2 (llama3 and linear RoPE scaling), Mistral (sequences within
// its sliding window) and Qwen3 (per-head q/k RMSNorm, head_dim independent
// of the hidden size); other families are refused by model_type
// (ErrUnsupported). The deltas are:
//
//   - format.MethodLoRA: low-rank updates W + s·B·A on any of q/k/v/o/gate/up/down_proj,
//     written as a PEFT LoRA folder;
//   - format.MethodAdapter: bottleneck adapters y + up(act(down(y))) on the output of
//     every attention block and every MLP, written as a deltactl adapter
//     folder (adapter_config.json with "peft_type": "BOTTLENECK", the layout
//     package peft documents and reads);
//   - format.MethodFull: every weight, written as a Hugging Face model folder.
//
// Errors: an option that cannot work is an *OptionError naming the field of
// Options at fault (callers such as deltactl say it in their own words);
// data that cannot be trained on wraps ErrData and names the file and line.
//
// Evaluate measures a model's loss with a delta applied unmerged; Generator
// decodes text from it over a key/value cache, sharing the layers of the
// full forward pass.
//
// There is no general autograd: every layer has an explicit forward and
// backward pass (one file per layer), gradients are computed only where they
// are needed (a LoRA run computes no weight gradient of a frozen matrix, only
// the activation gradient flowing through it), and all activation buffers are
// allocated once per run.
//
// Memory: a LoRA or adapter run holds the frozen base once, in the dtype of
// its file (BF16/F16 matrices stay in the memory map; the GEMMs widen them
// while packing, exactly, or with Options.Compute "bf16" multiply them on
// bf16 dot products); the LM head and loss run a chunk of tokens at a time
// (head.go); when a run's activations would not fit Options.MaxMemory, one
// decoder layer's serve all and backward recomputes each layer's forward
// (memory.go, recompute.go: the same bits); a large JSONL is read from disk
// as batches need it (stream.go).
//
// The layers are written once, generically over float32 and float64. Training
// runs in float32; the tests instantiate the same code in float64 for
// finite-difference gradient checks.
//
// Determinism: for the same inputs, seed and thread count every output file is
// byte-identical. Work is split over threads in fixed partitions, reductions
// run in a fixed order, and all randomness (initialisation, data sampling,
// dropout) comes from counter-based generators keyed by the seed. With T
// threads a training batch runs as min(T, batch) data-parallel replicas of
// the network, one thread each, whose gradients are summed in replica
// order (replicas.go): runs with different thread counts therefore agree
// only up to float32 summation order.
package train
