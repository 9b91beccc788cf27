// Package safetensors reads and writes the safetensors file format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of UTF-8 JSON describing every tensor, then the tensor
// bytes, contiguous and little-endian.
//
// Reading is strict: Open and NewFile check every rule the reference Rust
// implementation checks (../shared/research/registry_storage.md section 7),
// in the same order, and a few it leaves to serde (duplicate names are
// rejected instead of silently keeping the last one). Only the header is read when a file is
// opened; tensor bytes alias a read-only memory map and are paged in by the OS
// when touched, so opening a 20 GB checkpoint costs one small read. Unaligned
// data sections are valid: several real writers do not pad the header.
//
// Every validation error names the file and the rule broken and wraps
// ErrInvalid plus one rule-specific sentinel (ErrHeaderTooLarge,
// ErrInvalidOffset, ...), so callers can branch with errors.Is.
//
// Writing streams: NewWriter writes the header from a declared plan and then
// takes each tensor's bytes from an io.Reader in plan order, so a model is
// never held in memory. Header JSON is laid out as the reference writes it
// (compact, "__metadata__" first, each entry {"dtype","shape","data_offsets"},
// padded with spaces to a multiple of 8 bytes); tensors appear in the order
// given, and metadata keys in sorted order. Files the reference wrote in that
// order therefore round-trip byte for byte.
package safetensors
