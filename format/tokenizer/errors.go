package tokenizer

import "errors"

// ErrUnsupported is wrapped by every error that refuses a tokenizer.json
// feature this package does not implement (a model type, pre-tokenizer,
// normalizer, decoder, post-processor or regex); the message names it.
var ErrUnsupported = errors.New("not supported")
