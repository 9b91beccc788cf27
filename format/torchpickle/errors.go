package torchpickle

import "errors"

// Sentinel errors; every error returned by this package wraps one of them
// and names the file at fault.
var (
	// ErrNotTorch means the input is neither a torch zip archive nor a
	// legacy torch pickle.
	ErrNotTorch = errors.New("not a torch checkpoint")
	// ErrUnsafeGlobal means the pickle references a global (a Python
	// callable or class) outside the allow-list; the message names it.
	ErrUnsafeGlobal = errors.New("refusing global")
	// ErrCorrupt means the file is a torch checkpoint but is truncated,
	// inconsistent or exceeds the reader's resource bounds.
	ErrCorrupt = errors.New("corrupt torch checkpoint")
)
