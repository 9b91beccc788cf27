package safetensors

import "errors"

// ErrInvalid is wrapped by every error that reports a malformed file or
// header. Each such error also wraps exactly one of the rule sentinels below.
var ErrInvalid = errors.New("invalid safetensors")

// ruleError is a sentinel for one broken rule; it matches ErrInvalid too so
// callers can test for either the rule or "malformed at all".
type ruleError string

var _ error = ruleError("")

func (e ruleError) Error() string { return string(e) }

// Is makes errors.Is(err, ErrInvalid) true for every rule sentinel.
func (e ruleError) Is(target error) bool { return target == ErrInvalid }

// Rule sentinels, in the order the reference checks them.
var (
	// ErrHeaderTooSmall: the file is shorter than the 8-byte length prefix.
	ErrHeaderTooSmall error = ruleError("file too small for the 8-byte header length")
	// ErrHeaderTooLarge: the header length exceeds MaxHeaderSize.
	ErrHeaderTooLarge error = ruleError("header too large")
	// ErrHeaderLength: the header length points past the end of the file.
	ErrHeaderLength error = ruleError("header length beyond end of file")
	// ErrInvalidHeader: the header is not UTF-8, not a JSON object, or does
	// not follow the schema (wrong types, missing fields, unknown dtype).
	ErrInvalidHeader error = ruleError("invalid header")
	// ErrDuplicate: two tensors (or two metadata keys, or two fields of one
	// tensor entry) share a name.
	ErrDuplicate error = ruleError("duplicate key")
	// ErrInvalidMetadata: __metadata__ is not a map of string to string.
	ErrInvalidMetadata error = ruleError("invalid __metadata__")
	// ErrInvalidOffset: data_offsets do not start at 0, leave a gap, overlap,
	// or end before they begin.
	ErrInvalidOffset error = ruleError("invalid data_offsets")
	// ErrOverflow: the element or byte count of a shape overflows int64.
	ErrOverflow error = ruleError("shape overflows")
	// ErrTensorSize: a tensor's byte span differs from dtype size times the
	// product of its shape.
	ErrTensorSize error = ruleError("tensor byte span does not match dtype and shape")
	// ErrIncompleteBuffer: the tensors do not cover the data section exactly
	// (trailing bytes, or offsets past the end of the file).
	ErrIncompleteBuffer error = ruleError("tensors do not cover the data section exactly")
)

// Errors that do not mean the file is malformed.
var (
	// ErrNotFound is returned (wrapped) for a tensor name the file lacks.
	ErrNotFound = errors.New("tensor not found")
	// ErrClosed is returned (wrapped) when a closed File or Writer is used.
	ErrClosed = errors.New("closed")
	// ErrMismatch is returned (wrapped) by the Writer when the tensors given
	// differ from the declared plan: wrong order, wrong byte count, missing.
	ErrMismatch = errors.New("tensor does not match the declared plan")
)
