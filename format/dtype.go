package format

import (
	"errors"
	"fmt"
)

// DType is the element type of a tensor, as named by safetensors.
type DType uint8

var _ fmt.Stringer = DType(0)

// The safetensors dtype set. The zero value is invalid so that a forgotten
// field is caught rather than read as F64.
const (
	Invalid DType = iota
	F64
	F32
	F16
	BF16
	F8E4M3
	F8E5M2
	I64
	I32
	I16
	I8
	U64
	U32
	U16
	U8
	BOOL
)

// ErrUnknownDType is returned (wrapped) for a dtype name deltactl does not know.
var ErrUnknownDType = errors.New("unknown dtype")

var dtypeInfo = [...]struct {
	name string
	size int
}{
	Invalid: {"INVALID", 0},
	F64:     {"F64", 8},
	F32:     {"F32", 4},
	F16:     {"F16", 2},
	BF16:    {"BF16", 2},
	F8E4M3:  {"F8_E4M3", 1},
	F8E5M2:  {"F8_E5M2", 1},
	I64:     {"I64", 8},
	I32:     {"I32", 4},
	I16:     {"I16", 2},
	I8:      {"I8", 1},
	U64:     {"U64", 8},
	U32:     {"U32", 4},
	U16:     {"U16", 2},
	U8:      {"U8", 1},
	BOOL:    {"BOOL", 1},
}

// ParseDType maps a safetensors dtype name ("F32", "BF16", "F8_E4M3", ...) to a DType.
func ParseDType(name string) (DType, error) {
	for d := F64; d <= BOOL; d++ {
		if dtypeInfo[d].name == name {
			return d, nil
		}
	}
	return Invalid, fmt.Errorf("%w %q", ErrUnknownDType, name)
}

// String returns the safetensors name of d.
func (d DType) String() string {
	if int(d) < len(dtypeInfo) {
		return dtypeInfo[d].name
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Size is the number of bytes of one element; 0 for an invalid dtype.
func (d DType) Size() int {
	if int(d) < len(dtypeInfo) {
		return dtypeInfo[d].size
	}
	return 0
}

// Valid reports whether d is one of the known dtypes.
func (d DType) Valid() bool { return d >= F64 && d <= BOOL }

// IsFloat reports whether d is a floating-point dtype.
func (d DType) IsFloat() bool {
	switch d {
	case F64, F32, F16, BF16, F8E4M3, F8E5M2:
		return true
	}
	return false
}

// MarshalText makes DType print as its safetensors name in JSON.
func (d DType) MarshalText() ([]byte, error) {
	if !d.Valid() {
		return nil, fmt.Errorf("format: marshal %v: %w", d, ErrUnknownDType)
	}
	return []byte(d.String()), nil
}

// UnmarshalText parses a safetensors dtype name.
func (d *DType) UnmarshalText(b []byte) error {
	v, err := ParseDType(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
