package gguf

import (
	"errors"
	"fmt"
)

// Magic is "GGUF" read as a little-endian u32.
const Magic = 0x46554747

// Version is the GGUF version written and the only one read.
const Version = 3

// DefaultAlignment is GGUF_DEFAULT_ALIGNMENT.
const DefaultAlignment = 32

// Sentinel errors callers can branch on (errors.Is).
var (
	// ErrInvalid means the file breaks GGUF's rules; the message says which.
	ErrInvalid = errors.New("invalid GGUF")
	// ErrUnsupported means a valid GGUF feature deltactl does not handle
	// (a quantization type it cannot decode, an architecture or adapter
	// kind it cannot export); the message names it.
	ErrUnsupported = errors.New("unsupported")
)

// ValueType is the type tag of a metadata value (GGUFValueType).
type ValueType uint32

// The metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"}

// scalarSize is the encoded size of a fixed-size value type (0 for string
// and array).
func (t ValueType) scalarSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Type is a ggml tensor type (GGMLQuantizationType).
type Type uint32

// The tensor types deltactl writes and reads.
const (
	F32  Type = 0
	F16  Type = 1
	Q8_0 Type = 8
	BF16 Type = 30
)

// typeNames names every ggml type of ggml.h, so that a file using one
// deltactl cannot decode is refused by name.
var typeNames = map[Type]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
	10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
	16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S",
	22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
	29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("ggml_type(%d)", uint32(t))
}

// ParseType maps a ggml type name ("F32", "Q8_0", ...) to a Type.
func ParseType(name string) (Type, error) {
	for t, n := range typeNames {
		if n == name {
			return t, nil
		}
	}
	return 0, fmt.Errorf("gguf: tensor type %q: %w", name, ErrUnsupported)
}

// Supported reports whether deltactl reads and writes tensors of type t.
func (t Type) Supported() bool {
	switch t {
	case F32, F16, Q8_0, BF16:
		return true
	}
	return false
}

// BlockSize is the number of values per block (1 for plain floats); a row
// (ne[0]) must be a multiple of it. 0 for an unsupported type.
func (t Type) BlockSize() int64 {
	switch t {
	case F32, F16, BF16:
		return 1
	case Q8_0:
		return 32
	}
	return 0
}

// BlockBytes is the encoded size of one block. 0 for an unsupported type.
func (t Type) BlockBytes() int64 {
	switch t {
	case F32:
		return 4
	case F16, BF16:
		return 2
	case Q8_0:
		return 34
	}
	return 0
}

// FileType is general.file_type (llama_ftype) for a model whose large
// tensors are of type t.
func FileType(t Type) uint32 {
	switch t {
	case F16:
		return 1
	case Q8_0:
		return 7
	case BF16:
		return 32
	}
	return 0
}

// Token types of tokenizer.ggml.token_type (llama_token_type).
const (
	TokenNormal      int32 = 1
	TokenUnknown     int32 = 2
	TokenControl     int32 = 3
	TokenUserDefined int32 = 4
	TokenUnused      int32 = 5
	TokenByte        int32 = 6
)
