package gguf

import (
	"fmt"
	"math"
)

// KV is one metadata pair. Value is one of uint8, int8, uint16, int16,
// uint32, int32, float32, bool, string, uint64, int64, float64, or a slice
// of one of them (a GGUF array); the Go type decides the GGUF type written,
// so counts must be uint32, eps float32 and so on, exactly as llama.cpp's
// loader reads them.
type KV struct {
	Key   string
	Value any
}

// Metadata is the ordered list of key-value pairs of a GGUF file.
type Metadata []KV

// Get returns the value of key.
func (md Metadata) Get(key string) (any, bool) {
	for _, kv := range md {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// String returns the string value of key ("" and false when absent or not
// a string).
func (md Metadata) String(key string) (string, bool) {
	v, _ := md.Get(key)
	s, ok := v.(string)
	return s, ok
}

// Uint returns an unsigned or non-negative integer value of key.
func (md Metadata) Uint(key string) (uint64, bool) {
	v, _ := md.Get(key)
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Float returns a floating-point value of key.
func (md Metadata) Float(key string) (float64, bool) {
	v, _ := md.Get(key)
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// Bool returns a bool value of key.
func (md Metadata) Bool(key string) (bool, bool) {
	v, _ := md.Get(key)
	b, ok := v.(bool)
	return b, ok
}

// Strings returns a string-array value of key.
func (md Metadata) Strings(key string) ([]string, bool) {
	v, _ := md.Get(key)
	s, ok := v.([]string)
	return s, ok
}

// Set replaces the value of key, or appends the pair.
func (md *Metadata) Set(key string, v any) {
	for i := range *md {
		if (*md)[i].Key == key {
			(*md)[i].Value = v
			return
		}
	}
	*md = append(*md, KV{key, v})
}

// valueType is the GGUF type of a Go value (and of its elements for an
// array).
func valueType(v any) (t, elem ValueType, err error) {
	switch v.(type) {
	case uint8:
		return TypeUint8, 0, nil
	case int8:
		return TypeInt8, 0, nil
	case uint16:
		return TypeUint16, 0, nil
	case int16:
		return TypeInt16, 0, nil
	case uint32:
		return TypeUint32, 0, nil
	case int32:
		return TypeInt32, 0, nil
	case float32:
		return TypeFloat32, 0, nil
	case bool:
		return TypeBool, 0, nil
	case string:
		return TypeString, 0, nil
	case uint64:
		return TypeUint64, 0, nil
	case int64:
		return TypeInt64, 0, nil
	case float64:
		return TypeFloat64, 0, nil
	case []uint8:
		return TypeArray, TypeUint8, nil
	case []int8:
		return TypeArray, TypeInt8, nil
	case []uint16:
		return TypeArray, TypeUint16, nil
	case []int16:
		return TypeArray, TypeInt16, nil
	case []uint32:
		return TypeArray, TypeUint32, nil
	case []int32:
		return TypeArray, TypeInt32, nil
	case []float32:
		return TypeArray, TypeFloat32, nil
	case []bool:
		return TypeArray, TypeBool, nil
	case []string:
		return TypeArray, TypeString, nil
	case []uint64:
		return TypeArray, TypeUint64, nil
	case []int64:
		return TypeArray, TypeInt64, nil
	case []float64:
		return TypeArray, TypeFloat64, nil
	}
	return 0, 0, fmt.Errorf("gguf: value of Go type %T has no GGUF type", v)
}

// FormatValue renders a metadata value for people: scalars as they are,
// long arrays as their type, length and first elements.
func FormatValue(v any) string {
	const show = 6
	switch x := v.(type) {
	case string:
		if len(x) > 120 {
			return fmt.Sprintf("%q... (%d bytes)", x[:120], len(x))
		}
		return fmt.Sprintf("%q", x)
	case float32:
		return fmt.Sprint(x)
	case []string:
		if len(x) > show {
			return fmt.Sprintf("[str × %d] %q ...", len(x), x[:show])
		}
		return fmt.Sprintf("%q", x)
	case []float32:
		if len(x) > show {
			return fmt.Sprintf("[f32 × %d] %v ...", len(x), x[:show])
		}
	case []int32:
		if len(x) > show {
			return fmt.Sprintf("[i32 × %d] %v ...", len(x), x[:show])
		}
	case []uint32:
		if len(x) > show {
			return fmt.Sprintf("[u32 × %d] %v ...", len(x), x[:show])
		}
	}
	return fmt.Sprint(v)
}

// alignment reads general.alignment (u32, a power of two) or returns the
// default.
func (md Metadata) alignment() (int64, error) {
	v, ok := md.Get("general.alignment")
	if !ok {
		return DefaultAlignment, nil
	}
	a, isU32 := v.(uint32)
	if !isU32 || a == 0 || a&(a-1) != 0 || a > math.MaxInt32 {
		return 0, fmt.Errorf("gguf: general.alignment = %v (%T): %w: want a u32 power of two", v, v, ErrInvalid)
	}
	return int64(a), nil
}
