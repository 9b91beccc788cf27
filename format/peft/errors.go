package peft

import "errors"

// Sentinel errors callers can branch on (errors.Is).
var (
	// ErrNotPEFT means the folder is not a PEFT adapter (no
	// adapter_config.json, no peft_type, or another tool's layout).
	ErrNotPEFT = errors.New("not a PEFT adapter")
	// ErrUnsupported means a PEFT adapter of a kind deltactl cannot apply
	// (for example peft_type UNILORA); the message names it.
	ErrUnsupported = errors.New("unsupported")
	// ErrInvalid means the config or the weights break PEFT's rules
	// (bad field types, shape or rank disagreements, missing factors).
	ErrInvalid = errors.New("invalid PEFT adapter")
)
