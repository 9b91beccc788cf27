// Package gguf reads and writes GGUF v3, the single-file model format of
// llama.cpp and Ollama, and exports Hugging Face Llama-family models and
// PEFT LoRA adapters to it.
//
// The container (ggml/include/gguf.h, ggml/src/gguf.cpp): magic "GGUF",
// version 3, tensor and key-value counts (u64), typed key-value pairs,
// tensor infos (name, dims innermost first, ggml type, offset), padding to
// the alignment (general.alignment, default 32), then the tensor data, each
// tensor at the running sum of the padded sizes in declared order, which is
// what llama.cpp's loader requires.
//
// The writer streams: it is given the plan (every tensor's name, shape and
// type) up front, writes the header, then takes one tensor at a time, into a
// temporary file renamed into place on success. The reader validates every
// count and size against the file size before allocating, and refuses
// tensor types it cannot decode by name.
package gguf
