package safetensors

import (
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// encodeHeader lays out the header JSON exactly as the reference writer
// (serde_json) does: compact, "__metadata__" first, then each tensor in the
// given order as {"dtype":..,"shape":[..],"data_offsets":[b,e]}, then spaces
// up to a multiple of 8 bytes so that the data section starts 8-aligned.
// Metadata keys are written sorted: the reference keeps them in a HashMap,
// so any order is as faithful, and sorted is deterministic.
func encodeHeader(infos []TensorInfo, meta map[string]string) []byte {
	b := make([]byte, 0, 64+80*len(infos))
	b = append(b, '{')
	first := true
	if meta != nil {
		b = appendString(b, metadataKey)
		b = append(b, ':', '{')
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, meta[k])
		}
		b = append(b, '}')
		first = false
	}
	for _, ti := range infos {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, ti.Name)
		b = append(b, `:{"dtype":`...)
		b = appendString(b, ti.DType.String())
		b = append(b, `,"shape":[`...)
		for j, d := range ti.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, ti.Begin, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, ti.End, 10)
		b = append(b, ']', '}')
	}
	b = append(b, '}')
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	return b
}

// appendString writes s as a JSON string with serde_json's escaping: only
// '"', '\\' and control characters are escaped (\uXXXX in lowercase hex),
// everything else is copied as UTF-8. s must be valid UTF-8.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// checkUTF8 rejects strings JSON cannot carry unchanged.
func checkUTF8(name, what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("safetensors: %s: %s %q is not valid UTF-8: %w", name, what, s, ErrInvalidHeader)
	}
	return nil
}
