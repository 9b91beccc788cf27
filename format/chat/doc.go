// Package chat renders conversations with a model's own chat template (the
// Jinja "chat_template" of tokenizer_config.json) the way Hugging Face
// transformers' apply_chat_template does: the template sees messages,
// add_generation_prompt, bos_token and eos_token, and the helpers
// raise_exception (an error here, a TemplateError there) and strftime_now
// (the current local time, as Python's datetime.now().strftime). Whitespace
// follows transformers' Jinja environment (trim_blocks and lstrip_blocks).
//
// To prompt a model as transformers does, render with AddGenerationPrompt
// and encode the text without added special tokens (the template places
// BOS itself): apply_chat_template(tokenize=True) encodes with
// add_special_tokens=False.
//
// Templates run on github.com/ardanlabs/jinja, a pure-Go Jinja engine. A
// template using a feature it does not implement (an unknown filter, test,
// method or statement) fails with an error wrapping ErrTemplate that names
// the feature; nothing is approximated.
package chat
