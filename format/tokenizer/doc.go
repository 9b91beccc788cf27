// Package tokenizer loads Hugging Face tokenizer.json files (with their
// tokenizer_config.json) and encodes and decodes text with the same ids as
// Hugging Face tokenizers.
//
// Supported: BPE models, byte-level (GPT-2, Llama 3, Qwen2/3, SmolLM) and
// SentencePiece-style (Llama 2, Mistral, TinyLlama: byte_fallback, Prepend and
// Replace normalizers or a Metaspace pre-tokenizer, Fuse/Strip decoders);
// NFC/NFD/NFKC/NFKD, Lowercase, Strip, StripAccents, Prepend, Replace and
// Sequence normalizers; ByteLevel, Split (the GPT-2 and Llama 3 / Qwen
// families' regexes, written out by hand, and literal strings), Metaspace,
// Digits and Sequence pre-tokenizers; added tokens with special, lstrip,
// rstrip, single_word and normalized; TemplateProcessing, ByteLevel,
// BertProcessing, RobertaProcessing and Sequence post-processors.
//
// Anything else (WordPiece and Unigram models, other regexes, other
// pre-tokenizers) is refused with an error wrapping ErrUnsupported that names
// it: an approximated tokenizer gives wrong ids silently.
//
// The reference for ids is the JS port of Hugging Face tokenizers
// (@huggingface/tokenizers 0.2.0); the parity tests run it over a corpus with
// the Llama 3, Qwen3 and Llama 2 tokenizer files and require identical ids,
// tokens and decoded text. Where the JS port departs from Hugging Face's Rust
// library and no real tokenizer file lets the two be told apart, this
// package follows the Rust library: the built-in GPT-2 regex's \s is
// White_Space (the JS port uses ECMAScript's \s, which adds U+FEFF and
// lacks U+0085), Digits splits on \p{N} (not ASCII digits), Metaspace's
// "split" is honoured, and single_word added tokens are matched only as
// whole words. Decoding follows the JS port (U+FFFD per ill-formed
// subsequence, clean_up_tokenization_spaces defaulting to true).
package tokenizer
