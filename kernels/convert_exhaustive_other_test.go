//go:build exhaustive && !(amd64 && gc && !purego)

package kernels

import "unsafe"

func cvtAVX512Direct() map[string]func(dst, src unsafe.Pointer, n int) { return nil }
