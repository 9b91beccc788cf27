//go:build amd64 && gc && !purego

package kernels

// GEMV micro-kernels over 16-bit weights (gemv_b16_amd64.s).

//go:noescape
func gemvBF16AVX512(acc *float32, x *float32, w *uint16, ldw int, n16, ngrp int)

//go:noescape
func gemvF16AVX512(acc *float32, x *float32, w *uint16, ldw int, n16, ngrp int)

//go:noescape
func gemvF16BlocksAVX512(y *float32, acc *float32, x *float32, w *uint16, ldw int, nblk int, zeroY bool)

//go:noescape
func gemvBF16PairsAVX512(y *float32, acc *float32, x *float32, w *uint16, ldw int, nblk, ngrp int, zeroY bool)

//go:noescape
func gemvBF16AVX2(acc *float32, x *float32, w *uint16, ldw int, n8 int)

//go:noescape
func gemvF16AVX2(acc *float32, x *float32, w *uint16, ldw int, n8 int)
